"""Pair statistics of an embedding: intra/inter-class distance histograms, alignment, uniformity.

Conventions (distances, labels, absent classes) as in :mod:`ferembed.metrics.geometry`. A pair is
an unordered pair ``i < j`` of distinct samples. When there are more pairs than a budget
``max_pairs``, the statistics run on a seeded sample of pairs, and ``mode`` says so.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ferembed.metrics._kernels import class_slices, class_sums, row_sq_norms, unit64
from ferembed.metrics._validation import (
    check_embeddings,
    check_int,
    check_labelled,
    require_classes,
)

__all__ = ["alignment", "distance_histograms", "uniformity"]


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
        norms = np.sqrt(row_sq_norms(x))
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
    order, starts = class_slices(y, k)
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
    xs = unit64(x[rows]) if unit or distance == "cosine" else x[rows].astype(np.float64)
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


def _mode(exact: bool, n: int, seed: int) -> str:
    return "exact" if exact else f"sampled(n={n}, seed={seed})"


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
    bins = check_int(bins, "bins", 1)
    max_pairs = check_int(max_pairs, "max_pairs", 1)
    x, y, k, counts = check_labelled(x, y, distance)
    require_classes(counts, "distance_histograms")
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
    max_pairs = check_int(max_pairs, "max_pairs", 1)
    x, y, k, counts = check_labelled(x, y)
    if not (counts > 1).any():
        raise ValueError("alignment needs a class with at least 2 samples (a positive pair)")
    if alpha == 2:
        sums = class_sums(x, y, k, unit=True)
        sq = np.bincount(y, weights=row_sq_norms(x, unit=True), minlength=k)
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
    max_pairs = check_int(max_pairs, "max_pairs", 1)
    x, _ = check_embeddings(x)
    if x.shape[0] < 2:
        raise ValueError(f"uniformity needs at least 2 samples, got {x.shape[0]}")
    rows, _ = _subset_rows(x.shape[0], max_pairs, np.random.default_rng(seed))
    sq = _subset_pair_distances(x, rows, "euclidean", unit=True)[0] ** 2
    return float(logsumexp(-t * sq) - np.log(sq.size))
