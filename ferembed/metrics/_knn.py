"""The kNN search behind the kNN-based metrics, and the stratified query sample they share.

The exact search itself (:func:`compute_knn`, its :class:`KNN` result, the block machinery, the
numpy / FAISS / torch backends on the CPU or a GPU and the tie rules) is the one engine of
:mod:`ferembed._search`, below ``metrics`` and ``index``, because the FAISS indexes measure their
recall against it; it is re-exported here for the metric modules.
"""

from __future__ import annotations

import numpy as np

from ferembed._search import KNN, compute_knn

__all__ = ["KNN", "compute_knn", "stratified_sample"]


def stratified_sample(labels: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """A seeded sample of ``n`` rows, allocated to classes in proportion to their size.

    Largest-remainder rounding; a class that would get no row gets one (so every class is
    represented), which can make the sample one row per such class larger than ``n``.

    Args:
        labels: (N,) int labels.
        n: sample size (``n >= N`` returns every row).
        seed: RNG seed.

    Returns:
        (n,) int64 sorted row indices.
    """
    labels = np.asarray(labels)
    if n < 1:
        raise ValueError(f"sample size must be >= 1, got {n}")
    if n >= labels.size:
        return np.arange(labels.size, dtype=np.int64)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = counts * (n / labels.size)
    alloc = np.floor(quota).astype(np.int64)
    rest = n - alloc.sum()
    alloc[np.argsort(-(quota - alloc), kind="stable")[:rest]] += 1
    alloc = np.minimum(np.maximum(alloc, 1), counts)
    rng = np.random.default_rng(seed)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    picked = [
        rng.choice(order[bounds[c] : bounds[c + 1]], alloc[c], replace=False)
        for c in range(classes.size)
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)
