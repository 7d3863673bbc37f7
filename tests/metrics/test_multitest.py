"""holm_adjust against statsmodels' multipletests(method="holm") and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.metrics.multitest import holm_adjust


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    np.testing.assert_allclose(holm_adjust([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm_adjust([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm_adjust([0.3]), [0.3])


@pytest.mark.parametrize("m", [1, 2, 9, 50])
def test_holm_equals_statsmodels(m):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(m)
    p = rng.uniform(size=m) ** 3  # many small ones
    p[: m // 3] = p[0]  # ties
    np.testing.assert_allclose(holm_adjust(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_holm_keeps_order_and_bounds():
    p = np.random.default_rng(0).uniform(size=30)
    q = holm_adjust(p)
    assert q.dtype == np.float64 and q.shape == p.shape
    assert np.all(q >= p) and np.all(q <= 1)
    order = np.argsort(p)
    assert np.all(np.diff(q[order]) >= 0)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "non-empty 1-D"),
        ([[0.1, 0.2]], "non-empty 1-D"),
        ([0.1, 1.5], r"in \[0, 1\]"),
        ([-0.1], r"in \[0, 1\]"),
        ([0.1, float("nan")], r"in \[0, 1\]"),
    ],
)
def test_holm_validates(bad, match):
    with pytest.raises(ValueError, match=match):
        holm_adjust(bad)
