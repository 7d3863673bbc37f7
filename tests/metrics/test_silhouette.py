"""Silhouette against scikit-learn (float64) on seeded data, ties, tiny classes."""

import numpy as np
import pytest
from sklearn import metrics as skm

from ferembed.metrics.silhouette import silhouette_samples, silhouette_score


def _sk(x, y, distance):
    return skm.silhouette_samples(np.asarray(x, np.float64), y, metric=distance)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced", "blobs_ties"])
def test_samples_match_sklearn(fixture, distance, request):
    b = request.getfixturevalue(fixture)
    ours = silhouette_samples(b.x, b.y, distance=distance, block_size=64)
    np.testing.assert_allclose(ours, _sk(b.x, b.y, distance), atol=1e-4, rtol=0)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_samples_match_sklearn_with_tiles_and_threads(blobs_large, distance):
    # 6000 rows in 47 tiles of 128: exercises off-diagonal tiles, class boundaries inside
    # tiles and the per-thread accumulators
    ours = silhouette_samples(blobs_large.x, blobs_large.y, distance=distance, block_size=128)
    np.testing.assert_allclose(ours, _sk(blobs_large.x, blobs_large.y, distance), atol=1e-4)


def test_singleton_class_gets_zero(blobs_ties):
    ours = silhouette_samples(blobs_ties.x, blobs_ties.y, distance="euclidean")
    single = np.flatnonzero(blobs_ties.y == 4)
    assert single.size == 1 and ours[single[0]] == 0.0


def test_duplicates_across_classes_and_tight_far_clusters():
    # Tight clusters far from the origin stress float32 cancellation in |a|^2 + |b|^2 - 2ab;
    # exact duplicates sit in different classes.
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 400)
    centres = 1000.0 + rng.normal(0, 1.0, (3, 12))
    x = (centres[y] + rng.normal(0, 0.05, (400, 12))).astype(np.float32)
    x[10] = x[11]
    y[10], y[11] = 0, 1
    x[20:23] = x[30]  # a small group of duplicates in one class
    for distance in ("cosine", "euclidean"):
        ours = silhouette_samples(x, y, distance=distance, block_size=32)
        np.testing.assert_allclose(ours, _sk(x, y, distance), atol=1e-4)


def test_two_point_classes_hand_example():
    # class 0 at 0 and 1, class 1 at 4 and 6 (1-D): a and b computed by hand
    x = np.array([[0.0], [1.0], [4.0], [6.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    a = np.array([1, 1, 2, 2.0])
    b = np.array([5, 4, 3.5, 5.5])
    np.testing.assert_allclose(
        silhouette_samples(x, y, distance="euclidean"), (b - a) / np.maximum(a, b), atol=1e-6
    )


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_score_exact_matches_sklearn_and_per_class(blobs_imbalanced, distance):
    b = blobs_imbalanced
    res = silhouette_score(b.x, b.y, distance=distance, num_classes=8)
    ref = _sk(b.x, b.y, distance)
    assert res["mode"] == "exact" and res["n"] == len(b.y)
    assert res["score"] == pytest.approx(
        skm.silhouette_score(np.asarray(b.x, np.float64), b.y, metric=distance), abs=1e-4
    )
    np.testing.assert_allclose(
        res["per_class"][:7], [ref[b.y == c].mean() for c in range(7)], atol=1e-4
    )
    assert np.isnan(res["per_class"][7])
    np.testing.assert_array_equal(res["rows"], np.arange(len(b.y)))
    np.testing.assert_allclose(res["samples"], ref, atol=1e-4)
    assert res["ci_low"] < res["score"] < res["ci_high"]
    assert res["ci_high"] - res["ci_low"] < 0.2


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_score_sampled_mode(blobs_large, distance):
    b = blobs_large
    exact = silhouette_score(b.x, b.y, distance=distance)
    res = silhouette_score(b.x, b.y, distance=distance, sample_size=1200, seed=4)
    assert res["mode"].startswith("sampled(n=") and res["mode"].endswith("seed=4)")
    assert abs(res["n"] - 1200) <= 7
    # stratified estimate of the exact score; its interval should cover it
    assert res["ci_low"] - 0.01 <= exact["score"] <= res["ci_high"] + 0.01
    assert abs(res["score"] - exact["score"]) < 0.02
    again = silhouette_score(b.x, b.y, distance=distance, sample_size=1200, seed=4)
    assert again["score"] == res["score"]
    # sample_size >= N is the exact computation
    assert silhouette_score(b.x, b.y, distance=distance, sample_size=10**6)["mode"] == "exact"


def test_sampled_values_are_exact_silhouettes(blobs_small):
    # with every class sampled whole the sampled estimator equals the exact score
    b = blobs_small
    res = silhouette_score(b.x, b.y, distance="euclidean", sample_size=len(b.y) - 1)
    exact = silhouette_samples(b.x, b.y, distance="euclidean")
    assert res["n"] == len(b.y)  # rounding gives every class all its members
    assert res["score"] == pytest.approx(exact.mean(), abs=1e-9)


def test_single_class_and_all_singletons_raise(blobs_single_class):
    with pytest.raises(ValueError, match="number of classes present is 1"):
        silhouette_samples(blobs_single_class.x, blobs_single_class.y)
    with pytest.raises(ValueError, match="n_samples - 1"):
        silhouette_score(np.eye(5, dtype=np.float32), np.arange(5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"distance": "l1"}, "distance must be one of"),
        ({"block_size": 4}, "block_size must be"),
        ({"sample_size": 0}, "sample_size must be"),
        ({"n_boot": 0}, "n_boot must be"),
        ({"alpha": 1.5}, "alpha must be"),
    ],
)
def test_bad_parameters(blobs_small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        silhouette_score(blobs_small.x, blobs_small.y, **kwargs)


def test_nan_row_is_named(blobs_small):
    x = blobs_small.x.copy()
    x[5, 0] = np.nan
    with pytest.raises(ValueError, match="first at row 5"):
        silhouette_samples(x, blobs_small.y)
