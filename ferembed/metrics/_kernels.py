"""Numeric kernels beneath the geometry-style metrics (geometry, distances, silhouette, collapse,
classification, the geometry bootstrap): row chunks, float64 / unit rows, class sums, class
slices, centroids, and the tiled exact Euclidean kernel.

Everything here takes checked arrays (``x`` float32 (N, D), ``y`` int64 (N,) in ``0..K-1``) and
works in bounded memory: O(N) passes run over chunks of :data:`ROWS` rows, pairwise work over
tiles, on the threads of :func:`ferembed._parallel.parallel_map`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from scipy import sparse

from ferembed._parallel import parallel_map

ROWS = 65_536  # rows per chunk for O(N) passes: bounds temporaries to a few tens of MB

_shared = threading.local()


@contextmanager
def shared_passes():
    """Within this block, the O(N) passes of :func:`memo`-ised kernels run once per array.

    ``evaluate`` runs its groups inside it: the class sums, squared norms and distances to the
    centroids that compactness, separation, Davies-Bouldin, Calinski-Harabasz, Fisher, the
    geometry bootstrap, silhouette and the centroid classifier each need are computed once
    instead of once per metric (each pass over 1M x 512 float64 rows costs seconds). Results are
    keyed by the arrays' identity and hold a reference to them, so an id cannot be reused while
    the block lasts; outside any block nothing is kept.
    """
    outer = getattr(_shared, "cache", None)
    if outer is None:
        _shared.cache = {}
    try:
        yield
    finally:
        if outer is None:
            _shared.cache = None


def memo(key: tuple, arrays: tuple, fn: Callable):
    """``fn()``, computed once per ``key`` (which must name ``arrays`` by id) inside
    :func:`shared_passes`; plain ``fn()`` outside."""
    cache = getattr(_shared, "cache", None)
    if cache is None:
        return fn()
    if key not in cache:
        cache[key] = (fn(), arrays)
    return cache[key][0]


def row_chunks(n: int, rows: int = ROWS) -> Iterator[slice]:
    """Slices of at most ``rows`` consecutive rows covering ``0..n``."""
    return (slice(s, min(s + rows, n)) for s in range(0, n, rows))


def unit64(a: np.ndarray) -> np.ndarray:
    """Rows as float64, L2-normalised (zero rows stay zero).

    Normalising in float64 (not float32) keeps cosine distances exact to ~1e-15 even when they
    are tiny (vectors far from the origin with a small spread), where the closed forms of the
    metrics subtract nearly equal numbers.
    """
    a = a.astype(np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", a, a))[:, None]
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)


def as64(a: np.ndarray, unit: bool) -> np.ndarray:
    """Rows as float64, L2-normalised when ``unit``."""
    return unit64(a) if unit else a.astype(np.float64)


def class_sums(x: np.ndarray, y: np.ndarray, k: int, *, unit: bool = False) -> np.ndarray:
    """(K, D) float64 per-class sums (of unit vectors when ``unit``), chunk by chunk."""
    key = ("class_sums", id(x), id(y), k, unit)
    return memo(key, (x, y), lambda: _class_sums(x, y, k, unit)).copy()


def _class_sums(x: np.ndarray, y: np.ndarray, k: int, unit: bool) -> np.ndarray:
    def part(sl: slice) -> np.ndarray:
        yc = y[sl]
        onehot = sparse.csr_matrix((np.ones(yc.size), (yc, np.arange(yc.size))), shape=(k, yc.size))
        return onehot @ as64(x[sl], unit)

    out = np.zeros((k, x.shape[1]))
    for p in parallel_map(part, row_chunks(x.shape[0])):  # added in chunk order: deterministic
        out += p
    return out


def each_chunk(fn: Callable[[slice], None], n: int) -> None:
    """``fn(sl)`` for every chunk of ``n`` rows, on threads; ``fn`` writes disjoint rows."""
    parallel_map(fn, row_chunks(n))


def row_sq_norms(x: np.ndarray, *, unit: bool = False) -> np.ndarray:
    """(N,) float64 squared row norms (of the unit vectors when ``unit``: 1, or 0 for zero rows)."""
    return memo(("row_sq_norms", id(x), unit), (x,), lambda: _row_sq_norms(x, unit)).copy()


def _row_sq_norms(x: np.ndarray, unit: bool) -> np.ndarray:
    out = np.empty(x.shape[0])

    def fill(sl: slice) -> None:
        xc = as64(x[sl], unit)
        out[sl] = np.einsum("ij,ij->i", xc, xc)

    each_chunk(fill, x.shape[0])
    return out


def class_slices(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (stable sort by label) and ``starts`` (K+1,).

    Class c is ``order[starts[c]:starts[c + 1]]``.
    """
    order = np.argsort(y, kind="stable")
    starts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(y, minlength=k), out=starts[1:])
    return order, starts


def centroids_from_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(K, D) class means from (K, D) sums and (K,) counts; NaN rows for empty classes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def class_residual_sq_norms(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """(N,) float64 ``||x_i - mu_{y_i}||^2`` to the (plain) class means, chunk by chunk."""

    def compute() -> np.ndarray:
        cent = centroids_from_sums(class_sums(x, y, k), np.bincount(y, minlength=k))
        return residual_sq_norms(x, y, cent)

    return memo(("class_residual_sq_norms", id(x), id(y), k), (x, y), compute).copy()


def residual_sq_norms(x: np.ndarray, y: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """(N,) float64 ``||x_i - cent[y_i]||^2``, chunk by chunk."""
    out = np.empty(x.shape[0])

    def fill(sl: slice) -> None:
        diff = x[sl].astype(np.float64) - cent[y[sl]]
        out[sl] = np.einsum("ij,ij->i", diff, diff)

    each_chunk(fill, x.shape[0])
    return out


# --------------------------------------------------------------------------- euclidean kernel

_NEAR = 1e-2  # pairs with d^2 below _NEAR * (typical squared radius of the tile) are recomputed


def _tile_operands(xb: np.ndarray, shift: np.ndarray):
    """Centre a block and build the augmented float32 operands of the distance GEMM.

    ``[x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2``, so a single SGEMM yields squared distances
    with no further elementwise passes.
    """
    xc = xb.astype(np.float64) - shift
    nrm = np.einsum("ij,ij->i", xc, xc)
    x32 = xc.astype(np.float32)
    one = np.ones((xb.shape[0], 1), np.float32)
    n32 = nrm.astype(np.float32)[:, None]
    left = np.hstack([x32, n32, one])
    right = np.hstack([-2.0 * x32, one, n32])
    return left, right, xc, nrm


def _euclidean_tile(li, rj, xi, xj, thr) -> np.ndarray:
    """(B_i, B_j) float32 Euclidean distances of a tile; near pairs recomputed in float64.

    The squared distance from the expansion has an absolute error of about
    ``eps32 * sqrt(D) * (|x_i|^2 + |x_j|^2)`` (vectors centred on the tile's row block). Pairs
    closer than ``sqrt(_NEAR)`` times the block's typical radius -- duplicates, self pairs -- are
    recomputed exactly from the float64 differences; for all other pairs the relative error of
    the distance stays around 1e-5.
    """
    g = li @ rj.T
    near = g < thr
    if near.any():
        r, c = np.nonzero(near)
        g[r, c] = np.einsum("ij,ij->i", xi[r] - xj[c], xi[r] - xj[c])
    return np.sqrt(g, out=g)


def _label_runs(lab: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, class)`` runs of a label-sorted block (usually a single run)."""
    cut = np.flatnonzero(lab[1:] != lab[:-1]) + 1
    bounds = np.concatenate([[0], cut, [lab.size]])
    return [(int(s), int(e), int(lab[s])) for s, e in zip(bounds[:-1], bounds[1:], strict=True)]


def euclidean_class_sums(
    x: np.ndarray,
    y: np.ndarray,
    k: int,
    *,
    rows: np.ndarray | None = None,
    block_size: int = 1024,
    n_threads: int | None = None,
) -> np.ndarray:
    """``out[r, c] = sum_{j: y_j = c} ||x_{rows[r]} - x_j||`` (self pair included, it is 0).

    Exact, in (block_size x block_size) tiles so memory stays bounded; data are visited in
    label order (so a tile's per-class sums are sums over contiguous slices) and each tile is
    centred on its row block's mean, which keeps the float32 GEMM accurate for tight classes.
    With ``rows=None`` every sample is a query and only tiles on or above the diagonal are
    computed (d is symmetric), each contributing to both its row and its column block.

    Returns:
        (R, K) float64, R = N or len(rows), in the order of ``rows``.
    """
    n = x.shape[0]
    order, _ = class_slices(y, k)
    symmetric = rows is None
    q_order = order if symmetric else np.asarray(rows)[np.argsort(y[rows], kind="stable")]
    q_blocks = [q_order[s : s + block_size] for s in range(0, q_order.size, block_size)]
    c_blocks = [order[s : s + block_size] for s in range(0, n, block_size)]
    local = threading.local()
    accumulators: list[np.ndarray] = []
    lock = threading.Lock()

    def acc() -> np.ndarray:
        if not hasattr(local, "acc"):
            local.acc = np.zeros((n, k))
            with lock:
                accumulators.append(local.acc)
        return local.acc

    def row_task(bi: int) -> None:
        out = acc()
        qi = q_blocks[bi]
        q_seg = _label_runs(y[qi])
        shift = x[qi].mean(axis=0, dtype=np.float64)
        li, _, xi, ni = _tile_operands(x[qi], shift)
        thr = np.float32(max(_NEAR * float(np.median(ni)), np.finfo(np.float32).tiny))
        for bj in range(bi if symmetric else 0, len(c_blocks)):
            cj = c_blocks[bj]
            _, rj, xj, _ = _tile_operands(x[cj], shift)
            d = _euclidean_tile(li, rj, xi, xj, thr)
            # blocks are label-sorted, so per-class sums are sums over contiguous slices
            for s, e, c in _label_runs(y[cj]):
                out[qi, c] += d[:, s:e].sum(axis=1)
            if symmetric and bj != bi:
                for s, e, c in q_seg:
                    out[cj, c] += d[s:e].sum(axis=0)

    parallel_map(row_task, range(len(q_blocks)), n_threads)
    total = accumulators[0]
    for a in accumulators[1:]:
        total += a
    return total if symmetric else total[np.asarray(rows)]
