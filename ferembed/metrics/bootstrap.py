"""Bootstrap confidence intervals: percentile, BCa and recentred percentile.

:func:`bootstrap_ci` resamples the mean of per-sample values without materialising resampled
arrays when it can:

* at most 256 distinct values (0/1 correctness, -1/0/1 paired differences): multinomial counts
  over the distinct values, exact, O(n_boot * U);
* otherwise, while N * n_boot <= 5e6: plain integer draws in bounded chunks, O(n_boot * N);
* beyond (e.g. a million silhouette values): the sorted values are grouped into 256
  equal-count bins, with the extreme ones halved repeatedly down to single values so the tails
  stay resolved; the resampled counts per bin are drawn exactly (multinomial) and the spread
  inside each bin enters as one normal term with its exact mean and variance --
  O(n_boot * ~300), equal to the plain bootstrap to Monte-Carlo precision (tested).

With ``stratify`` each stratum is resampled separately with its own size (the class mix of a
test set stays fixed).

:func:`bootstrap_statistic` is the general form for statistics that are not means (macro-F1,
UAR): it calls ``fn`` on each resample.

Three ways to turn resampled statistics into an interval (``metrics.json``'s ``ci_method``
records which one each interval used; docs/metrics.md says why):

* :func:`percentile_interval`: the ``alpha/2`` and ``1 - alpha/2`` quantiles. Right for means
  of per-sample values (unbiased, and their resampled values centre on the estimate).
* :func:`bca_interval`: Efron's bias-corrected and accelerated interval (Efron & Tibshirani
  1993, 14.3); the bias correction ``z0`` comes from the share of resampled values below the
  estimate, the acceleration ``a`` from a jackknife. Equals ``scipy.stats.bootstrap(...,
  method="BCa")`` on the same resampled values (tested).
* :func:`recentred_interval`: the percentile interval of the resampled values shifted by the
  bootstrap's bias (their mean minus the estimate). For statistics whose resampling adds a bias
  of its own -- the nearest-centroid distance and the between-class scatter grow with the noise
  of resampled centroids, so a collapsed embedding's resampled values all lie above its
  estimate, where neither the percentile nor the BCa interval (``z0`` infinite) can contain it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtr, ndtri

from ferembed.metrics._validation import check_bootstrap_options

__all__ = [
    "CI_METHODS",
    "bca_interval",
    "bootstrap_ci",
    "bootstrap_statistic",
    "percentile_interval",
    "recentred_interval",
]

#: The interval methods, as recorded in ``metrics.json``'s ``ci_method``.
CI_METHODS = ("percentile", "bca", "recentred")

_CHUNK = 1 << 22  # random draws per chunk (32 MB of int64)
_FEW_VALUES = 256  # resample over distinct values when there are at most this many
_EXACT_DRAWS = 5_000_000  # plain index draws up to n * n_boot of this, binned beyond
_BINS = 256  # equal-count bins of the binned resampling (plus finer tail bins)


def _strata(stratify, n: int) -> list[np.ndarray]:
    """Index arrays of the strata (one stratum of everything when ``stratify`` is None)."""
    if stratify is None:
        return [np.arange(n)]
    s = np.asarray(stratify)
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"stratify must have shape ({n},), got {s.shape}")
    _, inv = np.unique(s, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inv))[:-1])


def _resampled_means(
    v: np.ndarray, n_boot: int, rng: np.random.Generator, *, draws: bool = True
) -> np.ndarray:
    """(n_boot,) means of ``n_boot`` resamples (with replacement, same size) of ``v``.

    ``draws=False`` forbids the O(n_boot * n) index draws (the caller's total is too large).
    """
    n = v.size
    uniq, counts = np.unique(v, return_counts=True)
    if uniq.size <= _FEW_VALUES:
        # The resample's counts over the distinct values are Multinomial(n, counts / n): exact.
        return _multinomial_means(uniq, counts, n_boot, rng)
    if draws and n * n_boot <= _EXACT_DRAWS:
        out = np.empty(n_boot)
        step = max(1, _CHUNK // n)
        for s in range(0, n_boot, step):
            b = min(step, n_boot - s)
            out[s : s + b] = v[rng.integers(0, n, size=(b, n))].mean(axis=1)
        return out
    # Many distinct values and a large N: group the sorted values into bins -- _BINS equal-count
    # bins, the outermost ones split again and again in halves down to single values, so the
    # tails (which carry the skew) stay resolved. The counts of draws per bin are drawn
    # exactly, Multinomial(n, n_b / n); the draws inside bin b add c_b * m_b plus a part with
    # variance c_b * s_b^2 (the bin's mean and variance), entered as one normal term. Cost
    # O(n_boot * (_BINS + 2 log2 n)) instead of O(n_boot * n).
    sv = uniq.repeat(counts)  # sorted values
    tails = 2 ** np.arange(int(np.log2(max(n // _BINS, 1))) + 1)
    starts = np.unique(np.r_[(np.arange(_BINS) * n) // _BINS, tails, n - tails])
    starts = starts[(starts >= 0) & (starts < n)]
    sizes = np.diff(np.append(starts, n))
    means = np.add.reduceat(sv, starts) / sizes
    var = np.add.reduceat((sv - means.repeat(sizes)) ** 2, starts) / sizes
    out = np.empty(n_boot)
    step = max(1, _CHUNK // starts.size)
    for s in range(0, n_boot, step):
        c = rng.multinomial(n, sizes / n, size=min(step, n_boot - s)).astype(np.float64)
        within = np.sqrt(c @ var) * rng.standard_normal(c.shape[0])
        out[s : s + c.shape[0]] = (c @ means + within) / n
    return out


def _multinomial_means(values, counts, n_boot, rng) -> np.ndarray:
    """(n_boot,) means ``sum_u c_u values_u / n`` with ``c ~ Multinomial(n, counts / n)``."""
    n = int(counts.sum())
    p = counts / n
    out = np.empty(n_boot)
    step = max(1, _CHUNK // values.size)
    for s in range(0, n_boot, step):
        m = rng.multinomial(n, p, size=min(step, n_boot - s))
        out[s : s + m.shape[0]] = m @ values / n
    return out


def _stratum_boot_means(values, strata, n_boot, rng) -> np.ndarray:
    """(n_boot, H) resampled means per stratum."""
    draws = values.size * n_boot <= _EXACT_DRAWS
    return np.stack(
        [_resampled_means(values[idx], n_boot, rng, draws=draws) for idx in strata], axis=1
    )


def percentile_interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    """The percentile interval ``(q_{alpha/2}, q_{1-alpha/2})`` of resampled statistics (B,)."""
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _finite(boot: np.ndarray) -> np.ndarray:
    b = np.asarray(boot, dtype=np.float64).ravel()
    return b[np.isfinite(b)]


def bca_interval(
    boot: np.ndarray, estimate: float, jackknife: np.ndarray, alpha: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) interval from resampled statistics.

    With ``p0 = (#{boot < est} + #{boot <= est}) / (2B)``, ``z0 = Phi^-1(p0)``, the jackknife
    values ``t_i`` and their mean ``t.``,
    ``a = sum (t. - t_i)^3 / (6 [sum (t. - t_i)^2]^(3/2))``, the interval is the
    ``alpha_1, alpha_2`` quantiles of ``boot`` with
    ``alpha_j = Phi(z0 + (z0 + z_j) / (1 - a (z0 + z_j)))``, ``z_1, z_2 = Phi^-1(alpha/2),
    Phi^-1(1 - alpha/2)`` (Efron & Tibshirani 1993, eq. 14.9-14.15; scipy's convention).

    Args:
        boot: (B,) resampled statistics (non-finite values are dropped).
        estimate: the statistic on the original sample.
        jackknife: (J,) the statistic with each sample (or group) left out; a jackknife with
            no spread gives ``a = 0`` (the bias-corrected interval).
        alpha: 1 - confidence level, in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when no resampled value is finite.
    """
    b = _finite(boot)
    if b.size == 0:
        return float("nan"), float("nan")
    p0 = ((b < estimate).sum() + (b <= estimate).sum()) / (2.0 * b.size)
    z0 = float(ndtri(p0))
    t = np.asarray(jackknife, dtype=np.float64)
    u = t.mean() - t
    den = float((u**2).sum())
    acc = float((u**3).sum()) / (6.0 * den**1.5) if den > 0 else 0.0
    out = []
    for z in (float(ndtri(alpha / 2)), float(ndtri(1 - alpha / 2))):
        q = float(ndtr(z0 + (z0 + z) / (1 - acc * (z0 + z))))
        q = q if np.isfinite(q) else (0.0 if z0 < 0 else 1.0)  # z0 = +-inf: an end of boot
        out.append(float(np.percentile(b, 100 * q)))
    return out[0], out[1]


def recentred_interval(boot: np.ndarray, estimate: float, alpha: float) -> tuple[float, float]:
    """Percentile interval of the resampled values minus their bias ``mean(boot) - estimate``.

    ``(estimate + q_lo - m, estimate + q_hi - m)`` with ``m`` the mean and ``q_lo, q_hi`` the
    ``alpha/2, 1 - alpha/2`` quantiles of the finite resampled values: the spread of the
    resampled statistic, placed around the estimate. It contains the estimate whenever ``m``
    lies inside its own percentile range.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when no resampled value is finite.
    """
    b = _finite(boot)
    if b.size == 0:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(b, alpha)
    shift = float(estimate) - float(b.mean())
    return lo + shift, hi + shift


def bootstrap_ci(
    values: np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    stratify: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    Args:
        values: (N,) finite per-sample values (e.g. 0/1 correctness, silhouette values).
        n_boot: number of resamples, >= 1.
        alpha: 1 - confidence level, in (0, 1); the interval is the [alpha/2, 1-alpha/2]
            quantile range of the resampled means.
        seed: random seed.
        stratify: optional (N,) stratum labels; each stratum is resampled separately with its
            own size, and the statistic is the overall mean of the resample.
        weights: optional per-stratum weights (sorted by stratum label, summing to anything
            positive) replacing the strata's size shares in that mean -- for stratified samples
            whose allocation differs from the population's.

    Returns:
        ``(low, high)``.
    """
    check_bootstrap_options(n_boot, alpha)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"values has NaN/Inf, first at index {np.flatnonzero(~np.isfinite(v))[0]}")
    strata = _strata(stratify, v.size)
    if weights is None:
        w = np.array([idx.size for idx in strata], dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(strata),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(strata)} non-negative numbers, got {w}")
    boot = _stratum_boot_means(v, strata, n_boot, np.random.default_rng(seed)) @ (w / w.sum())
    return percentile_interval(boot, alpha)


def bootstrap_statistic(
    fn: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    stratify: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``fn(*arrays)``.

    The same resampled row indices are applied to every array (rows stay paired), e.g.
    ``bootstrap_statistic(lambda t, p: f1_score(t, p, average="macro"), y_true, y_pred)``.
    Costs ``n_boot`` calls of ``fn`` on arrays of N rows.

    Args:
        fn: maps the resampled arrays to a float.
        *arrays: one or more arrays with the same first dimension N.
        n_boot: number of resamples, >= 1.
        alpha: 1 - confidence level, in (0, 1).
        seed: random seed.
        stratify: optional (N,) stratum labels, resampled within each stratum.

    Returns:
        ``(low, high)``; NaN results of ``fn`` are ignored (all NaN gives ``(nan, nan)``).
    """
    check_bootstrap_options(n_boot, alpha)
    if not arrays:
        raise ValueError("bootstrap_statistic needs at least one array")
    arrs = [np.asarray(a) for a in arrays]
    n = arrs[0].shape[0] if arrs[0].ndim else 0
    if n == 0 or any(a.ndim == 0 or a.shape[0] != n for a in arrs):
        raise ValueError(
            f"arrays must share a non-zero first dimension, got {[a.shape for a in arrs]}"
        )
    strata = _strata(stratify, n)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([s[rng.integers(0, s.size, size=s.size)] for s in strata])
        stats[b] = fn(*[a[idx] for a in arrs])
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    return percentile_interval(stats, alpha)
