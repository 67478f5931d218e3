"""Functions sent to worker processes by the mpc tests (importable, so picklable by name)."""

from __future__ import annotations

import os


def power_plus(base: int, exponent: int, offset: int = 0) -> int:
    """Return base**exponent + offset."""
    return base**exponent + offset


def worker_pid(_: object) -> int:
    """Return the process id the call ran in."""
    return os.getpid()


def fail_on_three(value: int) -> int:
    """Raise for 3, else return the value."""
    if value == 3:
        raise ArithmeticError("three is not allowed")
    return value


class NeedsKeyword(Exception):
    """An exception that pickle cannot rebuild (a required keyword-only argument)."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


def raise_unpicklable(_: object) -> None:
    """Raise an exception that cannot be unpickled in the parent."""
    raise NeedsKeyword("custom failure", code=7)


def return_unpicklable(_: object) -> object:
    """Return a value that cannot be pickled back (a generator)."""
    return (x for x in range(2))
