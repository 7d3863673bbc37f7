"""Classification metrics against scikit-learn; kNN vote and nearest centroid against loops."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn import metrics as skm

from ferembed.metrics.classification import (
    classification_metrics,
    knn_vote,
    nearest_centroid_predict,
)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 6
    t = rng.choice(4, 300, p=[0.5, 0.3, 0.15, 0.05])  # classes 4, 5 absent from y_true
    p = np.where(rng.random(300) < 0.6, t, rng.integers(0, 5, 300))  # class 4 only predicted
    res = classification_metrics(t, p, k)
    assert res["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    assert res["mean_class_accuracy"] == pytest.approx(skm.balanced_accuracy_score(t, p))
    assert res["macro_f1"] == pytest.approx(skm.f1_score(t, p, average="macro", zero_division=0))
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, p, labels=range(k), zero_division=0)
    np.testing.assert_allclose(res["per_class"]["precision"], prec)
    np.testing.assert_allclose(res["per_class"]["recall"], rec)
    np.testing.assert_allclose(res["per_class"]["f1"], f1)
    np.testing.assert_array_equal(res["per_class"]["support"], sup)
    cm = skm.confusion_matrix(t, p, labels=range(k))
    np.testing.assert_array_equal(res["confusion"], cm)
    assert res["confusion"].dtype == np.int64
    norm = res["confusion_normalized"]
    np.testing.assert_allclose(norm[:4], cm[:4] / cm[:4].sum(1, keepdims=True))
    assert (norm[4:] == 0).all()  # absent true classes: zero rows, not NaN


def test_classification_metrics_hand_example():
    t = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 0])
    res = classification_metrics(t, p, 3)
    assert res["accuracy"] == pytest.approx(3 / 6)
    assert res["mean_class_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    # F1: class0 tp1 fp2 fn1 -> 2/5; class1 tp2 fp1 fn1 -> 4/6; class2 -> 0
    assert res["macro_f1"] == pytest.approx((2 / 5 + 4 / 6 + 0) / 3)


@pytest.mark.parametrize(
    "t, p, k, match",
    [
        ([0, 1], [0, 2], 2, r"y_pred must lie in 0\.\.1"),
        ([0, -1], [0, 1], 2, r"y_true must lie in 0\.\.1"),
        ([0, 1], [0], 2, "y_pred must have shape"),
        ([0, 1], [0, 1], 0, "num_classes must be"),
        ([], [], 2, "empty"),
    ],
)
def test_classification_metrics_errors(t, p, k, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(np.array(t, dtype=int), np.array(p, dtype=int), k)


def test_knn_vote_majority_and_tie_break_by_nearest():
    ref = np.array([0, 1, 1, 2, 2, 0])
    idx = np.array(
        [
            [1, 2, 0],  # 1, 1, 0 -> 1
            [0, 3, 4],  # 0, 2, 2 -> 2 (majority beats nearest)
            [3, 0, 1],  # 2, 0, 1 -> three-way tie -> nearest: 2
            [5, 1, 2],  # 0, 1, 1 -> 1
            [0, 1, -1],  # 0, 1, (none) -> tie -> nearest 0
            [-1, -1, -1],  # no neighbour
        ]
    )
    np.testing.assert_array_equal(knn_vote(idx, ref, 3), [1, 2, 2, 1, 0, -1])
    np.testing.assert_array_equal(knn_vote(idx, ref, 3, k=1), [1, 0, 2, 0, 0, -1])
    # distances reorder the row before voting: row 2 -> nearest is column 2 (class 1)
    dist = np.tile([0.1, 0.2, 0.3], (6, 1))
    dist[2] = [0.3, 0.2, 0.1]
    np.testing.assert_array_equal(knn_vote(idx, ref, 3, knn_distances=dist)[2], 1)


def test_knn_vote_matches_python_loop():
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 4, 200)
    idx = rng.integers(0, 200, (500, 7))
    expected = []
    for row in idx:
        labels = ref[row]
        counts = np.bincount(labels, minlength=4)
        winners = set(np.flatnonzero(counts == counts.max()))
        expected.append(next(lab for lab in labels if lab in winners))
    np.testing.assert_array_equal(knn_vote(idx, ref, 4), expected)


def test_knn_vote_errors():
    with pytest.raises(ValueError, match="knn_indices must lie in"):
        knn_vote(np.array([[5]]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="k must be an int in 1..1"):
        knn_vote(np.array([[0]]), np.array([0, 1]), 2, k=2)
    with pytest.raises(ValueError, match="ref_labels must lie in"):
        knn_vote(np.array([[0]]), np.array([0, 3]), 2)


def _centroid(xs, distance):
    return xs.mean(0)


def _brute_ncc(x, y, distance, loo):
    x = np.asarray(x, np.float64)
    if distance == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = y.max() + 1
    preds = []
    for i in range(len(y)):
        best, arg = np.inf, -1
        for c in range(k):
            m = y == c
            if loo and y[i] == c:
                m = m.copy()
                m[i] = False
            if not m.any():
                continue
            cent = x[m].mean(0, keepdims=True)
            d = cdist(x[i : i + 1], cent, "cosine" if distance == "cosine" else "euclidean")[0, 0]
            if d < best:
                best, arg = d, c
        preds.append(arg)
    return np.array(preds)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("loo", [True, False])
def test_nearest_centroid_matches_brute_force(blobs_ties, distance, loo):
    b = blobs_ties
    ours = nearest_centroid_predict(b.x, b.y, distance=distance, leave_one_out=loo)
    np.testing.assert_array_equal(ours, _brute_ncc(b.x, b.y, distance, loo))
    if loo:  # the singleton class (4) is never predicted for its own member
        single = np.flatnonzero(b.y == 4)[0]
        assert ours[single] != 4


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_nearest_centroid_query_mode(blobs_small, distance):
    b = blobs_small
    q = np.random.default_rng(5).normal(0, 1, (50, b.x.shape[1])).astype(np.float32)
    xs = np.asarray(b.x, np.float64)
    qs = np.asarray(q, np.float64)
    if distance == "cosine":
        xs = xs / np.linalg.norm(xs, axis=1, keepdims=True)
    cents = np.stack([xs[b.y == c].mean(0) for c in range(5)])
    metric = "cosine" if distance == "cosine" else "euclidean"
    expected = cdist(qs, cents, metric).argmin(1)
    ours = nearest_centroid_predict(b.x, b.y, distance=distance, query=q)
    np.testing.assert_array_equal(ours, expected)


def test_nearest_centroid_never_predicts_absent_class(blobs_small):
    pred = nearest_centroid_predict(blobs_small.x, blobs_small.y, num_classes=9)
    assert pred.max() <= 4


def test_nearest_centroid_errors(blobs_small):
    with pytest.raises(ValueError, match="query has dimension"):
        nearest_centroid_predict(blobs_small.x, blobs_small.y, query=np.ones((2, 3)))
    x = blobs_small.x.copy()
    x[9] = np.nan
    with pytest.raises(ValueError, match="first at row 9"):
        nearest_centroid_predict(x, blobs_small.y)
