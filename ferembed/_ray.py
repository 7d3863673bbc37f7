"""Ray for more than one machine: the session, and ``evaluate``'s exact kNN search spread over
workers (``ferembed evaluate RUN --ray``). ``embed --ray`` is in :mod:`ferembed.runs.distributed`.

Ray is an optional extra (``pip install -e .[ray]``), imported only when ``--ray`` is given.
Without an address a local Ray starts on this machine; with one (``ray start --head`` on a
cluster's head node, docs/scale.md) this process joins that cluster as its driver.

The search (:class:`RaySearch`) has the signature of
:func:`ferembed.metrics.retrieval.compute_retrieval` and the same result: the queries are cut into
blocks, in order; every block is one Ray task that runs ``compute_retrieval`` on its queries
against ALL the references, which every worker reads from the Ray object store (zero-copy on
the node, shipped once per node); the blocks' per-query results are concatenated back in query
order. Each per-query value (neighbours, R-precision, MAP@R) depends on its own query only, so
the metrics equal those of one process (up to float rounding of the score products).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ferembed._engines import SEARCH, using
from ferembed.errors import FerembedError

#: The one-line error when ``--ray`` is asked for and Ray is not installed.
MISSING_RAY = "`--ray` needs Ray: pip install -e .[ray]"
#: Queries per search block at least (thinner blocks run BLAS far from its peak).
MIN_BLOCK_QUERIES = 64
#: Search blocks per worker at most: a few, so that a slow node does not hold the others up.
BLOCKS_PER_WORKER = 4


def import_ray():
    """The ``ray`` module (with ``ray.data``), or :class:`FerembedError` naming the extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise FerembedError(MISSING_RAY) from None
    return ray


def worker_error(exc: BaseException, *user: type[BaseException]) -> BaseException:
    """What to raise for a Ray worker's failure ``exc``: the worker's own exception when it is
    one of the ``user`` error types (bad input, said in one line), else a one-line
    :class:`FerembedError` naming it (``--debug`` shows the chain)."""
    import ray.exceptions

    cause, seen = exc, set()
    while isinstance(cause, ray.exceptions.RayError) and id(cause) not in seen:
        seen.add(id(cause))  # Ray wraps the worker's exception in .cause or __cause__
        inner = getattr(cause, "cause", None) or cause.__cause__
        if inner is None:
            break
        cause = inner
    if isinstance(cause, (FerembedError, *user)):
        # Ray appends its retry advice to the message: the worker's own line comes first.
        lines = str(cause).strip().splitlines()
        return type(cause)(lines[0] if lines else "")
    lines = str(cause).strip().splitlines()
    what = f"{type(cause).__name__}: {lines[-1][:200]}" if lines else type(cause).__name__
    return FerembedError(f"--ray: a worker failed ({what})")


class RaySession:
    """A Ray connection opened on first use and closed by whoever opened it.

    Args:
        address: a running cluster's address (``HOST:6379``, ``ray://HOST:10001`` or ``auto``),
            or None to start a local Ray on this machine.
        workers: CPUs a local Ray may use (default: this process's CPUs); on a cluster, the
            workers to use (default: the cluster's GPUs for embedding, else its CPUs).

    Starting Ray waits for the first :meth:`start`, so a command that refuses its input does
    so before paying for it. A Ray already initialised in this process (a test's fixture, a
    notebook) is used as it is and left running.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self._opened = False

    def start(self):
        """Connect (once) and return the ``ray`` module."""
        ray = import_ray()
        if not ray.is_initialized():
            self._init(ray)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ferembed's own bar counts the faces
        ctx.print_on_execution_start = False
        ctx.raise_original_map_exception = True  # a worker's error as itself (worker_error)
        # Ray Data logs a worker's failure with its traceback; ferembed says it in one line.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        return ray

    def _init(self, ray) -> None:
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                from ferembed._parallel import n_workers

                ray.init(
                    num_cpus=self.workers or n_workers(),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"--ray-address {self.address}" if self.address else "local Ray"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FerembedError(f"{where}: cannot start or connect ({first[:200]})") from None
        self._opened = True

    def cluster(self, resource: str) -> int:
        """How many of ``resource`` (``"CPU"``, ``"GPU"``) the cluster has."""
        return int(self.start().cluster_resources().get(resource, 0))

    def close(self) -> None:
        if self._opened:
            import ray

            ray.shutdown()
            self._opened = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _search_block(x, y, queries, reference, reference_labels, options):
    from ferembed.metrics.retrieval import compute_retrieval

    return compute_retrieval(
        x, y, queries=queries, reference=reference, reference_labels=reference_labels, **options
    )


def _concat(parts: list, head: Any, queries: np.ndarray) -> Any:
    """The result of one search over ``queries``, from its blocks' results (same dataclass).

    Arrays with one row per query are concatenated in block order; anything else (the
    distance, ``exclude_self``) is the same in every block and is taken from the first.
    """
    values = {}
    for f in dataclasses.fields(head):
        first = getattr(head, f.name)
        if f.name == "queries":
            values[f.name] = queries
        elif dataclasses.is_dataclass(first):
            values[f.name] = _concat([getattr(p, f.name) for p in parts], first, queries)
        elif isinstance(first, np.ndarray) and first.ndim >= 1:
            values[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
        else:
            values[f.name] = first
    return type(head)(**values)


class RaySearch:
    """``compute_retrieval`` spread over Ray workers, in blocks of queries (module docstring).

    Use it for ``evaluate`` with ``ferembed._engines.using(SEARCH, RaySearch(session))``.
    """

    def __init__(self, session: RaySession) -> None:
        self.session = session
        self.blocks_run = 0  # blocks of the last search (the tests check that work was spread)

    def __call__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        queries: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        reference_labels: np.ndarray | None = None,
        **options: Any,
    ):
        """Same arguments and result as :func:`~ferembed.metrics.retrieval.compute_retrieval`."""
        from ferembed._search import check_queries

        ray = self.session.start()
        qidx = check_queries(queries, np.asarray(x).shape[0])
        workers = self.session.workers or max(1, self.session.cluster("CPU"))
        n_blocks = max(
            1, min(math.ceil(qidx.size / MIN_BLOCK_QUERIES), BLOCKS_PER_WORKER * workers)
        )
        # Object refs passed as arguments reach the task as the arrays, read-only and without a
        # copy on the node that holds them.
        x_ref = ray.put(np.ascontiguousarray(x))
        y_ref = ray.put(np.asarray(y))
        ref_ref = None if reference is None else ray.put(np.ascontiguousarray(reference))
        task = ray.remote(num_cpus=1, max_retries=2)(_search_block)
        futures = [
            task.remote(x_ref, y_ref, block, ref_ref, reference_labels, options)
            for block in np.array_split(qidx, n_blocks)
        ]
        self.blocks_run = len(futures)
        try:
            parts = ray.get(futures)
        except ray.exceptions.RayError as exc:
            raise worker_error(exc, ValueError) from exc
        return _concat(parts, parts[0], qidx)


@contextlib.contextmanager
def ray_search(address: str | None = None, workers: int | None = None) -> Iterator[RaySearch]:
    """Inside the block, ``evaluate`` (and ``evaluate_run``) run their shared kNN search on Ray
    (a local Ray unless ``address``), started at the first search.

    Example::

        with ray_search():
            evaluate_run("runs/x")
    """
    with RaySession(address, workers) as session:
        search = RaySearch(session)
        with using(SEARCH, search):
            yield search
