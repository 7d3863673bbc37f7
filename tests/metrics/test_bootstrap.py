"""Bootstrap intervals: exact degenerate cases, the normal-theory width, determinism."""

import numpy as np
import pytest

from ferembed.metrics.bootstrap import bootstrap_ci, bootstrap_statistic


def test_binary_values_width_matches_normal_theory():
    # few distinct values -> multinomial path
    v = (np.random.default_rng(0).random(20_000) < 0.3).astype(float)
    lo, hi = bootstrap_ci(v, n_boot=2000, seed=1)
    se = np.sqrt(v.mean() * (1 - v.mean()) / v.size)
    assert lo < v.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.959964 * se, rel=0.08)


def test_continuous_values_width_matches_normal_theory():
    # many distinct values, N * n_boot <= 5e6 -> index-draw path
    v = np.random.default_rng(2).normal(3.0, 2.0, 2_000)
    lo, hi = bootstrap_ci(v, n_boot=2000, seed=3)
    se = v.std() / np.sqrt(v.size)
    assert lo < v.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.959964 * se, rel=0.08)
    assert ((lo + hi) / 2) == pytest.approx(v.mean(), abs=0.2 * se)


def test_constant_values_give_a_point_interval():
    assert bootstrap_ci(np.full(50, 0.25)) == (0.25, 0.25)


def test_stratified_resampling_keeps_strata_sizes():
    # each stratum is constant, so a within-stratum resample cannot move the mean at all
    v = np.r_[np.zeros(30), np.ones(70)]
    s = np.r_[np.zeros(30, int), np.ones(70, int)]
    assert bootstrap_ci(v, stratify=s) == pytest.approx((0.7, 0.7))
    lo, hi = bootstrap_ci(v)  # unstratified: the mix varies
    assert lo < 0.7 < hi
    # weights replace the size shares: 50/50 -> 0.5
    assert bootstrap_ci(v, stratify=s, weights=np.array([1.0, 1.0])) == pytest.approx((0.5, 0.5))


def test_seed_determinism_and_alpha_nesting():
    v = np.random.default_rng(4).normal(size=500)
    assert bootstrap_ci(v, seed=7) == bootstrap_ci(v, seed=7)
    lo90, hi90 = bootstrap_ci(v, alpha=0.10, seed=7)
    lo95, hi95 = bootstrap_ci(v, alpha=0.05, seed=7)
    assert lo95 <= lo90 < hi90 <= hi95


def test_bootstrap_statistic_pairs_rows_and_stratifies():
    rng = np.random.default_rng(5)
    a = rng.normal(size=300)
    # rows stay paired: a - (a - 1) is 1 in every resample
    assert bootstrap_statistic(lambda p, q: np.mean(p - q), a, a - 1, n_boot=50) == (1.0, 1.0)
    v = np.r_[np.zeros(30), np.ones(70)]
    s = np.r_[np.zeros(30, int), np.ones(70, int)]
    assert bootstrap_statistic(np.mean, v, stratify=s, n_boot=50) == pytest.approx((0.7, 0.7))
    # agrees with bootstrap_ci on the mean, up to Monte-Carlo error
    lo1, hi1 = bootstrap_statistic(np.mean, a, n_boot=1000, seed=1)
    lo2, hi2 = bootstrap_ci(a, n_boot=1000, seed=2)
    assert lo1 == pytest.approx(lo2, abs=0.03) and hi1 == pytest.approx(hi2, abs=0.03)


def test_bootstrap_statistic_ignores_nan_results():
    calls = iter(range(1000))
    lo, hi = bootstrap_statistic(
        lambda v: np.nan if next(calls) % 2 else 1.0, np.ones(5), n_boot=20
    )
    assert (lo, hi) == (1.0, 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_boot": 0}, "n_boot must be"),
        ({"alpha": 0.0}, "alpha must be in"),
        ({"alpha": 1.0}, "alpha must be in"),
        ({"stratify": np.zeros(3)}, "stratify must have shape"),
        ({"weights": np.ones(3)}, "weights must be"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(np.arange(10.0), **kwargs)


def test_bad_values():
    with pytest.raises(ValueError, match="first at index 2"):
        bootstrap_ci(np.array([0.0, 1.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="share a non-zero first dimension"):
        bootstrap_statistic(np.mean, np.ones(3), np.ones(4))


def test_binned_resampling_matches_plain_bootstrap(monkeypatch):
    import ferembed.metrics.bootstrap as bs

    v = np.random.default_rng(6).lognormal(0, 1.5, 20_000)  # skewed, all values distinct
    se = v.std() / np.sqrt(v.size)
    monkeypatch.setattr(bs, "_EXACT_DRAWS", 10**12)
    plain = np.array(bootstrap_ci(v, n_boot=2000, seed=1))
    monkeypatch.setattr(bs, "_EXACT_DRAWS", 0)
    binned = np.array(bootstrap_ci(v, n_boot=2000, seed=2))
    # Monte-Carlo sd of each endpoint is ~0.06 se with 2000 resamples
    np.testing.assert_allclose(binned, plain, atol=0.35 * se)
    # the skew is kept: the upper arm is longer than the lower one
    assert binned[1] - v.mean() > v.mean() - binned[0]
