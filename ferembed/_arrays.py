"""Embedding arrays in, checked arrays out: the validation shared by ``metrics`` and ``index``.

A leaf module (numpy only). It sits below both packages so that ``ferembed.index`` never imports
``ferembed.metrics``: the dependency runs one way, metrics -> index.
"""

from __future__ import annotations

import numpy as np

DISTANCES = ("cosine", "euclidean")


def check_embeddings(embeddings, labels=None, *, name: str = "embeddings"):
    """Validate and convert ``(embeddings, labels)``.

    Returns:
        embeddings as a C-contiguous float32 (N, D) array and labels as int64 (N,) (or None).

    Raises:
        ValueError: wrong rank, empty, complex, non-finite rows after the float32 cast (the
            first offending row is named), or a label array whose length differs from N.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if np.iscomplexobj(x):  # the cast would drop the imaginary part
        raise ValueError(f"{name} is complex ({x.dtype}); expected real numbers")
    with np.errstate(over="ignore", invalid="ignore"):  # finiteness is checked after the cast
        x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{name} has {bad.size} row(s) with NaN/Inf, first at row {bad[0]}")
    if labels is None:
        return x, None
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    return x, y.astype(np.int64, copy=False)


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    return distance


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32); zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def prepare_embeddings(x: np.ndarray, distance: str) -> np.ndarray:
    """The array a search runs on: L2-normalised rows for cosine, ``x`` itself for euclidean.

    Rows that are already unit-norm (to 1e-6) are used as they are, without a copy: a caller that
    normalised once can pass the result to several searches.
    """
    if distance != "cosine":
        return x
    for start in range(0, x.shape[0], 65_536):  # float64 in bounded chunks
        xb = x[start : start + 65_536].astype(np.float64)
        if np.any(np.abs(np.einsum("ij,ij->i", xb, xb) - 1.0) > 2e-6):
            return l2_normalize(x)
    return x
