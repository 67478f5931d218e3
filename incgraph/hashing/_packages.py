"""Installed package versions, for the packages a processor or a store declares.

Design note
-----------
A result may depend on a library's behaviour, not only on the code that calls
it (a new scikit-learn release changes a default). The code version never
includes library versions (it names library callables by module and
qualified name); a processor that wants them says so with
``Processor.packages = ("scikit-learn",)``, and a store with
``open_store(path, packages=[...])``. Those versions then enter the cache key
through the node's init version, so upgrading one package recomputes exactly
the nodes that declared it.

Versions come from the installed distribution's metadata
(`importlib.metadata.version`), looked up once per process: a package
upgraded while a process runs keeps its old version there, as its already
imported modules do. Names are distribution names as ``pip`` spells them;
``scikit_learn`` and ``Scikit-Learn`` find ``scikit-learn`` too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import metadata

from incgraph.errors import GraphDefinitionError
from incgraph.hashing._data import data_version
from incgraph.hashing._scheme import combine

__all__ = ["declared_names", "package_versions", "with_packages"]


@functools.cache
def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def declared_names(declared: object, where: str) -> tuple[str, ...]:
    """``declared`` as a tuple of package names, or an error naming ``where`` and the fix."""
    if isinstance(declared, str) or not isinstance(declared, Iterable):
        raise GraphDefinitionError(
            f"{where}: packages must be a tuple of package names, got {declared!r}; "
            f"write packages = ({declared!r},)"
        )
    names = tuple(declared)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise GraphDefinitionError(
                f"{where}: packages lists {name!r}; list installed package names "
                "as strings, e.g. packages = ('scikit-learn',)"
            )
    return names


def package_versions(names: Iterable[str], where: str) -> dict[str, str]:
    """Package name -> installed version, for each of ``names`` (sorted by name).

    Raises
    ------
    GraphDefinitionError
        A name that is not an installed distribution; the message names
        ``where`` (the node or store that declared it) and the package.

    Examples
    --------
    >>> package_versions(["xxhash"], "node 1 (Fit)")["xxhash"] > "0"
    True
    >>> package_versions(["no-such-package-here"], "node 1 (Fit)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incgraph.errors.GraphDefinitionError: node 1 (Fit): package 'no-such-package-here' ...
    """
    versions = {}
    for name in sorted(set(names)):
        version = _installed(name)
        if version is None:
            raise GraphDefinitionError(
                f"{where}: package {name!r} is declared in packages but is not installed "
                "(importlib.metadata finds no distribution of that name); install it or "
                "fix the name as pip spells it"
            )
        versions[name] = version
    return versions


def with_packages(init_version: str, names: Iterable[str], where: str) -> str:
    """``init_version`` with the installed versions of ``names`` combined in (as is if none).

    This is the one place package versions join a key; a node's and a queue
    task's init versions both go through it.

    Examples
    --------
    >>> with_packages("i" * 32, (), "node 1 (Fit)") == "i" * 32
    True
    >>> with_packages("i" * 32, ("xxhash",), "node 1 (Fit)") == "i" * 32
    False
    """
    names = tuple(names)
    if not names:
        return init_version
    versions = package_versions(names, where)
    return combine("InitAndPackages", init_version, data_version(versions))
