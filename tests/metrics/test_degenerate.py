"""Degenerate geometry is reported as such (null + a note), never as a best score (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from ferembed.metrics.evaluate import evaluate
from ferembed.metrics.geometry import coinciding_centroids, davies_bouldin

GEOMETRY = ("compactness", "class_separation", "alignment", "uniformity", "fisher_ratio",
            "davies_bouldin", "calinski_harabasz")  # fmt: skip


def _labels(n: int = 30, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_constant_embeddings_get_no_geometry_score(distance):
    y = _labels()
    x = np.tile(np.array([[1.0, 2.0, 3.0]], np.float32), (len(y), 1))
    assert skm.davies_bouldin_score(x, y) == 0.0  # what a naive evaluation would report: "best"
    m = evaluate(x, y, distance=distance, n_boot=0)
    for key in GEOMETRY:
        assert m[key] is None, key
    assert m["silhouette"] is None and m["nmi"] is None and m["nc1"] is None
    assert any("all 30 rows are the same vector" in note for note in m["notes"])
    assert m["precision_at_1"] is not None  # retrieval is still reported


def test_coinciding_class_means_null_davies_bouldin_with_a_note():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, 4))
    # Classes 0 and 1 are the same points (one mean); class 2 is elsewhere.
    x = np.concatenate([base, base, base + 5.0]).astype(np.float32)
    y = np.repeat([0, 1, 2], 10)
    assert coinciding_centroids(x, y) == [(0, 1)]
    assert np.isfinite(davies_bouldin(x, y))  # scikit-learn's convention drops the pair
    m = evaluate(x, y, class_names=["a", "b", "c"], distance="euclidean", n_boot=0)
    assert m["davies_bouldin"] is None
    note = next(n for n in m["notes"] if n.startswith("davies_bouldin"))
    assert "a=b" in note and "degenerate" in note
    assert m["calinski_harabasz"] is not None and m["compactness"] is not None


def test_distinct_means_are_not_coinciding():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = _labels(60)
    assert coinciding_centroids(x, y) == []
    m = evaluate(x, y, distance="euclidean", n_boot=0)
    assert m["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, y), abs=1e-4)


def test_classes_collapsed_to_points_null_calinski_harabasz_and_fisher():
    y = _labels()
    points = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], np.float32)
    x = points[y]
    assert skm.calinski_harabasz_score(x, y) == 1.0  # scikit-learn's value for zero scatter
    m = evaluate(x, y, distance="euclidean", n_boot=0)
    assert m["calinski_harabasz"] is None and m["fisher_ratio"] is None
    assert any("no within-class scatter" in note for note in m["notes"])


@pytest.mark.parametrize("where", ["embeddings", "reference"])
def test_all_zero_rows_are_refused_under_cosine(where):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = _labels()
    zeroed = x.copy()
    zeroed[[4, 9]] = 0.0
    args = (zeroed, y, {}) if where == "embeddings" else (x, y, {"reference": (zeroed, y)})
    with pytest.raises(ValueError, match=rf"{where} has 2 all-zero row\(s\), first at row 4"):
        evaluate(args[0], args[1], n_boot=0, **args[2])
    # Euclidean distances are defined for a zero vector: the same data evaluate.
    m = evaluate(args[0], args[1], distance="euclidean", n_boot=0, **args[2])
    assert m["compactness"] is not None


def test_complex_and_float32_overflow_are_refused():
    y = _labels()
    x = np.random.default_rng(3).normal(size=(30, 4))
    with pytest.raises(ValueError, match="embeddings is complex"):
        evaluate(x * 1j, y, n_boot=0)
    x[5, 2] = 1e300  # finite as float64, Inf as float32
    with pytest.raises(ValueError, match="first at row 5"):
        evaluate(x, y, n_boot=0)
