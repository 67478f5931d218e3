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
``poll_seconds`` (the ``watchdog_poll_seconds`` setting, half a second by
default; an orphan is adopted by another process, so its parent id changes).
`watch_parent` starts the thread once per process; the executors call it when
a worker starts or runs its first job.
"""

from __future__ import annotations

import os
import select
import threading

from incgraph.settings import DEFAULT_SETTINGS

__all__ = ["EXIT_CODE", "watch_parent"]

EXIT_CODE = 70
"""The exit status of a worker that ended because its parent was gone."""

_watching: int | None = None  # the pid whose watchdog runs (a forked child starts its own)
_lock = threading.Lock()


def watch_parent(
    parent: int | None = None, poll_seconds: float = DEFAULT_SETTINGS.watchdog_poll_seconds
) -> bool:
    """End this process when ``parent`` (default: the current parent) exits.

    ``poll_seconds`` is how often the parent is checked where pidfds are unusable.

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
        target=_watch, args=(parent, poll_seconds), name="incgraph-parent-watchdog", daemon=True
    )
    thread.start()
    return True


def _watch(parent: int, poll_seconds: float) -> None:
    """Wait until ``parent`` is gone, then end this process.

    Usually ``parent`` is this process's parent: once a pidfd of it is open and it
    is still our parent, the pidfd cannot refer to another process. A worker
    started through an intermediate process watches ``parent`` by its pid.
    """
    fd = _pidfd(parent)
    own = os.getppid() == parent
    if fd is _GONE:
        os._exit(EXIT_CODE)
    if fd is not None:
        select.select([fd], [], [])  # readable once the parent has exited
        os._exit(EXIT_CODE)
    stop = threading.Event()
    while own or _exists(parent):
        if own and os.getppid() != parent:  # orphaned: adopted by another process
            break
        stop.wait(poll_seconds)
    os._exit(EXIT_CODE)


_GONE = -1  # what _pidfd says of a process that does not exist


def _pidfd(pid: int) -> int | None:
    """A pidfd of ``pid``; ``_GONE`` if there is no such process; None if pidfds are unusable."""
    open_pidfd = getattr(os, "pidfd_open", None)
    if open_pidfd is None:
        return None
    try:
        fd: int = open_pidfd(pid)
    except ProcessLookupError:
        return _GONE
    except OSError:  # an older kernel, or not allowed: poll instead
        return None
    return fd


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True
