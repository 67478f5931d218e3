"""The ``incgraph`` command: look into a store, explain a graph, and keep the store healthy.

Design note
-----------
One ``argparse`` parser with a subcommand per task; every subcommand takes
``--store PATH`` (default: the folder ``ProcessGraph`` uses,
`incgraph.store.default_location`) and ``--json`` (exact values for
scripts instead of a table). The commands live by concern:
`incgraph.cli.browse` (``ls``, ``show``, ``lineage``, ``runs``,
``stats``), `incgraph.cli.upkeep` (``gc``, ``verify``, ``clear``,
``pin``, ``unpin``, ``migrate``), `incgraph.cli.controlling` (``invalidate``,
``accept``), `incgraph.cli.explaining` (``explain``),
`incgraph.cli.rendering` (``render``) and `incgraph.cli.sharing`
(``push``, ``pull``).

Exit codes: 0 when all went well, 1 when problems were found (``verify``) or
the store cannot be read, 2 for usage errors (bad arguments, an unknown or
ambiguous key, no store where one was expected). `main` returns the
code instead of exiting, so tests and other programs can call it.

The command only reads a store unless asked to change it (``gc``,
``verify``, ``clear``, ``pin``, ``invalidate``, ``accept``, and the target of
``push`` / ``pull``). Note that ``show`` loads (unpickles) a
value: only point it at stores you trust.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from incgraph import __version__
from incgraph.cli.context import Context, UsageError
from incgraph.errors import IncgraphError, StoreError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so `main` can return 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, usage=self.format_usage())


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="store folder or postgresql:// URL (default: $INCGRAPH_STORE or ./.incgraph)",
    )
    parent.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    parent.add_argument(
        "--blobs",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="with --store postgresql://...: the folder holding the results' bytes",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    from incgraph.cli import browse, controlling, explaining, rendering, sharing, upkeep

    parser = _Parser(
        prog="incgraph",
        description="Inspect and maintain an incgraph store.",
        epilog="Exit codes: 0 ok, 1 problems found, 2 usage error.",
    )
    parser.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="store folder or postgresql:// URL (default: $INCGRAPH_STORE or ./.incgraph); "
        "also after the command",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print JSON for scripts; also after the command",
    )
    parser.add_argument(
        "--blobs",
        metavar="PATH",
        default=None,
        help="with --store postgresql://...: the folder holding the results' bytes",
    )
    parser.add_argument("--version", action="version", version=f"incgraph {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parent = _common()
    for module in (browse, explaining, rendering, upkeep, controlling, sharing):
        module.register(commands, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``incgraph`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Examples
    --------
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: incgraph ...
    0
    """
    parser = build_parser()
    out, err = sys.stdout, sys.stderr
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        err.write(exc.usage + f"incgraph: error: {exc}\n")
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return 2
    ctx = Context(args, out, err)
    run: Callable[[Context], int] = args.run
    try:
        return run(ctx)
    except UsageError as exc:
        err.write(f"incgraph {args.command}: error: {exc}\n")
        return 2
    except StoreError as exc:
        err.write(f"incgraph {args.command}: {exc}\n")
        return 1
    except IncgraphError as exc:  # a graph the file defines is wrong: the user's to fix
        err.write(f"incgraph {args.command}: error: {exc}\n")
        return 2
    except BrokenPipeError:  # e.g. `incgraph ls | head`
        return 0
    finally:
        ctx.close()
