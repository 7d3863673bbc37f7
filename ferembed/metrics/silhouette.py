"""Silhouette coefficients (Rousseeuw 1987), exact and fast, with a sampled mode.

For sample i of class c, ``a_i`` is the mean distance to the other members of c, ``b_i`` the
smallest mean distance to the members of another class, and ``s_i = (b_i - a_i) / max(a_i, b_i)``;
``s_i = 0`` for a sample alone in its class (and where ``a_i = b_i = 0``), as scikit-learn.

Both distances are exact and need only the per-class sums ``T[i, c] = sum_{j in c} d(i, j)``:

* cosine, on unit vectors: ``d(i, j) = 1 - u_i.u_j``, so ``T[i, c] = n_c - u_i.S_c`` with ``S_c``
  the sum of class c's unit vectors -- one (N, D) x (D, K) product, O(NKD) and no pairwise
  matrix. Own class: the self term ``d(i, i) = 1 - |u_i|^2`` (0 for a unit vector) is removed, so
  ``a_i = (n_c - u_i.S_c - (1 - |u_i|^2)) / (n_c - 1)``.
* euclidean: there is no closed form; ``T`` is accumulated from blocked pairwise distances (one
  SGEMM per tile, per-class sums by a one-hot product, only tiles on or above the diagonal since
  d is symmetric, threads over row blocks). O(N^2 D) time, O(N K + block^2) memory.
"""

from __future__ import annotations

import numpy as np

from ferembed.metrics._kernels import (
    class_slices,
    class_sums,
    euclidean_class_sums,
    row_chunks,
    unit64,
)
from ferembed.metrics._validation import check_distance, check_int, check_labelled, require_classes
from ferembed.metrics.bootstrap import bootstrap_ci

__all__ = ["silhouette_samples", "silhouette_score"]


def _checked(x, y, distance: str, block_size, num_classes: int | None):
    """Validate the inputs of both public functions: ``(x, y, K, counts)``."""
    check_distance(distance)
    check_int(block_size, "block_size", 16)
    x, y, k, counts = check_labelled(x, y, None, num_classes)
    require_classes(counts, "silhouette", sklearn_range=True)
    return x, y, k, counts


def _cosine_class_sums(x: np.ndarray, y: np.ndarray, k: int, rows: np.ndarray):
    """``T`` (R, K) with ``T[r, c] = sum_{j in c} (1 - u_rows[r].u_j)``, and ``|u_rows|^2`` (R,).

    Unit vectors are formed in float64 chunk by chunk (tiny cosine distances stay exact).
    """
    sums = class_sums(x, y, k, unit=True)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    out = np.empty((rows.size, k))
    sq = np.empty(rows.size)
    for sl in row_chunks(rows.size):
        ur = unit64(x[rows[sl]])
        out[sl] = counts - ur @ sums.T
        sq[sl] = np.einsum("ij,ij->i", ur, ur)
    return out, sq


def _silhouette_rows(x, y, k, counts, distance, rows, block_size) -> np.ndarray:
    """Exact silhouette values of the samples ``rows`` against the whole data set."""
    if distance == "cosine":
        t, sq = _cosine_class_sums(x, y, k, rows)
        self_d = 1.0 - sq
    else:
        every = rows.size == x.shape[0]  # rows is then arange(N)
        t = euclidean_class_sums(x, y, k, rows=None if every else rows, block_size=block_size)
        self_d = np.zeros(rows.size)
    yr = y[rows]
    r = np.arange(rows.size)
    n_own = counts[yr].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (t[r, yr] - self_d) / (n_own - 1.0)
        mean_other = t / counts
    mean_other[r, yr] = np.inf
    mean_other[:, counts == 0] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / denom
    s[(n_own <= 1) | ~(denom > 0)] = 0.0
    return s


def silhouette_samples(
    x: np.ndarray, y: np.ndarray, *, distance: str = "cosine", block_size: int = 1024
) -> np.ndarray:
    """Exact silhouette coefficient of every sample.

    Equal (to float32 rounding, ~1e-6) to ``sklearn.metrics.silhouette_samples(x, y,
    metric=distance)``, including 0 for singleton classes. One difference: for an all-zero row
    under cosine, scikit-learn counts the row's distance to itself as 1; here it is 0.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels in ``0..K-1`` (absent labels are ignored).
        distance: ``"cosine"`` (O(NKD), see the module docstring) or ``"euclidean"`` (blocked,
            O(N^2 D)).
        block_size: euclidean tile side (memory ~ 2 * block_size^2 * 4 bytes per thread).

    Returns:
        (N,) float64 in [-1, 1].

    Raises:
        ValueError: unless 2 <= classes present <= N - 1 (as scikit-learn).
    """
    x, y, k, counts = _checked(x, y, distance, block_size, None)
    return _silhouette_rows(x, y, k, counts, distance, np.arange(x.shape[0]), block_size)


def _stratified_sample(y, counts, sample_size, rng) -> np.ndarray:
    """Per class ``max(1, round(sample_size * n_c / N))`` members (capped at n_c), sorted."""
    n = y.size
    order, starts = class_slices(y, counts.size)
    picks = []
    for c in np.flatnonzero(counts):
        m = min(int(counts[c]), max(1, round(sample_size * counts[c] / n)))
        picks.append(rng.choice(order[starts[c] : starts[c + 1]], size=m, replace=False))
    return np.sort(np.concatenate(picks))


def silhouette_score(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    sample_size: int | None = None,
    seed: int = 0,
    num_classes: int | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block_size: int = 1024,
) -> dict:
    """Mean silhouette, per class, with a bootstrap confidence interval.

    Exact mode (``sample_size=None`` or >= N): ``score`` is the mean of
    :func:`silhouette_samples` over all samples (= ``sklearn.metrics.silhouette_score``), and the
    interval is a class-stratified bootstrap of that mean (uncertainty from the finite test set).

    Sampled mode: a class-stratified sample of about ``sample_size`` queries (each class gets
    ``max(1, round(sample_size * n_c / N))`` members) has its *exact* silhouette computed against
    the whole data set -- unlike scikit-learn's ``sample_size``, which recomputes silhouettes
    inside the subsample. ``score = sum_c (n_c / N) * mean over the sampled members of c`` is an
    unbiased estimate of the exact score; the interval is a stratified bootstrap of it. Only
    worthwhile for euclidean (O(sample_size * N * D)); cosine is exact in O(NKD) anyway.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels in ``0..K-1``.
        distance: ``"cosine"`` or ``"euclidean"``.
        sample_size: number of query samples (>= 1), or None for exact.
        seed: sampling and bootstrap seed.
        num_classes: K (default ``max(y) + 1``), the length of ``per_class``.
        n_boot: bootstrap resamples.
        alpha: 1 - confidence level of the interval.
        block_size: euclidean tile side.

    Returns:
        dict with ``score`` (float), ``per_class`` ((K,) mean silhouette of each class's
        (sampled) members, NaN for absent classes), ``ci_low``, ``ci_high``, ``n`` (queries
        used), ``mode`` (``"exact"`` or ``"sampled(n=..., seed=...)"``), and ``rows`` ((n,)
        int64 query row indices, ascending) with ``samples`` ((n,) their exact silhouette
        values) -- in exact mode, :func:`silhouette_samples` of every row, so callers need not
        recompute it.

    Raises:
        ValueError: unless 2 <= classes present <= N - 1, or a bad option.
    """
    x, y, k, counts = _checked(x, y, distance, block_size, num_classes)
    if sample_size is not None:
        check_int(sample_size, "sample_size", 1)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    exact = sample_size is None or sample_size >= n
    rows = np.arange(n) if exact else _stratified_sample(y, counts, sample_size, rng)
    s = _silhouette_rows(x, y, k, counts, distance, rows, block_size)
    yr = y[rows]
    m = np.bincount(yr, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.bincount(yr, weights=s, minlength=k) / m
    present = counts > 0
    weights = counts[present] / n
    score = float(s.mean()) if exact else float((per_class[present] * weights).sum())
    lo, hi = bootstrap_ci(
        s, n_boot=n_boot, alpha=alpha, seed=seed, stratify=yr, weights=None if exact else weights
    )
    return {
        "score": score,
        "per_class": per_class,
        "ci_low": lo,
        "ci_high": hi,
        "n": int(rows.size),
        "mode": "exact" if exact else f"sampled(n={rows.size}, seed={seed})",
        "rows": rows.astype(np.int64),
        "samples": s,
    }
