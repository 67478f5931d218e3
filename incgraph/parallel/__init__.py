"""In-batch parallelism: run a batch method once per item, in threads, a loop or processes.

This is the third incgraph front-end, for parallelism *inside* one computation:
a ``Batch`` subclass declares an action with `inbatch_parallel`, whose
``init`` says how to split the work into calls, and whose ``post`` gathers the
per-call results (exceptions included, in place) into the next batch::

    class Images(Batch):
        def _per_item(self, *args, **kwargs):
            return self.indices

        def _collect(self, results, *args, **kwargs):
            self.data = results
            return self

        @action
        @inbatch_parallel(init="_per_item", post="_collect", target="threads")
        def blur(self, index, radius):
            return gaussian(self.data[index], radius)

    Images(pictures).blur(2)

Modules, each owning one concern:

* ``batch``       the ``Batch`` container and the ``action`` marker
* ``entries``     how an init entry becomes one call's arguments
* ``decorator``   ``inbatch_parallel``: init -> calls -> post, and error policy
* ``threads``     the threads/nogil runner: shared pools, chunked, caller helps
* ``coroutines``  the async runner: ``asyncio.gather``, also under a running loop
* ``processes``   the mpc runner: joblib's loky workers, chunked

Nothing here imports numba, numpy or joblib at import time; a decorated action
used inside a processor's ``process`` is just a method call, cached with its
node like any other code.
"""

from __future__ import annotations

from incgraph.parallel.batch import Batch, action
from incgraph.parallel.decorator import TARGETS, any_action_failed, inbatch_parallel

__all__ = ["TARGETS", "Batch", "action", "any_action_failed", "inbatch_parallel"]
