"""Worker processes exit when the process that started them dies.

Design note
-----------
A worker process of the ``processes`` executor (or of the in-batch ``mpc``
target) may hold a loaded model: gigabytes of memory, a GPU. If the process
that started it is killed (SIGKILL, the out-of-memory killer, a closed
notebook kernel), nobody is left to shut the pool down, and loky's workers
would live on, orphaned, for good. So every worker runs a *watchdog*: one
daemon thread that waits for its parent to exit and then ends the worker at
once (``os._exit``: the parent that would receive its results is gone, and
the operating system frees what the worker held).

The thread blocks on a ``pidfd`` of the parent (Linux 5.3 and later), which
becomes readable the moment the parent exits, so it costs nothing while it
waits. Where there is none, it checks ``os.getppid()`` every
`POLL_SECONDS` (an orphan is adopted by another process, so its parent
id changes). `watch_parent` starts the thread once per process; the
executors call it when a worker starts or runs its first job.
"""

from __future__ import annotations

import os
import select
import threading

__all__ = ["EXIT_CODE", "POLL_SECONDS", "watch_parent"]

POLL_SECONDS = 0.5
"""How often a worker without ``pidfd`` support checks that its parent is alive."""

EXIT_CODE = 70
"""The exit status of a worker that ended because its parent was gone."""

_watching: int | None = None  # the pid whose watchdog runs (a forked child starts its own)
_lock = threading.Lock()


def watch_parent(parent: int | None = None) -> bool:
    """End this process when ``parent`` (default: the current parent) exits.

    Starts the watchdog thread once per process; returns whether this call started it.

    Examples
    --------
    >>> import subprocess, sys
    >>> code = "from incgraph.executors.watchdog import watch_parent; print(watch_parent())"
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    'True\\n'
    """
    global _watching
    parent = os.getppid() if parent is None else parent
    with _lock:
        if _watching == os.getpid():
            return False
        _watching = os.getpid()
    thread = threading.Thread(
        target=_watch, args=(parent,), name="incgraph-parent-watchdog", daemon=True
    )
    thread.start()
    return True


def _watch(parent: int) -> None:
    fd = _pidfd(parent)
    if os.getppid() != parent:  # gone already (checked after opening: no pid reuse race)
        os._exit(EXIT_CODE)
    if fd is not None:
        select.select([fd], [], [])  # readable once the parent has exited
        os._exit(EXIT_CODE)
    stop = threading.Event()
    while not stop.wait(POLL_SECONDS):
        if os.getppid() != parent:
            os._exit(EXIT_CODE)


def _pidfd(pid: int) -> int | None:
    open_pidfd = getattr(os, "pidfd_open", None)
    if open_pidfd is None:
        return None
    try:
        fd: int = open_pidfd(pid)
    except OSError:  # an older kernel, or not allowed: poll instead
        return None
    return fd
