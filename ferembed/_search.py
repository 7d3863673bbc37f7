"""Exact k-nearest-neighbour search in bounded memory: the one kNN engine of ferembed.

The shared input of the kNN-based metrics (``ferembed.metrics``: evaluate, compare), of the
dashboard's neighbours and the reference against which approximate FAISS indexes are measured
(``ferembed.index``); it sits below both packages.

One entry point, :func:`compute_knn`, three backends with identical results
(:mod:`ferembed._search_engine` chooses; ``device=`` / ``backend=``):

* ``"numpy"``: the blocked BLAS kernel of :mod:`ferembed._search_kernel` (CPU);
* ``"faiss"``: ``IndexFlatIP`` / ``IndexFlatL2`` (exact), on the GPU through
  ``StandardGpuResources`` + ``index_cpu_to_gpu`` when ``faiss.get_num_gpus() > 0``;
* ``"torch"``: the same blocked product + ``torch.topk`` on a torch device, so CUDA torch without
  faiss-gpu gets the GPU too.

Scores, not distances, drive the search: for ``distance="cosine"`` the score of a (query,
reference) pair is the inner product of the L2-normalised rows, for ``"euclidean"`` it is minus the
squared L2 distance. Higher is nearer. Queries are processed in blocks of rows, a few blocks at a
time on worker threads: the blocks' scores against every reference, ``(rows, N_ref)`` float32, and
their temporaries are the only large arrays, kept within ``BLOCK_BYTES`` whatever the number
of queries.

Tie handling (deterministic, documented once here and relied on by the callers):

* Neighbours are ordered by descending score, exact float32 ties by ascending reference row. So
  among several references at exactly the same distance, the lowest rows are the nearest and the
  cut at ``k`` keeps the lowest rows. FAISS's flat indexes and ``torch.topk`` do not promise any
  order among ties (``IndexFlatIP`` returns them highest row first): their candidates are
  re-sorted, and a tie that crosses the cut is resolved exactly
  (:mod:`ferembed._search_backends`).
* With ``exclude_self`` the query's own row is removed by index, never by distance, so an exact
  duplicate of the query stays a neighbour (at distance 0).
* Scores come from float32 matrix products (BLAS, FAISS, cuBLAS; never TF32). Two references that
  are equal in exact arithmetic normally give bit-identical scores, but nothing guarantees it to
  the last bit (a product may take a different kernel at a block edge, and the backends use
  different kernels), so a duplicate's order relative to its twin, and the order of two
  references whose scores differ by an ulp, may follow that difference rather than the row rule.
  Distances agree across backends within float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ferembed._arrays import check_distance, check_embeddings, prepare_embeddings
from ferembed._search_backends import (
    exact_topk,
    faiss_search,
    torch_score_blocks,
    torch_search,
)
from ferembed._search_engine import (
    SearchEngine,
    resolve_engine,
    search_engine,
    torch_cuda_available,
)
from ferembed._search_kernel import (
    BLOCK_BYTES,
    SUB_BYTES,
    block_plan,
    nonzero_2d,
    numpy_score_blocks,
    numpy_topk,
    spans_of,
    sub_rows,
    topk_from_scores,
)

__all__ = [
    "BLOCK_BYTES",
    "KNN",
    "SUB_BYTES",
    "SearchEngine",
    "block_plan",
    "check_queries",
    "compute_knn",
    "map_score_blocks",
    "nonzero_2d",
    "resolve_engine",
    "scores_to_distances",
    "search_engine",
    "spans_of",
    "sub_rows",
    "topk_from_scores",
]


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
        backend: the backend that ran the search (``"numpy"``, ``"faiss"``, ``"torch"``).
        device: where it ran (``"cpu"``, ``"cuda"``).
    """

    indices: np.ndarray
    distances: np.ndarray
    queries: np.ndarray
    distance: str = "cosine"
    exclude_self: bool = True
    backend: str = "numpy"  # what ran the search: "numpy", "faiss" or "torch"
    device: str = "cpu"  # where: "cpu" or "cuda"

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


def compute_knn(
    x: np.ndarray,
    k: int,
    *,
    distance: str = "cosine",
    reference: np.ndarray | None = None,
    exclude_self: bool = True,
    queries: np.ndarray | None = None,
    chunk_size: int | None = None,
    device: str | None = None,
    backend: str | None = None,
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
        chunk_size: query rows per block of the numpy backend; None sizes blocks to about
            512 MiB of scores.
        device: ``"auto"`` (a GPU when one is usable), ``"cpu"`` or ``"cuda"``; None: the
            :func:`search_engine` default, ``"auto"`` unless set.
        backend: ``"auto"``, ``"numpy"``, ``"faiss"`` or ``"torch"``; None: likewise. Every
            backend gives the same neighbours (module docstring).

    Returns:
        :class:`KNN` with (Q, k) int64 indices and float32 distances, and the backend and
        device that ran. Order and ties: see the module docstring (score desc, then reference
        row asc).

    Raises:
        ValueError: non-finite rows, shape mismatch, unknown distance, or ``k`` out of range.
        ConfigError: a device or backend that cannot run here (``"cuda"`` without a GPU).
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
    n_cand = (x.shape[0] if reference is None else reference.shape[0]) - int(loo)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n_cand:
        raise ValueError(f"k must be an integer in [1, {n_cand}], got {k!r}")
    if chunk_size is not None and int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    engine = resolve_engine(device, backend, k=int(k))
    base = prepare_embeddings(x, distance)
    ref = base if reference is None else prepare_embeddings(reference, distance)
    q = base if queries is None else base[qidx]
    self_rows = qidx if loo else None
    if engine.backend == "numpy":
        indices, scores = numpy_topk(
            q, ref, int(k), distance=distance, self_rows=self_rows, chunk_size=chunk_size
        )
    else:
        make = faiss_search if engine.backend == "faiss" else torch_search
        search, max_k = make(ref, distance, engine.device)
        indices, scores = exact_topk(
            search,
            q,
            int(k),
            n_ref=ref.shape[0],
            self_rows=self_rows,
            max_k=max_k,
            fallback=lambda qr, own: numpy_topk(qr, ref, int(k), distance=distance, self_rows=own),
        )
    return KNN(
        indices=indices,
        distances=scores_to_distances(scores, distance),
        queries=qidx,
        distance=distance,
        exclude_self=loo,
        backend=engine.backend,
        device=engine.device,
    )


def map_score_blocks(
    fn: Callable[[int, int, np.ndarray, dict], None],
    q: np.ndarray,
    ref: np.ndarray,
    spans: list[tuple[int, int]],
    *,
    distance: str,
    self_rows: np.ndarray | None = None,
    workers: int = 1,
    device: str | None = None,
    backend: str | None = None,
) -> SearchEngine:
    """Call ``fn(start, stop, scores, work)`` for each span of query rows with its full rows of
    scores: the score product of the engine, for callers that read more than the top k (the
    fused R-precision / MAP@R search).

    Args: as :func:`~ferembed._search_kernel.numpy_score_blocks` (``workers`` applies to the
    numpy product), plus ``device`` / ``backend`` as in :func:`compute_knn`.

    The torch backend computes the products on its device and hands ``fn`` host arrays. FAISS
    has no product of its own to offer here (its CPU pairwise inner product *is* a BLAS product):
    with ``backend="faiss"`` the product runs on CUDA torch when the engine is on the GPU and
    torch can reach it, else with numpy. The returned engine says which ran.
    """
    engine = resolve_engine(device, backend)
    kw = {"distance": distance, "self_rows": self_rows}
    if engine.backend == "torch" or (engine.device == "cuda" and torch_cuda_available()):
        host_workers = workers if engine.device == "cuda" else 1
        torch_score_blocks(fn, q, ref, spans, device=engine.device, workers=host_workers, **kw)
        return SearchEngine("torch", engine.device)
    numpy_score_blocks(fn, q, ref, spans, workers=workers, **kw)
    return SearchEngine("numpy", "cpu")


def check_queries(queries: np.ndarray | None, n: int) -> np.ndarray:
    """(Q,) int64 query rows: ``queries`` checked against ``n`` rows, or all rows for None."""
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
