"""FAISS k-means: the clustering behind NMI/AMI/ARI/purity (``ferembed.metrics.clustering``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from ferembed._arrays import check_distance, check_embeddings, prepare_embeddings
from ferembed.index._runtime import faiss_threads, use_gpu


@dataclass(frozen=True)
class KMeansResult:
    """Attributes:
    assignments: (N,) int64 cluster of each row.
    centroids: (K, D) float32 (unit-norm for cosine).
    objective: final k-means objective (sum of squared L2 distances, or of inner products
        for cosine) on the training rows.
    seed: the seed used.
    n_train: number of rows k-means was trained on (a seeded subsample for large N).
    """

    assignments: np.ndarray
    centroids: np.ndarray
    objective: float
    seed: int
    n_train: int


def kmeans(
    x: np.ndarray,
    num_clusters: int,
    *,
    distance: str = "cosine",
    seed: int = 0,
    niter: int = 20,
    nredo: int = 1,
    max_train: int = 100_000,
    gpu: bool | None = None,
) -> KMeansResult:
    """Seeded FAISS k-means, k-means++ initialised, then every row assigned to its nearest centroid.

    For ``distance="cosine"`` the rows are L2-normalised and the centroids kept on the unit sphere
    (spherical k-means); for ``"euclidean"`` it is plain k-means.

    Args:
        x: (N, D) embeddings.
        num_clusters: K, 1 <= K <= N.
        distance: ``"cosine"`` or ``"euclidean"``.
        seed: FAISS clustering seed (sub-sampling and initialisation).
        niter: Lloyd iterations.
        nredo: restarts; the run with the best objective is kept.
        max_train: train on at most this many rows (FAISS draws a seeded subsample); every row
            is still assigned.
        gpu: use the GPU(s) FAISS sees (None: when there is one).

    Returns:
        :class:`KMeansResult`.
    """
    check_distance(distance)
    x, _ = check_embeddings(x)
    n, d = x.shape
    if not isinstance(num_clusters, (int, np.integer)) or not 1 <= num_clusters <= n:
        raise ValueError(f"num_clusters must be an integer in [1, {n}], got {num_clusters!r}")
    if niter < 1 or nredo < 1 or max_train < num_clusters:
        raise ValueError(
            f"need niter >= 1, nredo >= 1, max_train >= num_clusters; got {niter}, {nredo}, "
            f"{max_train}"
        )
    xs = prepare_embeddings(x, distance)  # unit rows for cosine (no copy if already unit)
    k = int(num_clusters)
    km = faiss.Kmeans(
        d,
        k,
        niter=niter,
        nredo=nredo,
        seed=int(seed),
        spherical=distance == "cosine",
        max_points_per_centroid=max(1, math.ceil(max_train / k)),
        min_points_per_centroid=1,  # tiny runs are fine; silence FAISS's warning
        init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
        gpu=bool(use_gpu(gpu)),
    )
    n_train = min(n, max(1, math.ceil(max_train / k)) * k)
    with faiss_threads(2.0 * (niter * nredo * n_train + n) * k * d):
        km.train(xs)
        _, assign = km.index.search(xs, 1)
    return KMeansResult(
        assignments=assign[:, 0].astype(np.int64),
        centroids=np.asarray(km.centroids, dtype=np.float32),
        objective=float(km.obj[-1]) if km.obj is not None and len(km.obj) else float("nan"),
        seed=int(seed),
        n_train=n_train,
    )
