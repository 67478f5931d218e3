"""Named sentinels. ``None`` is a valid node output, so "not there" is spelled MISSING."""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["MISSING", "Missing"]


class Missing(enum.Enum):
    """The type of `MISSING`: a value that was never set or a key that was not found."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> Literal[False]:
        return False


MISSING: Final = Missing.MISSING
