"""The dask executor: jobs on a ``distributed`` cluster (the optional ``dask`` extra).

Design note
-----------
Jobs run on dask workers (``in_process = False``): the engine sends picklable
`WorkerJob` objects, which dask serializes with
cloudpickle, and each worker process keeps one processor instance per
instance key. Dask's own futures are bridged to
`concurrent.futures.Future`, which is all the engine loop waits on; the
executor holds each dask future until it has finished so the cluster does not
forget the task meanwhile. Jobs are submitted with ``pure=False``: the engine
already decided that they must run.

``release(keys)`` runs `release_worker_instances` on
every worker (``Client.run``), which calls each instance's ``release()`` and
drops it; the workers themselves stay up.

Pass a ``Client`` you manage, or an ``address`` (or nothing, for a local
cluster of processes) and the executor creates a client on the first job and
closes it on ``shutdown``. A worker running several threads shares one
instance per node between them.

With a store that other processes can open (a folder, or a PostgreSQL URL)
the workers load a job's inputs from the store and save its result there
themselves; only keys and data versions travel through the scheduler and the
driver (`incgraph.run.via_store`). ``via_store=False``, and stores in
memory, ship input values in each job and bring each result back instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from incgraph.errors import require_extra

__all__ = ["DaskExecutor"]

T = TypeVar("T")


class DaskExecutor:
    """Run jobs on a dask ``distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        A client you own (not closed by `shutdown`).
    address : str, optional
        Scheduler address to connect to when no client is given; without
        either, ``distributed.Client(**client_kwargs)`` starts a local cluster.
    via_store : bool
        When the graph's store can be opened by the workers (a folder or a
        PostgreSQL URL, not a store in memory), workers read inputs from it and
        save results to it themselves, and only data versions come back
        (default). ``False`` ships every input value in its job and brings
        every result back to this process, which saves it.
    **client_kwargs
        Passed to ``distributed.Client`` when the executor creates it.

    Raises
    ------
    ExtraNotInstalledError
        If ``distributed`` is not installed (``pip install 'incgraph[dask]'``).

    Examples
    --------
    A cluster in this process (``Client("tcp://scheduler:8786")`` joins a real one):

    >>> from distributed import Client
    >>> client = Client(processes=False, n_workers=1, dashboard_address=None)
    >>> DaskExecutor(client).submit(pow, 2, 5).result()
    32
    >>> client.close()
    """

    in_process = False
    name = "dask"

    def __init__(
        self,
        client: Any = None,
        *,
        address: str | None = None,
        via_store: bool = True,
        **client_kwargs: Any,
    ):
        self._distributed = require_extra("distributed", "dask")
        self.via_store = via_store
        self._client = client
        self._owned = client is None
        self._address = address
        self._client_kwargs = client_kwargs
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._workers: int | None = None

    def __repr__(self) -> str:
        return f"<DaskExecutor client={self._client!r}>"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` jobs go to (created on first use if not given)."""
        if self._client is None:
            self._client = self._distributed.Client(self._address, **self._client_kwargs)
        return self._client

    @property
    def workers(self) -> int:
        """How many jobs the cluster runs at once (its total worker threads)."""
        if self._workers is None:
            self._workers = max(1, sum(self.client.nthreads().values()))
        return self._workers

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Submit ``fn(*args)`` to the cluster; return a ``concurrent.futures.Future``."""
        fut: Future[T] = Future()
        fut.set_running_or_notify_cancel()
        dask_future = self.client.submit(fn, *args, pure=False)
        with self._lock:
            self._pending.add(dask_future)
        dask_future.add_done_callback(lambda done: self._settle(done, fut))
        return fut

    def _settle(self, dask_future: Any, fut: Future[Any]) -> None:
        try:
            fut.set_result(dask_future.result())
        except BaseException as exc:  # delivered through the future, like a pool would
            fut.set_exception(exc)
        finally:
            with self._lock:
                self._pending.discard(dask_future)

    def release(self, instance_keys: frozenset[str] | None = None) -> None:
        """Release the processor instances every worker holds (those in ``instance_keys``)."""
        if self._client is None:
            return
        from incgraph.run.jobs import release_worker_instances

        self._client.run(release_worker_instances, instance_keys)

    def shutdown(self, wait: bool = True) -> None:
        """Close the client if this executor created it."""
        client, self._client = self._client, None
        self._workers = None
        if client is not None and self._owned:
            client.close()
