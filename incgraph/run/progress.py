"""Progress of a batch: a tqdm bar over item-nodes, or nothing.

Design note
-----------
A batch reports progress in *item-nodes* (one item through one node), the
unit the engine decides, so a breadth-first and a depth-first batch show the
same total. The bar's postfix counts what happened to them: ``cached``,
``computed``, ``failed`` (``skipped`` ones, downstream of a failure, advance
the bar too). The batch loop updates it at most once per job or chunk, so a
fully cached batch of a million item-nodes pays for a few thousand updates,
not a million.

``progress=None`` shows the bar only when stderr is a terminal (so logs and CI
output stay clean); ``True`` always shows it; ``False`` never does.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress", "make_progress"]


class Progress:
    """Counts item-nodes and, when given a tqdm bar, shows them.

    Examples
    --------
    >>> p = make_progress(total=3, enabled=False)
    >>> p.advance(cached=2, computed=1)
    >>> p.counts
    {'cached': 2, 'computed': 1, 'failed': 0, 'skipped': 0}
    >>> p.close()
    """

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.counts = {"cached": 0, "computed": 0, "failed": 0, "skipped": 0}

    def advance(
        self, *, cached: int = 0, computed: int = 0, failed: int = 0, skipped: int = 0
    ) -> None:
        """Record item-nodes that were served, computed, failed or skipped."""
        c = self.counts
        c["cached"] += cached
        c["computed"] += computed
        c["failed"] += failed
        c["skipped"] += skipped
        if self.bar is not None:
            shown = {k: v for k, v in c.items() if k != "skipped"}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(cached + computed + failed + skipped)

    def describe(self, text: str) -> None:
        """Show which pass is running (the node's description)."""
        if self.bar is not None:
            self.bar.set_description_str(text, refresh=False)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def make_progress(total: int | None, enabled: bool | None) -> Progress:
    """A `Progress` with a bar if ``enabled`` (``None``: if stderr is a terminal)."""
    if enabled is None:
        enabled = _stderr_is_terminal()
    if not enabled:
        return Progress()
    from tqdm import tqdm  # loaded only when a bar is shown

    return Progress(tqdm(total=total, unit="item-node", dynamic_ncols=True, leave=True))


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
