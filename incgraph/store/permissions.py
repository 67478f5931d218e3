"""Who may read and write a store's files: the user alone (default), or the folder's group.

Design note
-----------
A store is private by default: folders 0700, files 0600. A team on one host
(a shared workstation, a cluster login node) may share one store folder by
opening it with ``open_store(path, shared="group")``: folders are then made
2770 (the setgid bit makes every new file and folder take the folder's group,
whoever creates it) and files 0660. The mode is applied with an explicit
``chmod`` after each creation, since a umask such as 022 would otherwise strip
the group's write bit. The folder's marker remembers the choice, so members
who open the store later without ``shared=`` keep to it.

Give the store folder to the team's group once (``chgrp team /data/store``)
before the first open, or create it inside a folder that already belongs to
the group and has the setgid bit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from incgraph.errors import ConfigurationError

__all__ = ["SHARED_MODES", "Modes", "folder_modes"]

SHARED_MODES = (None, "group")
"""The values ``open_store(shared=...)`` accepts."""


class Modes(NamedTuple):
    """Permission bits of a store's new folders and files.

    Examples
    --------
    >>> oct(folder_modes("group").folder), oct(folder_modes(None).file)
    ('0o2770', '0o600')
    """

    folder: int
    file: int
    shared: str | None

    def cache_modes(self) -> dict[str, int]:
        """Keyword arguments giving a `incgraph.store.blob_cache.BlobCache` these modes."""
        return {"file_mode": self.file, "folder_mode": self.folder}

    def apply(self, path: Path, *, folder: bool) -> None:
        """Give ``path`` this mode when shared (a private store keeps what it was made with)."""
        if self.shared is not None:
            os.chmod(path, self.folder if folder else self.file)


def folder_modes(shared: str | None) -> Modes:
    """The modes for ``open_store(shared=...)``; `ConfigurationError` for an unknown value.

    Examples
    --------
    >>> folder_modes("world")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incgraph.errors.ConfigurationError: shared='world' is not known; use shared="group" ...
    """
    if shared is None:
        return Modes(0o700, 0o600, None)
    if shared == "group":
        return Modes(0o2770, 0o660, "group")
    raise ConfigurationError(
        f'shared={shared!r} is not known; use shared="group" (folders 2770, files 0660) '
        "or leave it out (private: 0700 / 0600)"
    )
