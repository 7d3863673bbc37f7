"""Neural-collapse metrics against direct numpy formulas and exact collapse."""

import numpy as np
import pytest

from ferembed.metrics.collapse import nc1, nc2, nc3


def _stats(x, y):
    x = np.asarray(x, np.float64)
    classes = np.unique(y)
    mu_g = x.mean(0)
    means = np.stack([x[y == c].mean(0) for c in classes])
    mt = means - mu_g
    resid = x - means[np.searchsorted(classes, y)]
    sw = resid.T @ resid / len(x)
    sb = mt.T @ mt / len(classes)
    return mt, sw, sb


@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced", "blobs_ties"])
def test_nc1_matches_pinv_formula(fixture, request):
    b = request.getfixturevalue(fixture)
    mt, sw, sb = _stats(b.x, b.y)
    expected = np.trace(sw @ np.linalg.pinv(sb)) / len(mt)
    assert nc1(b.x, b.y) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced"])
def test_nc2_matches_definition(fixture, request):
    b = request.getfixturevalue(fixture)
    mt, _, _ = _stats(b.x, b.y)
    norms = np.linalg.norm(mt, axis=1)
    k = len(mt)
    cos = [mt[i] @ mt[j] / (norms[i] * norms[j]) for i in range(k) for j in range(i + 1, k)]
    res = nc2(b.x, b.y)
    assert res["equinorm"] == pytest.approx(np.std(norms) / np.mean(norms), rel=1e-6)
    assert res["equiangularity"] == pytest.approx(np.std(cos), rel=1e-6)
    assert res["max_angle"] == pytest.approx(np.mean(np.abs(np.array(cos) + 1 / (k - 1))), rel=1e-6)
    np.testing.assert_allclose(res["norms"], norms, rtol=1e-6)


def _collapsed(k=4, d=6, per_class=5, scale=3.0):
    """Every sample exactly on its class mean; means form a simplex ETF."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(d, k)))
    etf = (np.eye(k) - 1.0 / k) @ q.T * scale  # rows: centred, equal norms, cos -1/(k-1)
    y = np.repeat(np.arange(k), per_class)
    return etf[y].astype(np.float32), y, etf


def test_exact_collapse_gives_zeros():
    x, y, etf = _collapsed()
    assert nc1(x, y) == pytest.approx(0.0, abs=1e-10)
    res = nc2(x, y)
    assert res["equinorm"] == pytest.approx(0.0, abs=1e-6)
    assert res["equiangularity"] == pytest.approx(0.0, abs=1e-6)
    assert res["max_angle"] == pytest.approx(0.0, abs=1e-6)
    assert nc3(x, y, 7.0 * etf) == pytest.approx(0.0, abs=1e-6)  # scale does not matter


def test_nc3_matches_definition(blobs_imbalanced):
    b = blobs_imbalanced
    w = np.random.default_rng(1).normal(size=(7, b.x.shape[1]))
    mt, _, _ = _stats(b.x, b.y)
    expected = np.linalg.norm(w / np.linalg.norm(w) - mt / np.linalg.norm(mt))
    assert nc3(b.x, b.y, w) == pytest.approx(expected, rel=1e-6)


def test_nc3_drops_absent_classes(blobs_small):
    b = blobs_small
    w = np.random.default_rng(2).normal(size=(6, b.x.shape[1]))  # head has a 6th class
    mt, _, _ = _stats(b.x, b.y)
    expected = np.linalg.norm(w[:5] / np.linalg.norm(w[:5]) - mt / np.linalg.norm(mt))
    assert nc3(b.x, b.y, w) == pytest.approx(expected, rel=1e-6)


def test_nc3_shape_errors(blobs_small):
    b = blobs_small
    with pytest.raises(ValueError, match="head_weight must have shape"):
        nc3(b.x, b.y, np.ones((5, 3)))
    with pytest.raises(ValueError, match="head_weight has 3 rows"):
        nc3(b.x, b.y, np.ones((3, b.x.shape[1])))
    with pytest.raises(ValueError, match="zero head weight"):
        nc3(b.x, b.y, np.zeros((5, b.x.shape[1])))


@pytest.mark.parametrize("fn", [nc1, nc2])
def test_single_class_raises(fn, blobs_single_class):
    with pytest.raises(ValueError, match="at least 2 classes"):
        fn(blobs_single_class.x, blobs_single_class.y)


def test_nan_row_is_named(blobs_small):
    x = blobs_small.x.copy()
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match="first at row 3"):
        nc1(x, blobs_small.y)
