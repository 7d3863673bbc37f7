"""The numpy kernel of the exact kNN search: blocks of query rows scored against every reference
by a BLAS product on worker threads, and the exact top-k of a block of scores.

Used by :mod:`ferembed._search` (the ``"numpy"`` backend, and the exact fallback of the other
backends when a tie crosses the cut) and by the fused R-precision / MAP@R search of
``ferembed.metrics.retrieval``. A leaf below ``_search``; the tie rules are documented there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ferembed._parallel import n_workers, parallel_map

#: Memory allowed for the blocks of scores in flight (bytes). Tall blocks make the score product
#: run near BLAS peak (a 32-row block is about twice as slow per row as a 128-row one).
BLOCK_BYTES = 512 * 2**20
#: Memory for the temporaries of post-processing one block, which runs in sub-blocks of rows:
#: per score a partition copy (4) and, for R-precision / MAP@R, two integer key buffers (8).
SUB_BYTES = 64 * 2**20
_TEMP_BYTES_PER_SCORE = 12


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


def numpy_score_blocks(
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


def numpy_topk(
    q: np.ndarray,
    ref: np.ndarray,
    k: int,
    *,
    distance: str,
    self_rows: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of every query row, ordered by (score desc, reference row asc).

    Args:
        q: (Q, D) float32 prepared queries.
        ref: (N, D) float32 prepared references.
        k: neighbours, ``1 <= k <= N`` (minus one with ``self_rows``).
        distance: ``"cosine"`` or ``"euclidean"``.
        self_rows: (Q,) reference row of each query, excluded by index, or None.
        chunk_size: query rows per block (None: about :data:`BLOCK_BYTES` of scores).

    Returns:
        ``(indices (Q, k) int64, scores (Q, k) float32)``.
    """
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    sub = sub_rows(ref.shape[0])

    def topk(start: int, stop: int, s: np.ndarray, work: dict) -> None:
        for a in range(0, stop - start, sub):
            b = min(a + sub, stop - start)
            indices[start + a : start + b], scores[start + a : start + b] = topk_from_scores(
                s[a:b], k
            )

    rows, workers = block_plan(ref.shape[0], chunk_size)
    numpy_score_blocks(
        topk,
        q,
        ref,
        spans_of(q.shape[0], rows),
        distance=distance,
        self_rows=self_rows,
        workers=workers,
    )
    return indices, scores
