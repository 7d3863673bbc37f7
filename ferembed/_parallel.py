"""The one parallel map of ferembed's numeric kernels: threads, with BLAS on one thread each.

NumPy ufuncs and BLAS release the GIL, so threads give real parallelism on the GEMMs and
elementwise passes of a block (the exact kNN search, the tiled Euclidean distances); limiting BLAS
to one thread per worker avoids oversubscribing the cores. A leaf module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

#: Most worker threads: the blocks in flight share a memory budget, so more workers would mean
#: thinner blocks (and BLAS runs far from peak on thin products).
MAX_WORKERS = 8


def n_workers() -> int:
    """CPUs this process may use, capped at :data:`MAX_WORKERS`: the default number of threads."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_WORKERS))


def parallel_map(fn: Callable, items: Iterable, workers: int | None = None) -> list:
    """``[fn(i) for i in items]``, on ``workers`` threads (None: :func:`n_workers`).

    With one worker or one item it runs in the calling thread and BLAS keeps all its threads.
    """
    items = list(items)
    workers = n_workers() if workers is None else workers
    if workers <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
