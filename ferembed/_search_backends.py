"""The FAISS and torch backends of the exact kNN search, and the tie repair that makes their
results identical to the numpy kernel's.

Neither ``faiss.IndexFlat*`` nor ``torch.topk`` promises an order among equal scores, and a cut
at ``k`` may fall inside a run of ties. So a backend is asked for ``k + TIE_MARGIN`` candidates
(one more with leave-one-out, whose own row is then removed by index), and
:func:`order_candidates` re-sorts them by (score desc, reference row asc). The result is exact
when the k-th kept score is above the lowest fetched one: every reference not fetched scores at
most that. Rows where it is not (a tie crosses the cut) are searched again with four times the
candidates, and what a backend cannot fetch (FAISS on a GPU stops at ``k = 2048``) goes to a
fallback search (the numpy kernel) for those rows. :func:`exact_topk` is that loop; it takes
the backend as a plain ``search(q, kk)`` function, so its logic is tested on the CPU with the
same code the GPU runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import numpy as np

from ferembed._parallel import parallel_map
from ferembed._search_engine import FAISS_GPU_MAX_K, faiss_threads
from ferembed._search_kernel import BLOCK_BYTES

#: Candidates fetched beyond k, so that ties at the cut can be re-sorted by reference row.
TIE_MARGIN = 16
#: Scores of one block of query rows on a GPU (bytes).
GPU_BLOCK_BYTES = 2 * 2**30

#: ``search(q, kk) -> (indices (Q, kk) int64, scores (Q, kk) float32)``: the top ``kk`` references
#: of each prepared query row by score (higher = nearer), in any order among ties.
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def order_candidates(
    indices: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    self_rows: np.ndarray | None = None,
    complete: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` of each row of a backend's candidates, by (score desc, reference row asc).

    Args:
        indices: (B, kk) int reference rows, the backend's top ``kk`` (``-1`` = none).
        scores: (B, kk) float32 their scores.
        k: neighbours to keep (``k < kk``, or ``k <= kk`` with ``complete``).
        self_rows: (B,) reference row of each query, removed by index (leave-one-out), or None.
        complete: the candidates are every reference (``kk`` = N): nothing is missing.

    Returns:
        ``(indices (B, k) int64, scores (B, k) float32, unsure (B,) bool)``; ``unsure`` marks
        rows whose k-th score is not above the lowest fetched one, where a reference that was
        not fetched could tie with the kept ones.
    """
    indices = np.asarray(indices, dtype=np.int64)
    scores = np.array(scores, dtype=np.float32)
    last = scores.min(axis=1)  # every reference not fetched scores at most this
    drop = indices < 0
    if self_rows is not None:
        drop |= indices == np.asarray(self_rows)[:, None]
    scores[drop] = -np.inf
    order = np.lexsort((indices, -scores), axis=1)[:, :k]
    top_i = np.take_along_axis(indices, order, axis=1)
    top_s = np.take_along_axis(scores, order, axis=1)
    if complete:
        unsure = np.zeros(len(top_s), dtype=bool)
    else:
        unsure = ~(top_s[:, -1] > last)
    return top_i, top_s, unsure


#: ``fallback(q, self_rows) -> (indices (Q, k), scores (Q, k))``: the exact top k of some query
#: rows by another route (the numpy kernel), for ties wider than a backend can fetch.
Fallback = Callable[[np.ndarray, "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


def exact_topk(
    search: Search,
    q: np.ndarray,
    k: int,
    *,
    n_ref: int,
    self_rows: np.ndarray | None = None,
    max_k: int | None = None,
    fallback: Fallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (score desc, row asc) from a backend that orders ties arbitrarily.

    Args:
        search: the backend (see :data:`Search`), searching ``n_ref`` references.
        q: (Q, D) float32 prepared queries.
        k: neighbours.
        n_ref: references searched (N).
        self_rows: (Q,) reference row of each query, excluded by index, or None.
        max_k: the most candidates ``search`` can fetch (None: N).
        fallback: the exact search of the rows left when ``max_k < N`` (see :data:`Fallback`).

    Returns:
        ``(indices (Q, k) int64, scores (Q, k) float32)``.
    """
    limit = n_ref if max_k is None else min(max_k, n_ref)
    need = k + (self_rows is not None)  # the fewest candidates that can hold k neighbours
    kk = min(limit, need + TIE_MARGIN)
    rows = np.arange(q.shape[0])
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    while rows.size and kk >= need:
        cand_i, cand_s = search(q if rows.size == q.shape[0] else q[rows], kk)
        own = None if self_rows is None else self_rows[rows]
        top_i, top_s, unsure = order_candidates(
            cand_i, cand_s, k, self_rows=own, complete=kk >= n_ref
        )
        indices[rows], scores[rows] = top_i, top_s
        rows = rows[unsure]
        if kk >= limit:
            break
        kk = min(limit, 4 * kk)
    if rows.size:  # ties wider than the backend can fetch: another route for those rows
        if fallback is None:
            raise ValueError(f"a tie wider than {limit} candidates needs a fallback search")
        own = None if self_rows is None else self_rows[rows]
        indices[rows], scores[rows] = fallback(q[rows], own)
    return indices, scores


def faiss_search(ref: np.ndarray, distance: str, device: str) -> tuple[Search, int]:
    """FAISS's exact search over ``ref`` as a :data:`Search`, and the most it can fetch.

    Inner product for cosine (``ref`` is unit rows), squared L2 for euclidean (negated into
    scores). On the CPU ``faiss.knn`` searches ``ref`` in place (a flat index would copy it: 2 GB
    at 1M x 512); on ``"cuda"`` an ``IndexFlatIP`` / ``IndexFlatL2`` is copied to GPU 0 through
    ``StandardGpuResources`` + ``index_cpu_to_gpu``.
    """
    import faiss

    ref = np.ascontiguousarray(ref, dtype=np.float32)
    n, d = ref.shape
    metric = faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2
    sign = 1.0 if distance == "cosine" else -1.0
    if device != "cuda":

        def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
            with faiss_threads(2.0 * q.shape[0] * n * d):
                dist, idx = faiss.knn(np.ascontiguousarray(q, dtype=np.float32), ref, kk, metric)
            return idx, sign * dist

        return search, n

    resources = faiss.StandardGpuResources()
    cpu = faiss.IndexFlatIP(d) if distance == "cosine" else faiss.IndexFlatL2(d)
    cpu.add(ref)
    search = index_search(faiss.index_cpu_to_gpu(resources, 0, cpu), distance, cpu_threads=False)
    search.resources = resources  # the GPU index needs them for as long as it lives
    return search, FAISS_GPU_MAX_K


def index_search(index, distance: str, *, cpu_threads: bool = True) -> Search:
    """A flat FAISS index (CPU or GPU) as a :data:`Search`: its scores, higher = nearer.

    The GPU backend and the saved flat indexes of ``ferembed.index`` search through this; the
    tests run it on a CPU index, so the GPU's tie handling is tested without a GPU.
    """
    sign = 1.0 if distance == "cosine" else -1.0

    def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(q, dtype=np.float32)
        work = 2.0 * q.shape[0] * index.ntotal * index.d if cpu_threads else np.inf
        with faiss_threads(work):
            dist, idx = index.search(q, kk)
        return idx, sign * dist

    return search


@contextlib.contextmanager
def _torch_exact():
    """Full float32 products (no TF32), as numpy and FAISS compute them."""
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.no_grad():
            yield torch
    finally:
        torch.set_float32_matmul_precision(before)


def _torch_rows(n_ref: int, device: str) -> int:
    budget = GPU_BLOCK_BYTES if device == "cuda" else BLOCK_BYTES
    return int(np.clip(budget // (4 * max(n_ref, 1)), 32, 65_536 if device == "cuda" else 4096))


class _TorchScores:
    """Scores of blocks of query rows against ``ref`` on a torch device: the blocked product
    of the numpy kernel (same formula for euclidean), run by torch."""

    def __init__(self, torch, ref: np.ndarray, distance: str, device: str) -> None:
        self.torch = torch
        self.device = torch.device(device)
        self.ref = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32)).to(self.device)
        self.ref_sq = (self.ref * self.ref).sum(1) if distance == "euclidean" else None

    def block(self, qb: np.ndarray):
        """(B, N) float32 scores on the device, higher = nearer."""
        qt = self.torch.from_numpy(np.ascontiguousarray(qb, dtype=np.float32)).to(self.device)
        s = qt @ self.ref.T
        if self.ref_sq is not None:
            # -||q - r||^2 = 2 q.r - ||q||^2 - ||r||^2
            s.mul_(2.0).sub_(self.ref_sq[None, :]).sub_((qt * qt).sum(1)[:, None])
        return s


def torch_search(ref: np.ndarray, distance: str, device: str) -> tuple[Search, int]:
    """Blocked product + ``torch.topk`` on a torch device (``"cpu"`` or ``"cuda"``), as a
    :data:`Search`, and the most it can fetch (N)."""
    rows = _torch_rows(ref.shape[0], device)
    made: list[_TorchScores] = []  # the references go to the device once, not per call

    def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        indices = np.empty((q.shape[0], kk), dtype=np.int64)
        scores = np.empty((q.shape[0], kk), dtype=np.float32)
        with _torch_exact() as torch:
            if not made:
                made.append(_TorchScores(torch, ref, distance, device))
            scorer = made[0]
            for a in range(0, q.shape[0], rows):
                vals, idx = torch.topk(scorer.block(q[a : a + rows]), kk, dim=1)
                scores[a : a + rows] = vals.cpu().numpy()
                indices[a : a + rows] = idx.cpu().numpy()
        return indices, scores

    return search, ref.shape[0]


def torch_score_blocks(
    fn: Callable[[int, int, np.ndarray, dict], None],
    q: np.ndarray,
    ref: np.ndarray,
    spans: list[tuple[int, int]],
    *,
    distance: str,
    self_rows: np.ndarray | None = None,
    device: str = "cpu",
    workers: int = 1,
) -> None:
    """:func:`~ferembed._search_kernel.numpy_score_blocks` with the product on a torch device:
    each span's (rows, N) scores are computed there and handed to ``fn`` as a host array.

    ``workers`` threads run ``fn`` on the host while the device computes the next blocks (use 1
    for a CPU device: torch already spreads its product over the cores)."""
    local = threading.local()
    with _torch_exact() as torch:
        scorer = _TorchScores(torch, ref, distance, device)

        def task(span: tuple[int, int]) -> None:
            start, stop = span
            with torch.no_grad():  # grad mode is per thread
                s = scorer.block(q[start:stop])
                if self_rows is not None:
                    cols = torch.from_numpy(np.ascontiguousarray(self_rows[start:stop]))
                    s[torch.arange(stop - start, device=s.device), cols.to(s.device)] = -np.inf
                host = s.cpu().numpy()
            if getattr(local, "work", None) is None:
                local.work = {}
            fn(start, stop, host, local.work)

        parallel_map(task, spans, workers)
