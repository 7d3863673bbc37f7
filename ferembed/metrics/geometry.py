"""Geometry of an embedding: class compactness and separation, scatter ratios, pair statistics.

Every function takes embeddings ``x`` (N, D) and integer labels ``y`` (N,) in ``0..K-1`` and is
pure (arrays in, numbers out). ``distance`` is ``"cosine"`` (default) or ``"euclidean"``:

* cosine: vectors are L2-normalised first, ``d(a, b) = 1 - a.b`` on unit vectors, and a class
  centroid is the mean of its unit vectors (distances to it use its direction, so a centroid is
  compared like any other vector);
* euclidean: ``d(a, b) = ||a - b||`` and a centroid is the plain class mean.

Functions without a ``distance`` option (:func:`fisher_ratio`, :func:`davies_bouldin`,
:func:`calinski_harabasz`) use the vectors as given, like scikit-learn; for a cosine run the caller
passes L2-normalised vectors.

Classes with no samples (a label in ``0..K-1`` that never occurs) get NaN in per-class outputs and
are skipped by anything that compares classes. Metrics whose definition needs two classes (every
between-class quantity) raise ``ValueError`` when fewer than two classes are present; the three
that mirror scikit-learn (Davies-Bouldin, Calinski-Harabasz, silhouette) raise, like it, unless
``2 <= classes present <= N - 1``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.special import logsumexp

from ferembed.metrics._validation import check_distance, check_embeddings
from ferembed.metrics.bootstrap import _check_options, _percentiles

__all__ = [
    "alignment",
    "calinski_harabasz",
    "class_centroids",
    "compactness",
    "davies_bouldin",
    "distance_histograms",
    "distance_to_centroid",
    "fisher_ratio",
    "geometry_bootstrap",
    "paired_geometry_bootstrap",
    "resampled_geometry",
    "separation",
    "uniformity",
]

_ROWS = 65_536  # rows per chunk for O(N) passes: bounds temporaries to a few tens of MB


# --------------------------------------------------------------------------- label helpers


def _check_labels(y: np.ndarray, num_classes: int | None) -> tuple[int, np.ndarray]:
    """Return ``(K, counts)`` after checking that labels lie in ``0..K-1``."""
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    lo, hi = int(y.min()), int(y.max())
    k = int(num_classes) if num_classes is not None else hi + 1
    if lo < 0 or hi >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}, got values in {lo}..{hi}")
    return k, np.bincount(y, minlength=k)


def _require_classes(counts: np.ndarray, what: str, *, sklearn_range: bool = False) -> None:
    present = int((counts > 0).sum())
    n = int(counts.sum())
    if sklearn_range:
        if not 1 < present < n:
            raise ValueError(
                f"{what}: number of classes present is {present}; valid values are 2 to "
                f"n_samples - 1 = {n - 1} (inclusive)"
            )
    elif present < 2:
        raise ValueError(f"{what} needs at least 2 classes present, got {present}")


def _prepare(x, y, distance: str, num_classes: int | None):
    """Validate. Returns ``(x, y, K, counts)`` (x float32, not normalised)."""
    check_distance(distance)
    x, y = check_embeddings(x, y)
    k, counts = _check_labels(y, num_classes)
    return x, y, k, counts


def _unit64(a: np.ndarray) -> np.ndarray:
    """Rows as float64, L2-normalised (zero rows stay zero).

    Normalising in float64 (not float32) keeps cosine distances exact to ~1e-15 even when they
    are tiny (vectors far from the origin with a small spread), where the closed forms below
    subtract nearly equal numbers.
    """
    a = a.astype(np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", a, a))[:, None]
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)


def _rows64(x: np.ndarray, start: int, stop: int, unit: bool) -> np.ndarray:
    """``x[start:stop]`` as float64, L2-normalised when ``unit``."""
    return _unit64(x[start:stop]) if unit else x[start:stop].astype(np.float64)


def _class_sums(x: np.ndarray, y: np.ndarray, k: int, *, unit: bool = False) -> np.ndarray:
    """(K, D) float64 per-class sums (of unit vectors when ``unit``), chunk by chunk."""
    out = np.zeros((k, x.shape[1]))
    for s in range(0, x.shape[0], _ROWS):
        yc = y[s : s + _ROWS]
        onehot = sparse.csr_matrix((np.ones(yc.size), (yc, np.arange(yc.size))), shape=(k, yc.size))
        out += onehot @ _rows64(x, s, s + _ROWS, unit)
    return out


def _row_sq_norms(x: np.ndarray, *, unit: bool = False) -> np.ndarray:
    """(N,) float64 squared row norms (of the unit vectors when ``unit``: 1, or 0 for zero rows)."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], _ROWS):
        xc = _rows64(x, s, s + _ROWS, unit)
        out[s : s + _ROWS] = np.einsum("ij,ij->i", xc, xc)
    return out


def _class_slices(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (stable sort by label) and ``starts`` (K+1,).

    Class c is ``order[starts[c]:starts[c + 1]]``.
    """
    order = np.argsort(y, kind="stable")
    starts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(y, minlength=k), out=starts[1:])
    return order, starts


def _centroids_from_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


# --------------------------------------------------------------------------- threads


def _n_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _parallel_map(fn: Callable, items: Iterable, n_threads: int | None = None) -> list:
    """``[fn(i) for i in items]`` on a thread pool with BLAS limited to one thread per worker.

    numpy ufuncs and BLAS release the GIL, so threads give real parallelism on the small GEMMs
    and elementwise passes of a tile; one BLAS thread per worker avoids oversubscription.
    """
    items = list(items)
    n_threads = n_threads or _n_threads()
    if n_threads == 1 or len(items) <= 1:
        return [fn(i) for i in items]
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return [fn(i) for i in items]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(fn, items))


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


def _euclidean_class_sums(
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
    order, _ = _class_slices(y, k)
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

    def segments(idx: np.ndarray) -> list[tuple[int, int, int]]:
        """``(start, stop, class)`` runs of a label-sorted block (usually a single run)."""
        lab = y[idx]
        cut = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        bounds = np.concatenate([[0], cut, [lab.size]])
        return [(int(s), int(e), int(lab[s])) for s, e in zip(bounds[:-1], bounds[1:], strict=True)]

    def row_task(bi: int) -> None:
        out = acc()
        qi = q_blocks[bi]
        q_seg = segments(qi)
        shift = x[qi].mean(axis=0, dtype=np.float64)
        li, _, xi, ni = _tile_operands(x[qi], shift)
        thr = np.float32(max(_NEAR * float(np.median(ni)), np.finfo(np.float32).tiny))
        for bj in range(bi if symmetric else 0, len(c_blocks)):
            cj = c_blocks[bj]
            _, rj, xj, _ = _tile_operands(x[cj], shift)
            d = _euclidean_tile(li, rj, xi, xj, thr)
            # blocks are label-sorted, so per-class sums are sums over contiguous slices
            for s, e, c in segments(cj):
                out[qi, c] += d[:, s:e].sum(axis=1)
            if symmetric and bj != bi:
                for s, e, c in q_seg:
                    out[cj, c] += d[s:e].sum(axis=0)

    _parallel_map(row_task, range(len(q_blocks)), n_threads)
    total = accumulators[0]
    for a in accumulators[1:]:
        total += a
    return total if symmetric else total[np.asarray(rows)]


# --------------------------------------------------------------------------- pair sampling


def _pair_values(
    x: np.ndarray, i: np.ndarray, j: np.ndarray, distance: str, *, unit: bool = False
) -> np.ndarray:
    """(P,) float64 distances of explicit pairs ``(i[p], j[p])``.

    ``distance="cosine"`` normalises the rows; ``unit=True`` with ``"euclidean"`` gives the
    Euclidean distance of the normalised rows (alignment, uniformity). Both are computed from
    the float32 difference of the (normalised) rows -- ``1 - u.v = |u - v|^2 / 2`` for unit
    vectors (a zero row keeps distance 1 to everything) -- so a distance is accurate relative
    to itself, even for near-duplicate pairs.
    """
    out = np.empty(i.size)
    cos = distance == "cosine"
    unit = unit or cos
    if unit:
        norms = np.sqrt(_row_sq_norms(x))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
        q = (norms > 0).astype(np.float64)  # |u|^2 of the normalised row: 1, or 0 for a zero row
    # visit pairs in order of i so that half of the row gathers walk memory forwards
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    step = max(1, (1 << 22) // max(1, x.shape[1]))
    for s in range(0, i.size, step):
        ii, jj = i[s : s + step], j[s : s + step]
        a, b = x[ii], x[jj]
        if unit:
            a = a * inv[ii, None]
            b = b * inv[jj, None]
        diff = a - b
        sq = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
        if cos:
            out[s : s + step] = 1.0 - (q[ii] + q[jj]) / 2 + sq / 2
        else:
            out[s : s + step] = np.sqrt(sq)
    result = np.empty_like(out)
    result[order] = out
    return result


def _intra_pairs(y, k, counts, max_pairs, rng):
    """All same-class pairs i<j when they number <= max_pairs, else max_pairs uniform draws.

    Returns ``(i, j, exact)``. Sampling: a class with probability proportional to its pair count,
    then two distinct members uniformly (pairs drawn with replacement).
    """
    order, starts = _class_slices(y, k)
    n_pairs = counts * (counts - 1) // 2
    total = int(n_pairs.sum())
    if total <= max_pairs:
        ii, jj = [], []
        for c in np.flatnonzero(counts > 1):
            m = order[starts[c] : starts[c + 1]]
            a, b = np.triu_indices(m.size, 1)
            ii.append(m[a])
            jj.append(m[b])
        if not ii:
            return np.empty(0, np.int64), np.empty(0, np.int64), True
        return np.concatenate(ii), np.concatenate(jj), True
    cls = rng.choice(k, size=max_pairs, p=n_pairs / total)
    nc = counts[cls]
    a = rng.integers(0, nc)
    b = rng.integers(0, nc - 1)
    b = b + (b >= a)
    return order[starts[cls] + a], order[starts[cls] + b], False


def _subset_rows(n: int, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """All rows when they form at most ``max_pairs`` pairs, else a uniform random subset of the
    largest size m with ``m (m - 1) / 2 <= max_pairs``. Returns ``(sorted rows, exact)``."""
    if n * (n - 1) // 2 <= max_pairs:
        return np.arange(n), True
    m = int((1 + np.sqrt(1 + 8.0 * max_pairs)) // 2)
    while m * (m - 1) // 2 > max_pairs:
        m -= 1
    return np.sort(rng.choice(n, size=max(m, 2), replace=False)), False


def _subset_pair_distances(
    x: np.ndarray, rows: np.ndarray, distance: str, *, unit: bool = False, block: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances of all pairs ``i < j`` among ``rows``: ``(d, a, b)`` with ``a``, ``b`` positions
    in ``rows``. One float64 GEMM per row block (the subset is small: sqrt(2 max_pairs) rows).

    Cosine (or ``unit``) normalises the rows first; euclidean centres them (the expansion
    ``|a|^2 + |b|^2 - 2ab`` in float64 is then accurate to ~1e-8 of the data's spread).
    """
    xs = _unit64(x[rows]) if unit or distance == "cosine" else x[rows].astype(np.float64)
    if distance != "cosine":
        xs -= xs.mean(axis=0)
    sq = np.einsum("ij,ij->i", xs, xs)
    m = xs.shape[0]
    ds, as_, bs = [], [], []
    for s in range(0, m, block):
        g = xs[s : s + block] @ xs[s:].T
        r, c = np.nonzero(np.arange(g.shape[1])[None, :] > np.arange(g.shape[0])[:, None])
        v = g[r, c]
        if distance == "cosine":
            d = 1.0 - v
        else:
            d = np.sqrt(np.maximum(sq[s + r] + sq[s + c] - 2.0 * v, 0.0))
        ds.append(d)
        as_.append(s + r)
        bs.append(s + c)
    return np.concatenate(ds), np.concatenate(as_), np.concatenate(bs)


def _check_max_pairs(max_pairs) -> int:
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise ValueError(f"max_pairs must be an int >= 1, got {max_pairs!r}")
    return int(max_pairs)


def _mode(exact: bool, n: int, seed: int) -> str:
    return "exact" if exact else f"sampled(n={n}, seed={seed})"


# --------------------------------------------------------------------------- public API


def class_centroids(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean vector of each class.

    Args:
        x: (N, D) embeddings (used as given; normalise first for cosine geometry).
        y: (N,) int labels in ``0..num_classes-1``.
        num_classes: K.

    Returns:
        (K, D) float64; rows of classes without samples are NaN.
    """
    x, y = check_embeddings(x, y)
    k, counts = _check_labels(y, num_classes)
    return _centroids_from_sums(_class_sums(x, y, k), counts)


def distance_to_centroid(
    x: np.ndarray, y: np.ndarray, *, distance: str = "cosine", num_classes: int | None = None
) -> np.ndarray:
    """Distance of every sample to its own class centroid.

    cosine: ``1 - cos(x_i, m_c)`` with ``m_c`` the mean of the class's unit vectors (1 when
    ``m_c`` is the zero vector); euclidean: ``||x_i - mu_c||``.

    Returns:
        (N,) float64.
    """
    x, y, k, counts = _prepare(x, y, distance, num_classes)
    cos = distance == "cosine"
    cent = _centroids_from_sums(_class_sums(x, y, k, unit=cos), counts)
    if cos:
        cent = _unit64(np.nan_to_num(cent))
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], _ROWS):
        xc = _rows64(x, s, s + _ROWS, cos)
        cc = cent[y[s : s + _ROWS]]
        if distance == "cosine":
            out[s : s + _ROWS] = 1.0 - np.einsum("ij,ij->i", xc, cc)
        else:
            out[s : s + _ROWS] = np.sqrt(np.einsum("ij,ij->i", xc - cc, xc - cc))
    return out


def _per_class_stats(values: np.ndarray, y: np.ndarray, k: int):
    order, starts = _class_slices(y, k)
    mean, median, p90 = (np.full(k, np.nan) for _ in range(3))
    for c in range(k):
        v = values[order[starts[c] : starts[c + 1]]]
        if v.size:
            mean[c] = v.mean()
            median[c], p90[c] = np.percentile(v, [50, 90])
    return mean, median, p90


def compactness(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
    max_class_size: int = 10_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """How tightly each class gathers around its centroid.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels in ``0..K-1``.
        distance: ``"cosine"`` or ``"euclidean"`` (see the module docstring).
        num_classes: K (default ``max(y) + 1``).
        max_class_size: euclidean only: the intra-class pairwise mean of a class with more
            samples is estimated on a uniform subsample of this many members (an unbiased
            U-statistic); up to this size it is exact (blocked, O(n_c^2 D)). The cosine value is
            always exact (closed form).
        seed: seed of that subsample.

    Returns:
        dict of (K,) arrays (NaN for classes without samples):

        * ``mean``, ``median``, ``p90``: of the members' distances to their class centroid;
        * ``intra_pairwise_mean``: mean of d(i, j) over ordered pairs i != j of the class (NaN
          for a class with one sample). Cosine uses ``sum_{i!=j} (1 - u_i.u_j) =
          n(n-1) - (|S|^2 - sum_i |u_i|^2)`` with ``S`` the sum of the class's unit vectors;
        * ``intra_pairwise_exact``: bool, False where the value was estimated on a subsample;
        * ``n``: int64 class sizes.
    """
    if isinstance(max_class_size, bool) or not isinstance(max_class_size, (int, np.integer)):
        raise ValueError(f"max_class_size must be an int >= 2, got {max_class_size!r}")
    if max_class_size < 2:
        raise ValueError(f"max_class_size must be an int >= 2, got {max_class_size}")
    x, y, k, counts = _prepare(x, y, distance, num_classes)
    dist = distance_to_centroid(x, y, distance=distance, num_classes=k)
    mean, median, p90 = _per_class_stats(dist, y, k)
    intra = np.full(k, np.nan)
    exact = np.ones(k, dtype=bool)
    if distance == "cosine":
        sums = _class_sums(x, y, k, unit=True)
        sq = np.bincount(y, weights=_row_sq_norms(x, unit=True), minlength=k)
        pairs = counts * (counts - 1.0)
        ok = counts > 1
        intra[ok] = (pairs[ok] - (np.einsum("ij,ij->i", sums, sums)[ok] - sq[ok])) / pairs[ok]
    else:
        rng = np.random.default_rng(seed)
        order, starts = _class_slices(y, k)
        for c in np.flatnonzero(counts > 1):
            members = order[starts[c] : starts[c + 1]]
            if members.size > max_class_size:
                members = np.sort(rng.choice(members, size=max_class_size, replace=False))
                exact[c] = False
            m = members.size
            xs = x[members]
            total = _euclidean_class_sums(xs, np.zeros(m, np.int64), 1).sum()
            intra[c] = total / (m * (m - 1.0))
    exact[counts < 2] = True
    return {
        "mean": mean,
        "median": median,
        "p90": p90,
        "intra_pairwise_mean": intra,
        "intra_pairwise_exact": exact,
        "n": counts.astype(np.int64),
    }


def _centroid_distance_matrix(cent: np.ndarray, distance: str) -> np.ndarray:
    if distance == "cosine":
        u = _unit64(cent)
        dm = 1.0 - u @ u.T
        np.fill_diagonal(dm, 0.0)
    else:
        diff = cent[:, None, :] - cent[None, :, :]
        dm = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return dm


def separation(
    x: np.ndarray, y: np.ndarray, *, distance: str = "cosine", num_classes: int | None = None
) -> dict[str, np.ndarray]:
    """How far apart the classes sit, and how each class's spread compares with its neighbour.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels in ``0..K-1``.
        distance: ``"cosine"`` (between class-mean directions) or ``"euclidean"``.
        num_classes: K (default ``max(y) + 1``).

    Returns:
        dict with

        * ``centroid_distances``: (K, K) float64, NaN rows/columns for absent classes;
        * ``nearest_class``: (K,) int64, the nearest other present class (-1 if absent);
        * ``nearest_distance``: (K,) distance to it;
        * ``radius``: (K,) mean distance of the class's members to their centroid
          (``compactness(...)["mean"]``);
        * ``margin``: (K,) ``nearest_distance[c] - radius[c]``: positive when the nearest other
          centroid lies farther away than the class's own members do on average;
        * ``gap``: (K,) ``nearest_distance[c] - radius[c] - radius[nearest_class[c]]``: positive
          when the two mean-radius balls do not overlap.

    Raises:
        ValueError: fewer than 2 classes present.
    """
    x, y, k, counts = _prepare(x, y, distance, num_classes)
    _require_classes(counts, "separation")
    cent = _centroids_from_sums(_class_sums(x, y, k, unit=distance == "cosine"), counts)
    present = counts > 0
    dm = np.full((k, k), np.nan)
    dm[np.ix_(present, present)] = _centroid_distance_matrix(cent[present], distance)
    masked = np.where(np.eye(k, dtype=bool) | ~present[None, :] | ~present[:, None], np.inf, dm)
    nearest = np.where(present, np.argmin(masked, axis=1), -1).astype(np.int64)
    nearest_d = np.where(present, masked[np.arange(k), np.maximum(nearest, 0)], np.nan)
    radius = _per_class_stats(distance_to_centroid(x, y, distance=distance, num_classes=k), y, k)[0]
    margin = nearest_d - radius
    gap = np.where(present, margin - radius[np.maximum(nearest, 0)], np.nan)
    return {
        "centroid_distances": dm,
        "nearest_class": nearest,
        "nearest_distance": nearest_d,
        "radius": radius,
        "margin": margin,
        "gap": gap,
    }


def _scatter_traces(x: np.ndarray, y: np.ndarray, k: int, counts: np.ndarray):
    """``(tr(S_W) * N, tr(S_B) * N)``: within-class and between-class sums of squares."""
    cent = _centroids_from_sums(_class_sums(x, y, k), counts)
    present = counts > 0
    mu = (cent[present] * counts[present, None]).sum(axis=0) / counts.sum()
    within = 0.0
    for s in range(0, x.shape[0], _ROWS):
        diff = x[s : s + _ROWS].astype(np.float64) - cent[y[s : s + _ROWS]]
        within += float(np.einsum("ij,ij->", diff, diff))
    dc = cent[present] - mu
    between = float((counts[present] * np.einsum("ij,ij->i", dc, dc)).sum())
    return within, between


def fisher_ratio(x: np.ndarray, y: np.ndarray) -> float:
    """Fisher's criterion ``tr(S_B) / tr(S_W)`` (larger is better separated).

    ``S_W = (1/N) sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T`` and
    ``S_B = (1/N) sum_c n_c (mu_c - mu)(mu_c - mu)^T`` with ``mu`` the overall mean, so
    ``S_W + S_B`` is the (biased) total covariance; the 1/N cancels in the ratio. Equals
    ``calinski_harabasz * (K - 1) / (N - K)``. Vectors are used as given (pass L2-normalised
    vectors for a cosine run).

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.

    Returns:
        The ratio; ``inf`` when every sample sits on its class mean.

    Raises:
        ValueError: fewer than 2 classes present.
    """
    x, y = check_embeddings(x, y)
    k, counts = _check_labels(y, None)
    _require_classes(counts, "fisher_ratio")
    within, between = _scatter_traces(x, y, k, counts)
    if within == 0.0:
        return float("inf") if between > 0 else float("nan")
    return between / within


def calinski_harabasz(x: np.ndarray, y: np.ndarray) -> float:
    """Calinski-Harabasz index, equal to ``sklearn.metrics.calinski_harabasz_score``.

    ``[tr(B) / (K - 1)] / [tr(W) / (N - K)]`` with ``B``, ``W`` the between/within sums of squares
    and K the number of classes present; 1.0 when ``tr(W) == 0`` (as scikit-learn).

    Raises:
        ValueError: unless 2 <= classes present <= N - 1 (as scikit-learn).
    """
    x, y = check_embeddings(x, y)
    k, counts = _check_labels(y, None)
    _require_classes(counts, "calinski_harabasz", sklearn_range=True)
    within, between = _scatter_traces(x, y, k, counts)
    kp, n = int((counts > 0).sum()), int(counts.sum())
    return 1.0 if within == 0.0 else between * (n - kp) / (within * (kp - 1.0))


def davies_bouldin(x: np.ndarray, y: np.ndarray) -> float:
    """Davies-Bouldin index, equal to ``sklearn.metrics.davies_bouldin_score`` (lower is better).

    ``(1/K) sum_c max_{c' != c} (s_c + s_c') / ||mu_c - mu_c'||`` with ``s_c`` the mean Euclidean
    distance of class c's members to its mean. As scikit-learn: coinciding centroids contribute 0
    (their distance is treated as infinite), and the index is 0 when all ``s_c`` or all centroid
    distances are (close to) 0.

    Raises:
        ValueError: unless 2 <= classes present <= N - 1 (as scikit-learn).
    """
    x, y = check_embeddings(x, y)
    k, counts = _check_labels(y, None)
    _require_classes(counts, "davies_bouldin", sklearn_range=True)
    present = counts > 0
    cent = _centroids_from_sums(_class_sums(x, y, k), counts)
    dist = np.empty(x.shape[0])
    for s in range(0, x.shape[0], _ROWS):
        diff = x[s : s + _ROWS].astype(np.float64) - cent[y[s : s + _ROWS]]
        dist[s : s + _ROWS] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    intra = (np.bincount(y, weights=dist, minlength=k) / np.maximum(counts, 1))[present]
    cdist = _centroid_distance_matrix(cent[present], "euclidean")
    if np.allclose(intra, 0.0) or np.allclose(cdist, 0.0):
        return 0.0
    cdist[cdist == 0] = np.inf
    scores = (intra[:, None] + intra[None, :]) / cdist
    return float(np.mean(np.max(scores, axis=1)))


def distance_histograms(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    bins: int = 50,
    max_pairs: int = 2_000_000,
    seed: int = 0,
) -> dict:
    """Histograms of intra-class and inter-class pair distances, and their overlap.

    Uses every unordered pair i < j when there are at most ``max_pairs``; otherwise every pair
    among a uniform random subset of m rows, m the largest with ``m (m - 1) / 2 <= max_pairs``
    (each pair is equally likely to be in it, so both histograms are unbiased; one GEMM instead
    of millions of random row gathers). The subset's pairs split into intra/inter by label.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.
        distance: ``"cosine"`` (bins span [0, 2]) or ``"euclidean"`` (bins span [0, largest
            distance seen]).
        bins: number of bins, >= 1.
        max_pairs: pair budget, >= 1 (2e6 pairs = a 2000-row subset).
        seed: sampling seed.

    Returns:
        dict with ``bin_edges`` (bins+1,), ``intra`` and ``inter`` (bins,) histograms normalised to
        sum to 1, ``overlap = sum_b min(intra_b, inter_b)`` in [0, 1] (1 = indistinguishable),
        ``n_intra``/``n_inter`` (pairs used) and ``mode`` ("exact" or
        "sampled(n=<subset rows>, seed=...)").

    Raises:
        ValueError: fewer than 2 classes, no class with 2 samples (no intra-class pair), or a
            subset without intra- or inter-class pairs (raise ``max_pairs``).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    max_pairs = _check_max_pairs(max_pairs)
    x, y, k, counts = _prepare(x, y, distance, None)
    _require_classes(counts, "distance_histograms")
    if not (counts > 1).any():
        raise ValueError("distance_histograms needs a class with at least 2 samples")
    rows, exact = _subset_rows(x.shape[0], max_pairs, np.random.default_rng(seed))
    d, a, b = _subset_pair_distances(x, rows, distance)
    same = y[rows[a]] == y[rows[b]]
    d_intra, d_inter = d[same], d[~same]
    if d_intra.size == 0 or d_inter.size == 0:
        raise ValueError(
            f"distance_histograms: the {rows.size}-row sample has no "
            f"{'intra' if d_intra.size == 0 else 'inter'}-class pair; raise max_pairs"
        )
    if distance == "cosine":
        d_intra = np.clip(d_intra, 0.0, 2.0)
        d_inter = np.clip(d_inter, 0.0, 2.0)
        hi = 2.0
    else:
        hi = float(max(d_intra.max(), d_inter.max()))
        hi = hi if hi > 0 else 1.0
    edges = np.linspace(0.0, hi, bins + 1)
    h_intra = np.histogram(d_intra, bins=edges)[0] / d_intra.size
    h_inter = np.histogram(d_inter, bins=edges)[0] / d_inter.size
    return {
        "bin_edges": edges,
        "intra": h_intra,
        "inter": h_inter,
        "overlap": float(np.minimum(h_intra, h_inter).sum()),
        "n_intra": int(d_intra.size),
        "n_inter": int(d_inter.size),
        "mode": _mode(exact, int(rows.size), seed),
    }


def alignment(
    x: np.ndarray,
    y: np.ndarray,
    *,
    alpha: float = 2,
    max_pairs: int = 2_000_000,
    seed: int = 0,
) -> float:
    """Alignment (Wang & Isola 2020): ``E_{(i,j) positive} ||u_i - u_j||^alpha``, lower is better.

    ``u`` are the L2-normalised embeddings. Positive pairs are all unordered pairs ``i < j`` of
    distinct samples with the same label, each weighted equally (so large classes weigh more).
    For ``alpha == 2`` the mean is exact in O(ND) via
    ``sum_{i<j} |u_i - u_j|^2 = (n - 1) sum_i |u_i|^2 - (|S|^2 - sum_i |u_i|^2)`` per class;
    otherwise exact over all positive pairs when there are at most ``max_pairs``, else over
    ``max_pairs`` uniformly drawn ones.

    Raises:
        ValueError: ``alpha <= 0`` or no class with at least 2 samples.
    """
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    max_pairs = _check_max_pairs(max_pairs)
    x, y, k, counts = _prepare(x, y, "cosine", None)
    if not (counts > 1).any():
        raise ValueError("alignment needs a class with at least 2 samples (a positive pair)")
    if alpha == 2:
        sums = _class_sums(x, y, k, unit=True)
        sq = np.bincount(y, weights=_row_sq_norms(x, unit=True), minlength=k)
        total = ((counts - 1) * sq - (np.einsum("ij,ij->i", sums, sums) - sq)).sum()
        return float(max(total, 0.0) / (counts * (counts - 1) // 2).sum())
    i, j, _ = _intra_pairs(y, k, counts, max_pairs, np.random.default_rng(seed))
    return float(np.mean(_pair_values(x, i, j, "euclidean", unit=True) ** alpha))


def uniformity(x: np.ndarray, *, t: float = 2, max_pairs: int = 2_000_000, seed: int = 0) -> float:
    """Uniformity (Wang & Isola 2020): ``log E_{i<j} exp(-t ||u_i - u_j||^2)``, lower is better.

    ``u`` are the L2-normalised embeddings; the mean runs over all unordered pairs of distinct
    samples when there are at most ``max_pairs`` of them, else over all pairs of a uniform random
    subset of m rows, m the largest with ``m (m - 1) / 2 <= max_pairs`` (an unbiased estimate of
    the pair mean; seeded). Computed with log-sum-exp.

    Raises:
        ValueError: ``t <= 0`` or fewer than 2 samples.
    """
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"t must be a finite number > 0, got {t!r}")
    max_pairs = _check_max_pairs(max_pairs)
    x, _ = check_embeddings(x)
    if x.shape[0] < 2:
        raise ValueError(f"uniformity needs at least 2 samples, got {x.shape[0]}")
    rows, _ = _subset_rows(x.shape[0], max_pairs, np.random.default_rng(seed))
    sq = _subset_pair_distances(x, rows, "euclidean", unit=True)[0] ** 2
    return float(logsumexp(-t * sq) - np.log(sq.size))


# --------------------------------------------------------------------------- bootstrap intervals

_BOOT_CELLS = 4_000_000  # resample weights held at once (rows x samples), ~32 MB of float64


def resampled_geometry(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Compactness, class separation and Fisher ratio of weighted copies of one embedding.

    Row ``b`` of ``weights`` gives each sample its multiplicity in copy ``b`` (the counts of a
    bootstrap resample), so ``weights[b] = bincount(idx, minlength=N)`` gives exactly the values
    of the plain functions on ``x[idx], y[idx]``; centroids are recomputed for every copy.

    * ``compactness``: mean distance of a sample to its own class centroid
      (:func:`distance_to_centroid`, averaged over samples);
    * ``class_separation``: mean over present classes of the distance from the class centroid
      to the nearest other class centroid (:func:`separation`'s ``nearest_distance``);
    * ``fisher_ratio``: :func:`fisher_ratio` of the vectors as given.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.
        weights: (B, N) non-negative sample multiplicities; every class present in ``y`` must
            keep a positive total weight in every row.
        distance: ``"cosine"`` or ``"euclidean"`` (compactness and separation).
        num_classes: K (default ``max(y) + 1``).

    Returns:
        ``{"compactness", "class_separation", "fisher_ratio"}``, each a (B,) float64 array.
    """
    x, y, k, counts = _prepare(x, y, distance, num_classes)
    _require_classes(counts, "resampled_geometry")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != x.shape[0] or (w < 0).any():
        raise ValueError(f"weights must be a non-negative (B, {x.shape[0]}) array, got {w.shape}")
    return _resampled(_class_blocks(x, y, k, distance), w, distance)


class _Block(NamedTuple):
    """One present class, prepared once for any number of weight chunks."""

    label: int
    idx: np.ndarray  # its rows
    xg: np.ndarray  # the vectors as given, float64 (Fisher)
    xd: np.ndarray  # the vectors in the distance's geometry (unit rows for cosine)
    sq_given: np.ndarray  # squared norms of xg


def _class_blocks(x: np.ndarray, y: np.ndarray, k: int, distance: str) -> list[_Block]:
    order, starts = _class_slices(y, k)
    blocks = []
    for c in range(k):
        idx = order[starts[c] : starts[c + 1]]
        if idx.size:
            xg = x[idx].astype(np.float64)
            xd = _unit64(xg) if distance == "cosine" else xg
            blocks.append(_Block(c, idx, xg, xd, np.einsum("ij,ij->i", xg, xg)))
    return blocks


def _resampled(blocks: list[_Block], w: np.ndarray, distance: str) -> dict[str, np.ndarray]:
    """:func:`resampled_geometry` on prepared class blocks and validated (B, N) weights."""
    cos = distance == "cosine"
    b, kp, d = w.shape[0], len(blocks), blocks[0].xg.shape[1]
    total = w.sum(axis=1)
    comp = np.zeros(b)
    within = np.zeros(b)
    cent = np.zeros((b, kp, d))  # for separation (unit directions if cosine)
    mean_given = np.zeros((b, kp, d))  # for Fisher (vectors as given)
    n_c = np.zeros((b, kp))
    for j, blk in enumerate(blocks):
        wc = w[:, blk.idx]
        nc = wc.sum(axis=1)
        if (nc <= 0).any():
            raise ValueError(f"class {blk.label} has zero total weight in some rows of weights")
        n_c[:, j] = nc
        sums = wc @ blk.xd
        m = sums / nc[:, None]
        if cos:
            u = _unit64(m)
            comp += nc - np.einsum("bd,bd->b", sums, u)
            cent[:, j] = u
        else:
            xd = blk.xd
            sq = blk.sq_given[:, None] - 2 * xd @ m.T + (m * m).sum(1)[None, :]
            comp += np.einsum("bi,ib->b", wc, np.sqrt(np.maximum(sq, 0.0)))
            cent[:, j] = m
        mg = (wc @ blk.xg if cos else sums) / nc[:, None]
        within += wc @ blk.sq_given - nc * np.einsum("bd,bd->b", mg, mg)
        mean_given[:, j] = mg
    if cos:
        dm = 1.0 - np.einsum("bkd,bld->bkl", cent, cent)
    else:
        diff = cent[:, :, None, :] - cent[:, None, :, :]
        dm = np.sqrt(np.einsum("bkld,bkld->bkl", diff, diff))
    eye = np.eye(kp, dtype=bool)
    sep = np.where(eye[None], np.inf, dm).min(axis=2).mean(axis=1)
    mu = np.einsum("bk,bkd->bd", n_c, mean_given) / total[:, None]
    dc = mean_given - mu[:, None, :]
    between = np.einsum("bk,bkd,bkd->b", n_c, dc, dc)
    with np.errstate(divide="ignore", invalid="ignore"):
        fisher = np.where(within > 0, between / within, np.where(between > 0, np.inf, np.nan))
    return {"compactness": comp / total, "class_separation": sep, "fisher_ratio": fisher}


def _stratified_weights(y: np.ndarray, k: int, n_boot: int, seed: int):
    """Yield (rows, N) chunks of class-stratified bootstrap multiplicities (class sizes kept)."""
    rng = np.random.default_rng(seed)
    order, starts = _class_slices(y, k)
    n = y.size
    step = max(1, _BOOT_CELLS // n)
    for s in range(0, n_boot, step):
        rows = min(step, n_boot - s)
        w = np.zeros((rows, n))
        for c in range(k):
            idx = order[starts[c] : starts[c + 1]]
            if idx.size == 0:
                continue
            draws = rng.integers(0, idx.size, size=(rows, idx.size))
            flat = (draws + np.arange(rows)[:, None] * idx.size).ravel()
            w[:, idx] = np.bincount(flat, minlength=rows * idx.size).reshape(rows, idx.size)
        yield w


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the finite resampled values (NaN, NaN when there are none)."""
    v = values[np.isfinite(values)]
    return _percentiles(v, alpha) if v.size else (float("nan"), float("nan"))


def geometry_bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Class-stratified percentile bootstrap intervals of the :func:`resampled_geometry` scalars.

    Each resample draws every class's members with replacement (class sizes kept), and the
    centroids are recomputed, so the intervals include the centroids' own sampling error.

    Returns:
        ``{"compactness": (low, high), "class_separation": ..., "fisher_ratio": ...}``.
    """
    x, y, k, _ = _prepare(x, y, distance, num_classes)
    _check_options(n_boot, alpha)
    _require_classes(np.bincount(y, minlength=k), "geometry_bootstrap")
    blocks = _class_blocks(x, y, k, distance)
    parts = [_resampled(blocks, w, distance) for w in _stratified_weights(y, k, n_boot, seed)]
    return {key: _interval(np.concatenate([p[key] for p in parts]), alpha) for key in parts[0]}


def paired_geometry_bootstrap(
    xa: np.ndarray,
    xb: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired difference ``B - A`` of the geometry scalars of two embeddings of the same samples.

    Both embeddings are resampled with the same class-stratified multiplicities, so the interval
    of the difference reflects only what differs between the two embeddings.

    Returns:
        ``{key: {"a", "b", "diff", "ci_low", "ci_high"}}`` for ``compactness``,
        ``class_separation`` and ``fisher_ratio``.
    """
    xa, y, k, _ = _prepare(xa, y, distance, num_classes)
    xb, _ = check_embeddings(xb, y)
    _check_options(n_boot, alpha)
    _require_classes(np.bincount(y, minlength=k), "paired_geometry_bootstrap")
    blocks_a, blocks_b = _class_blocks(xa, y, k, distance), _class_blocks(xb, y, k, distance)
    ones = np.ones((1, y.size))
    point_a, point_b = _resampled(blocks_a, ones, distance), _resampled(blocks_b, ones, distance)
    diffs: dict[str, list[np.ndarray]] = {}
    for w in _stratified_weights(y, k, n_boot, seed):
        ga, gb = _resampled(blocks_a, w, distance), _resampled(blocks_b, w, distance)
        for key in ga:
            diffs.setdefault(key, []).append(gb[key] - ga[key])
    out = {}
    for key, parts in diffs.items():
        lo, hi = _interval(np.concatenate(parts), alpha)
        a, b = float(point_a[key][0]), float(point_b[key][0])
        out[key] = {"a": a, "b": b, "diff": b - a, "ci_low": lo, "ci_high": hi}
    return out
