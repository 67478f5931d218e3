"""Which code is the user's own, and therefore part of a code version.

Design note
-----------
Code versions follow references only into the user's own code: editing a
helper in your package must invalidate, but the body of ``numpy.mean`` is not
read (library upgrades are the user's call; bump ``version`` if one matters).

A module is *library* code when it is built in or frozen, or when its file
lies under the standard library, a site-packages/dist-packages directory (the
interpreter's, the user site, or any folder of that name, e.g. a conda or
``pip --target`` tree), or incgraph's own package. Everything else is *user*
code, including modules without a file such as ``__main__`` in a notebook, and
packages installed in editable mode from the user's checkout.

An object whose module is not loaded (any more) is judged by its code's file
name, and counts as user code when there is none: following too much only
costs time, following too little would serve stale results.

Answers are cached per file path; paths are compared after resolving symlinks.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from functools import cache
from types import ModuleType

__all__ = ["is_user_module", "is_user_object", "module_of"]

_LIBRARY_DIR_NAMES = frozenset({"site-packages", "dist-packages"})


@cache
def _library_roots() -> tuple[str, ...]:
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        roots.add(user_site)
    import incgraph

    roots.add(os.path.dirname(incgraph.__file__ or ""))
    return tuple(sorted({os.path.join(os.path.realpath(r), "") for r in roots if r}))


@cache
def _is_library_file(path: str) -> bool:
    real = os.path.realpath(path)
    if any(part in _LIBRARY_DIR_NAMES for part in real.split(os.sep)):
        return True
    return real.startswith(_library_roots())


def is_user_module(module: ModuleType | None) -> bool:
    """Whether a module is the user's own code (see the module docstring)."""
    if module is None:
        return True
    if module.__name__ in sys.builtin_module_names:
        return False
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        spec = getattr(module, "__spec__", None)
        return getattr(spec, "origin", None) not in ("built-in", "frozen")
    return not _is_library_file(path)


def module_of(obj: object) -> ModuleType | None:
    """The module an object was defined in, if it is loaded."""
    name = getattr(obj, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def is_user_object(obj: object) -> bool:
    """Whether a function or class was defined in the user's own code."""
    module = module_of(obj)
    if module is not None:
        return is_user_module(module)
    filename = getattr(getattr(obj, "__code__", None), "co_filename", None)
    return not (isinstance(filename, str) and _is_library_file(filename))
