"""Input validation shared by every metric: fail early with a message naming the parameter.

The array checks themselves live in :mod:`ferembed._arrays` (below ``metrics`` and ``index``,
which both use them); they are re-exported here for the metric modules.
"""

from __future__ import annotations

import numpy as np

from ferembed._arrays import DISTANCES, check_distance, check_embeddings, l2_normalize
from ferembed.metrics._kernels import memo

__all__ = [
    "DISTANCES",
    "check_bootstrap_options",
    "check_class_labels",
    "check_distance",
    "check_embeddings",
    "check_int",
    "check_label_array",
    "check_labelled",
    "l2_normalize",
    "require_classes",
]


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as an int, refusing bools, non-integers and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be >= {minimum} (an int), got {value!r}")
    return int(value)


def check_bootstrap_options(n_boot, alpha) -> None:
    """``n_boot`` an int >= 1 and ``alpha`` (1 - confidence level) in (0, 1)."""
    check_int(n_boot, "n_boot", 1)
    if not (isinstance(alpha, (int, float, np.floating)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def check_label_array(a, name: str, k: int, n: int | None = None) -> np.ndarray:
    """A 1-D int64 array of labels in ``0..k-1`` (of length ``n`` when given)."""
    a = np.asarray(a)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(f"{name} must lie in 0..{k - 1}, got values in {a.min()}..{a.max()}")
    return a


def check_class_labels(y: np.ndarray, num_classes: int | None) -> tuple[int, np.ndarray]:
    """``(K, counts)`` for checked int64 labels ``y``, after checking they lie in ``0..K-1``.

    ``K`` is ``num_classes`` (an int >= 1) or, when None, ``max(y) + 1``; ``counts`` is (K,).
    """
    if num_classes is not None:
        check_int(num_classes, "num_classes", 1)
    lo, hi = int(y.min()), int(y.max())
    k = int(num_classes) if num_classes is not None else hi + 1
    if lo < 0 or hi >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}, got values in {lo}..{hi}")
    return k, np.bincount(y, minlength=k)


def check_labelled(x, y, distance: str | None = None, num_classes: int | None = None):
    """Validate embeddings, labels and (when given) the distance.

    Returns:
        ``(x, y, K, counts)``: x float32 (N, D) (not normalised), y int64 (N,), counts (K,).
    """
    if distance is not None:
        check_distance(distance)
    # Inside evaluate (kernels.shared_passes) the same arrays are checked once, not per metric:
    # the finiteness check is a pass over N x D.
    x, y = memo(("check_labelled", id(x), id(y)), (x, y), lambda: check_embeddings(x, y))
    k, counts = check_class_labels(y, num_classes)
    return x, y, k, counts


def require_classes(counts: np.ndarray, what: str, *, sklearn_range: bool = False) -> None:
    """Raise unless at least 2 classes are present (``sklearn_range``: and at most N - 1)."""
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
