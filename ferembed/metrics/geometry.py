"""Geometry of an embedding: class centroids, compactness, separation and scatter ratios.

Pair statistics (distance histograms, alignment, uniformity) are in
:mod:`ferembed.metrics.distances`, their bootstrap intervals in
:mod:`ferembed.metrics.geometry_bootstrap`; both follow the conventions below and are re-exported
here. The shared kernels (class sums, unit rows, the tiled Euclidean distances) are in
:mod:`ferembed.metrics._kernels`.

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

import numpy as np

from ferembed.metrics._kernels import (
    centroids_from_sums,
    class_residual_sq_norms,
    class_slices,
    class_sums,
    each_chunk,
    euclidean_class_sums,
    memo,
    residual_sq_norms,
    row_sq_norms,
    unit64,
)
from ferembed.metrics._validation import check_int, check_labelled, require_classes

# Pair statistics and the bootstrap intervals live in their own modules; they are re-exported here
# so that ``ferembed.metrics.geometry`` keeps offering every geometry quantity.
from ferembed.metrics.distances import alignment, distance_histograms, uniformity
from ferembed.metrics.geometry_bootstrap import (
    GEOMETRY_CI_METHOD,
    geometry_bootstrap,
    paired_geometry_bootstrap,
    resampled_geometry,
)

__all__ = [
    "GEOMETRY_CI_METHOD",
    "alignment",
    "calinski_harabasz",
    "class_centroids",
    "coinciding_centroids",
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


def class_centroids(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean vector of each class.

    Args:
        x: (N, D) embeddings (used as given; normalise first for cosine geometry).
        y: (N,) int labels in ``0..num_classes-1``.
        num_classes: K.

    Returns:
        (K, D) float64; rows of classes without samples are NaN.
    """
    x, y, k, counts = check_labelled(x, y, None, num_classes)
    return centroids_from_sums(class_sums(x, y, k), counts)


def distance_to_centroid(
    x: np.ndarray, y: np.ndarray, *, distance: str = "cosine", num_classes: int | None = None
) -> np.ndarray:
    """Distance of every sample to its own class centroid.

    cosine: ``1 - cos(x_i, m_c)`` with ``m_c`` the mean of the class's unit vectors (1 when
    ``m_c`` is the zero vector); euclidean: ``||x_i - mu_c||``.

    Returns:
        (N,) float64.
    """
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    key = ("distance_to_centroid", id(x), id(y), k, distance)
    return memo(key, (x, y), lambda: _distance_to_centroid(x, y, k, counts, distance)).copy()


def _distance_to_centroid(x, y, k: int, counts: np.ndarray, distance: str) -> np.ndarray:
    cos = distance == "cosine"
    cent = centroids_from_sums(class_sums(x, y, k, unit=cos), counts)
    if not cos:
        return np.sqrt(residual_sq_norms(x, y, cent))
    cent = unit64(np.nan_to_num(cent))
    out = np.empty(x.shape[0])

    def fill(sl: slice) -> None:
        out[sl] = 1.0 - np.einsum("ij,ij->i", unit64(x[sl]), cent[y[sl]])

    each_chunk(fill, x.shape[0])
    return out


def _per_class_stats(values: np.ndarray, y: np.ndarray, k: int):
    order, starts = class_slices(y, k)
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
    max_class_size = check_int(max_class_size, "max_class_size", 2)
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    dist = distance_to_centroid(x, y, distance=distance, num_classes=k)
    mean, median, p90 = _per_class_stats(dist, y, k)
    intra = np.full(k, np.nan)
    exact = np.ones(k, dtype=bool)
    if distance == "cosine":
        sums = class_sums(x, y, k, unit=True)
        sq = np.bincount(y, weights=row_sq_norms(x, unit=True), minlength=k)
        pairs = counts * (counts - 1.0)
        ok = counts > 1
        intra[ok] = (pairs[ok] - (np.einsum("ij,ij->i", sums, sums)[ok] - sq[ok])) / pairs[ok]
    else:
        rng = np.random.default_rng(seed)
        order, starts = class_slices(y, k)
        for c in np.flatnonzero(counts > 1):
            members = order[starts[c] : starts[c + 1]]
            if members.size > max_class_size:
                members = np.sort(rng.choice(members, size=max_class_size, replace=False))
                exact[c] = False
            m = members.size
            xs = x[members]
            total = euclidean_class_sums(xs, np.zeros(m, np.int64), 1).sum()
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
        u = unit64(cent)
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
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    require_classes(counts, "separation")
    cent = centroids_from_sums(class_sums(x, y, k, unit=distance == "cosine"), counts)
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
    cent = centroids_from_sums(class_sums(x, y, k), counts)
    present = counts > 0
    mu = (cent[present] * counts[present, None]).sum(axis=0) / counts.sum()
    within = float(class_residual_sq_norms(x, y, k).sum())
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
    x, y, k, counts = check_labelled(x, y)
    require_classes(counts, "fisher_ratio")
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
    x, y, k, counts = check_labelled(x, y)
    require_classes(counts, "calinski_harabasz", sklearn_range=True)
    within, between = _scatter_traces(x, y, k, counts)
    kp, n = int((counts > 0).sum()), int(counts.sum())
    return 1.0 if within == 0.0 else between * (n - kp) / (within * (kp - 1.0))


def coinciding_centroids(x: np.ndarray, y: np.ndarray, *, rtol: float = 1e-6) -> list[tuple]:
    """Pairs of present classes whose (Euclidean) means coincide: degenerate geometry.

    Two classes with one mean are not separated at all, yet Davies-Bouldin (as scikit-learn)
    drops such a pair, and scores 0, the best value, when every mean coincides (e.g. constant
    embeddings). Means coincide when ``||mu_a - mu_b|| <= rtol * max_c ||mu_c||``.

    Args:
        x: (N, D) embeddings, as the scatter metrics use them (unit rows for a cosine run).
        y: (N,) int labels.

    Returns:
        Sorted ``(a, b)`` class-index pairs, ``a < b``; empty when every mean is distinct.
    """
    x, y, k, counts = check_labelled(x, y)
    present = np.flatnonzero(counts > 0)
    cent = centroids_from_sums(class_sums(x, y, k), counts)[present]
    dm = _centroid_distance_matrix(cent, "euclidean")
    scale = float(np.sqrt(np.einsum("ij,ij->i", cent, cent)).max()) if present.size else 0.0
    a, b = np.nonzero(np.triu(dm <= rtol * scale, k=1))
    return [(int(present[i]), int(present[j])) for i, j in zip(a, b, strict=True)]


def davies_bouldin(x: np.ndarray, y: np.ndarray) -> float:
    """Davies-Bouldin index, equal to ``sklearn.metrics.davies_bouldin_score`` (lower is better).

    ``(1/K) sum_c max_{c' != c} (s_c + s_c') / ||mu_c - mu_c'||`` with ``s_c`` the mean Euclidean
    distance of class c's members to its mean. As scikit-learn: coinciding centroids contribute 0
    (their distance is treated as infinite), and the index is 0 when all ``s_c`` or all centroid
    distances are (close to) 0.

    Raises:
        ValueError: unless 2 <= classes present <= N - 1 (as scikit-learn).
    """
    x, y, k, counts = check_labelled(x, y)
    require_classes(counts, "davies_bouldin", sklearn_range=True)
    present = counts > 0
    cent = centroids_from_sums(class_sums(x, y, k), counts)
    dist = np.sqrt(class_residual_sq_norms(x, y, k))
    intra = (np.bincount(y, weights=dist, minlength=k) / np.maximum(counts, 1))[present]
    cdist = _centroid_distance_matrix(cent[present], "euclidean")
    if np.allclose(intra, 0.0) or np.allclose(cdist, 0.0):
        return 0.0
    cdist[cdist == 0] = np.inf
    scores = (intra[:, None] + intra[None, :]) / cdist
    return float(np.mean(np.max(scores, axis=1)))
