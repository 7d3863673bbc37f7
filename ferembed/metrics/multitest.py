"""Multiple-testing corrections for a family of p-values.

When several runs are each tested against one baseline (every loss against softmax), the chance
that at least one test of the family comes out significant by luck grows with the number of
tests. The Holm–Bonferroni step-down procedure controls that family-wise error rate at the
nominal level without assuming anything about how the tests depend on each other.
"""

from __future__ import annotations

import numpy as np


def holm_adjust(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the order given.

    With the m p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of the
    i-th smallest (1-based) is

        p~_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)),

    so the adjusted values keep the order of the raw ones. Rejecting where ``p~ <= alpha`` is
    Holm's procedure at family-wise level ``alpha``; the values equal statsmodels'
    ``multipletests(pvalues, method="holm")[1]``.

    Args:
        pvalues: (m,) p-values in [0, 1]; any array-like of floats, m >= 1.

    Returns:
        (m,) float64 adjusted p-values, aligned with ``pvalues``.

    Raises:
        ValueError: when ``pvalues`` is empty, not 1-D, or holds a value outside [0, 1] (NaN
            included).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"pvalues must be a non-empty 1-D array, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):  # also False for NaN
        bad = p[~((p >= 0.0) & (p <= 1.0))][0]
        raise ValueError(f"pvalues must lie in [0, 1], got {bad}")
    m = p.size
    order = np.argsort(p, kind="stable")
    steps = (m - np.arange(m)) * p[order]  # (m - j + 1) * p_(j) with 1-based j
    adjusted = np.minimum(1.0, np.maximum.accumulate(steps))
    out = np.empty(m, dtype=np.float64)
    out[order] = adjusted
    return out
