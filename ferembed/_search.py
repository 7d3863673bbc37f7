"""Exact k-nearest-neighbour search in bounded memory.

The shared input of the kNN-based metrics (``ferembed.metrics``) and the reference against which
approximate FAISS indexes are measured (``ferembed.index``); it sits below both packages.

Scores, not distances, drive the search: for ``distance="cosine"`` the score of a (query,
reference) pair is the inner product of the L2-normalised rows, for ``"euclidean"`` it is minus the
squared L2 distance. Higher is nearer. Queries are processed in blocks of rows, a few blocks at a
time on worker threads: the blocks' scores against every reference, ``(rows, N_ref)`` float32, and
their temporaries are the only large arrays, kept within :data:`BLOCK_BYTES` whatever the number
of queries.

Tie handling (deterministic, documented once here and relied on by the callers):

* Neighbours are ordered by descending score, exact float32 ties by ascending reference row. So
  among several references at exactly the same distance, the lowest rows are the nearest and the
  cut at ``k`` keeps the lowest rows. (FAISS's flat indexes do not promise any order among
  ties: ``IndexFlatIP`` returns them highest row first.)
* With ``exclude_self`` the query's own row is removed by index, never by distance, so an exact
  duplicate of the query stays a neighbour (at distance 0).
* Scores come from BLAS matrix products in float32. Two references that are equal in exact
  arithmetic normally give bit-identical scores, but nothing guarantees it to the last bit
  (a product may take a different kernel at a block edge), so a duplicate's order relative to its
  twin may follow a 1-ulp difference rather than the row rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ferembed._arrays import check_distance, check_embeddings, prepare_embeddings
from ferembed._parallel import n_workers, parallel_map

#: Memory allowed for the blocks of scores in flight (bytes). Tall blocks make the score product
#: run near BLAS peak (a 32-row block is about twice as slow per row as a 128-row one).
BLOCK_BYTES = 512 * 2**20
#: Memory for the temporaries of post-processing one block, which runs in sub-blocks of rows:
#: per score a partition copy (4) and, for R-precision / MAP@R, two integer key buffers (8).
SUB_BYTES = 64 * 2**20
_TEMP_BYTES_PER_SCORE = 12


@dataclass(frozen=True)
class KNN:
    """Result of a k-nearest-neighbour search.

    Attributes:
        indices: (Q, k) int64 reference rows, nearest first.
        distances: (Q, k) float32 distances of those rows: cosine distance ``1 - cos`` for
            ``"cosine"``, the L2 distance for ``"euclidean"``.
        queries: (Q,) int64 rows of the query set that were searched (all rows, in order,
            unless a subset was asked for).
        distance: ``"cosine"`` or ``"euclidean"``.
        exclude_self: whether each query's own row was excluded (leave-one-out).
    """

    indices: np.ndarray
    distances: np.ndarray
    queries: np.ndarray
    distance: str = "cosine"
    exclude_self: bool = True

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def scores_to_distances(scores: np.ndarray, distance: str) -> np.ndarray:
    """Convert search scores (higher = nearer) to distances, float32."""
    if distance == "cosine":
        return (1.0 - scores).astype(np.float32, copy=False)
    return np.sqrt(np.maximum(-scores, 0.0)).astype(np.float32, copy=False)


def block_plan(n_ref: int, chunk_size: int | None = None) -> tuple[int, int]:
    """``(rows, workers)``: query rows per block and blocks processed concurrently.

    ``chunk_size`` fixes the rows; otherwise the blocks in flight share :data:`BLOCK_BYTES`,
    with at least 32 rows per block (BLAS runs far from peak on thinner products), using fewer
    workers rather than thinner blocks.
    """
    workers = n_workers()
    if chunk_size is not None:
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size), workers
    per_row = 4 * max(n_ref, 1)
    while workers > 1 and BLOCK_BYTES // (workers * per_row) < 32:
        workers -= 1
    return int(np.clip(BLOCK_BYTES // (workers * per_row), 32, 4096)), workers


def sub_rows(n_ref: int) -> int:
    """Rows per post-processing sub-block, so that its temporaries fit :data:`SUB_BYTES`."""
    return max(1, SUB_BYTES // (_TEMP_BYTES_PER_SCORE * max(n_ref, 1)))


def map_score_blocks(
    fn: Callable[[int, int, np.ndarray, dict], None],
    q: np.ndarray,
    ref: np.ndarray,
    spans: list[tuple[int, int]],
    *,
    distance: str,
    self_rows: np.ndarray | None = None,
    workers: int = 1,
) -> None:
    """Call ``fn(start, stop, scores, work)`` for each span of query rows, on worker threads.

    NumPy and BLAS release the GIL, so blocks run truly in parallel; with several workers each
    BLAS call is limited to one thread (no oversubscription), with one worker BLAS uses them all.

    Args:
        fn: receives the span, its scores and a per-thread scratch dict; it writes its results
            into arrays it owns (spans are disjoint, so no locking is needed).
        q: (Q, D) float32 queries, already prepared (:func:`prepare_embeddings`).
        ref: (N, D) float32 references, prepared the same way.
        spans: ``(start, stop)`` row ranges of ``q``.
        distance: ``"cosine"`` (scores are inner products) or ``"euclidean"`` (minus squared L2).
        self_rows: (Q,) int64 reference row of each query, masked with ``-inf``, or None.
        workers: threads.

    ``scores`` is (stop - start, N) float32, higher = nearer, in a buffer reused by the thread's
    next span: ``fn`` must copy what must outlive the call.
    """
    n_ref = ref.shape[0]
    ref_sq = np.einsum("ij,ij->i", ref, ref) if distance == "euclidean" else None
    local = threading.local()
    max_rows = max((stop - start for start, stop in spans), default=0)

    def task(span: tuple[int, int]) -> None:
        start, stop = span
        if getattr(local, "buf", None) is None:
            local.buf = np.empty((max_rows, n_ref), dtype=np.float32)
            local.work = {}
        qb = q[start:stop]
        s = np.matmul(qb, ref.T, out=local.buf[: stop - start])
        if ref_sq is not None:
            # -||q - r||^2 = 2 q.r - ||q||^2 - ||r||^2
            s *= 2.0
            s -= ref_sq[None, :]
            s -= np.einsum("ij,ij->i", qb, qb)[:, None]
        if self_rows is not None:
            s[np.arange(stop - start), self_rows[start:stop]] = -np.inf
        fn(start, stop, s, local.work)

    parallel_map(task, spans, workers)


def spans_of(n: int, rows: int, start: int = 0) -> list[tuple[int, int]]:
    """``[(start, start + rows), ...]`` covering ``start .. start + n``."""
    return [(a, min(a + rows, start + n)) for a in range(start, start + n, rows)]


def nonzero_2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a C-contiguous 2-D mask, (rows, cols) int64 in row-major order.

    Same result, several times faster: NumPy's 2-D ``nonzero`` builds each multi-index
    element by element, ``flatnonzero`` + ``divmod`` is two vectorised passes.
    """
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def topk_from_scores(
    scores: np.ndarray, k: int, *, kth_score: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest scores of each row, ordered by (score desc, column asc).

    Args:
        scores: (B, N) float32.
        k: number of neighbours, ``1 <= k <= N``.
        kth_score: (B,) the k-th largest score of each row when already known (saves a
            partition), else None.

    Returns:
        ``(columns (B, k) int64, scores (B, k) float32)``.
    """
    b, n = scores.shape
    if k >= n:
        rows, cols = np.divmod(np.arange(b * n, dtype=np.int64), n)
    else:
        if kth_score is None:
            kth_score = np.partition(scores, n - k, axis=1)[:, n - k]
        # Every row has at least k scores >= its k-th largest; more when there are ties at the cut.
        rows, cols = nonzero_2d(scores >= kth_score[:, None])
    vals = scores[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=b)
    first = np.cumsum(counts) - counts
    keep = (np.arange(rows.size) - first[rows]) < k
    return cols[keep].reshape(b, k).astype(np.int64, copy=False), vals[keep].reshape(b, k)


def compute_knn(
    x: np.ndarray,
    k: int,
    *,
    distance: str = "cosine",
    reference: np.ndarray | None = None,
    exclude_self: bool = True,
    queries: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> KNN:
    """Exact k nearest neighbours, computed in blocks of query rows (bounded memory).

    Args:
        x: (N, D) query embeddings (any float dtype; converted to float32).
        k: number of neighbours, 1 <= k <= number of candidate references.
        distance: ``"cosine"`` (inner product of L2-normalised rows) or ``"euclidean"``.
        reference: (M, D) reference embeddings to search, or None to search ``x`` itself
            (leave-one-out when ``exclude_self``).
        exclude_self: with ``reference=None``, drop each query's own row. Ignored when a
            reference set is given (queries and references are different samples).
        queries: (Q,) row indices of ``x`` to use as queries (e.g. a stratified sample), or None
            for all rows. With ``reference=None`` all rows of ``x`` remain references.
        chunk_size: query rows per block; None sizes blocks to about 512 MiB of scores.

    Returns:
        :class:`KNN` with (Q, k) int64 indices and float32 distances. Order and ties: see the
        module docstring (score desc, then reference row asc).

    Raises:
        ValueError: non-finite rows, shape mismatch, unknown distance, or ``k`` out of range.
    """
    check_distance(distance)
    x, _ = check_embeddings(x)
    if reference is not None:
        reference, _ = check_embeddings(reference, name="reference")
        if reference.shape[1] != x.shape[1]:
            raise ValueError(
                f"reference has dimension {reference.shape[1]}, embeddings have {x.shape[1]}"
            )
    qidx = check_queries(queries, x.shape[0])
    loo = reference is None and exclude_self
    base = prepare_embeddings(x, distance)
    ref = base if reference is None else prepare_embeddings(reference, distance)
    q = base if queries is None else base[qidx]
    n_cand = ref.shape[0] - int(loo)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n_cand:
        raise ValueError(f"k must be an integer in [1, {n_cand}], got {k!r}")
    indices = np.empty((qidx.size, k), dtype=np.int64)
    scores = np.empty((qidx.size, k), dtype=np.float32)

    sub = sub_rows(ref.shape[0])

    def topk(start: int, stop: int, s: np.ndarray, work: dict) -> None:
        for a in range(0, stop - start, sub):
            b = min(a + sub, stop - start)
            indices[start + a : start + b], scores[start + a : start + b] = topk_from_scores(
                s[a:b], k
            )

    rows, workers = block_plan(ref.shape[0], chunk_size)
    map_score_blocks(
        topk,
        q,
        ref,
        spans_of(qidx.size, rows),
        distance=distance,
        self_rows=qidx if loo else None,
        workers=workers,
    )
    return KNN(
        indices=indices,
        distances=scores_to_distances(scores, distance),
        queries=qidx,
        distance=distance,
        exclude_self=loo,
    )


def check_queries(queries: np.ndarray | None, n: int) -> np.ndarray:
    if queries is None:
        return np.arange(n, dtype=np.int64)
    qidx = np.asarray(queries)
    if qidx.ndim != 1 or not np.issubdtype(qidx.dtype, np.integer):
        raise ValueError(f"queries must be a 1-D integer array of row indices, got {qidx.dtype}")
    if qidx.size == 0:
        raise ValueError("queries is empty")
    if qidx.min() < 0 or qidx.max() >= n:
        raise ValueError(f"queries must be row indices in [0, {n - 1}]")
    return qidx.astype(np.int64, copy=False)
