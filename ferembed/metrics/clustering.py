"""Clustering agreement: FAISS k-means with K = number of classes, scored against the labels.

NMI, AMI and ARI are scikit-learn's (``normalized_mutual_info_score`` with its default arithmetic
normalisation, as PML's AccuracyCalculator uses; ``adjusted_mutual_info_score``;
``adjusted_rand_score``). Purity is the fraction of rows whose cluster's majority class is their
own class: ``(1/N) sum_clusters max_class |cluster ∩ class|``.

All four need at least two classes to mean anything: with one class every score is trivially
perfect, so :func:`clustering_scores` returns None for them.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from ferembed.metrics._validation import check_distance, check_embeddings

__all__ = ["ami", "ari", "clustering_scores", "compute_clusters", "nmi", "purity"]


def _check_pair(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.ndim != 1 or labels.shape != clusters.shape:
        raise ValueError(
            f"labels and clusters must be 1-D of equal length, got {labels.shape}, {clusters.shape}"
        )
    if labels.size == 0:
        raise ValueError("labels is empty")
    return labels, clusters


def nmi(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Normalised mutual information (arithmetic normalisation), in [0, 1]."""
    return float(skm.normalized_mutual_info_score(*_check_pair(labels, clusters)))


def ami(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Adjusted mutual information (chance-corrected NMI), <= 1."""
    return float(skm.adjusted_mutual_info_score(*_check_pair(labels, clusters)))


def ari(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Adjusted Rand index, in [-0.5, 1]."""
    return float(skm.adjusted_rand_score(*_check_pair(labels, clusters)))


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Cluster purity: fraction of rows in their cluster's majority class, in (0, 1]."""
    labels, clusters = _check_pair(labels, clusters)
    _, li = np.unique(labels, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, li), 1)
    return float(table.max(axis=1).sum() / labels.size)


def compute_clusters(x: np.ndarray, num_clusters: int, **options) -> np.ndarray:
    """(N,) int64 cluster assignments from seeded FAISS k-means (spherical for cosine).

    Keyword options (``distance``, ``seed``, ``niter``, ``max_train``, ...) as in
    :func:`ferembed.index.kmeans`.
    """
    from ferembed.index.kmeans import kmeans  # FAISS only when clustering runs

    return kmeans(x, num_clusters, **options).assignments


def clustering_scores(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    seed: int = 0,
    niter: int = 20,
    max_train: int = 100_000,
    clusters: np.ndarray | None = None,
) -> dict:
    """Cluster ``x`` into K = (number of distinct labels) clusters and score against ``y``.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.
        distance: ``"cosine"`` (spherical k-means on normalised rows) or ``"euclidean"``.
        seed: k-means seed.
        niter: k-means iterations.
        max_train: k-means trains on at most this many rows (seeded subsample).
        clusters: (N,) precomputed assignments to score instead of running k-means.

    Returns:
        ``{nmi, ami, ari, purity, k, seed, n_train, clusters}``; the four scores are None with
        fewer than two classes; ``n_train`` is the number of rows k-means trained on (absent when
        ``clusters`` was given); ``clusters`` is the (N,) assignment array.
    """
    check_distance(distance)
    x, y = check_embeddings(x, y)
    k = int(np.unique(y).size)
    out: dict = {"k": k, "seed": int(seed)}
    if clusters is None:
        from ferembed.index.kmeans import kmeans  # FAISS only when clustering runs

        km = kmeans(x, k, distance=distance, seed=seed, niter=niter, max_train=max_train)
        clusters, out["n_train"] = km.assignments, km.n_train
    else:
        y, clusters = _check_pair(y, clusters)
    if k < 2:
        out.update(nmi=None, ami=None, ari=None, purity=None)
    else:
        out.update(
            nmi=nmi(y, clusters),
            ami=ami(y, clusters),
            ari=ari(y, clusters),
            purity=purity(y, clusters),
        )
    out["clusters"] = clusters
    return out
