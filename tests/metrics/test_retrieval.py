"""Exact kNN (``ferembed.metrics._knn``) and retrieval metrics against independent references:
a brute-force numpy search, pytorch-metric-learning's AccuracyCalculator, hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

import ferembed.metrics._rank_kernel as _rank_kernel
from ferembed.metrics._knn import KNN, compute_knn, stratified_sample
from ferembed.metrics.retrieval import (
    compute_retrieval,
    knn_accuracy,
    map_at_r,
    map_at_r_samples,
    precision_at_k,
    precision_at_k_samples,
    r_precision,
    recall_at_k,
)

PML_KEYS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")


def brute_force_knn(x, k, distance, reference=None, exclude_self=True):
    """Independent reference: the full float64 score matrix, sorted by (score desc, index asc)."""
    x = np.asarray(x, np.float64)
    ref = x if reference is None else np.asarray(reference, np.float64)
    if distance == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        rn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
        s = xn @ rn.T
    else:
        s = -((x[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    if reference is None and exclude_self:
        np.fill_diagonal(s, -np.inf)
    cols = np.arange(s.shape[1])
    idx = np.stack([np.lexsort((cols, -row))[:k] for row in s])
    top = np.take_along_axis(s, idx, 1)
    dist = 1 - top if distance == "cosine" else np.sqrt(np.maximum(-top, 0))
    return idx, dist


def pml(x, y, distance, reference=None, reference_labels=None):
    """PML's values (lone queries excluded by PML itself)."""
    knn_func = CustomKNN(CosineSimilarity()) if distance == "cosine" else None  # None: FAISS L2
    calc = AccuracyCalculator(
        include=PML_KEYS, k="max_bin_count", knn_func=knn_func, device=torch.device("cpu")
    )
    x, y = np.array(x), np.array(y)  # PML wants writable arrays
    if reference is None:
        return calc.get_accuracy(x, y, x, y, ref_includes_query=True)
    ref, ref_y = np.array(reference), np.array(reference_labels)
    return calc.get_accuracy(x, y, ref, ref_y, ref_includes_query=False)


# ---------------------------------------------------------------------------------- compute_knn


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_knn_equals_brute_force(blobs_small, distance):
    x = blobs_small.x
    knn = compute_knn(x, 7, distance=distance, chunk_size=64)
    idx, dist = brute_force_knn(x, 7, distance)
    np.testing.assert_array_equal(knn.indices, idx)
    np.testing.assert_allclose(knn.distances, dist, atol=2e-5)
    assert knn.indices.dtype == np.int64 and knn.distances.dtype == np.float32
    assert knn.exclude_self and knn.k == 7 and len(knn) == len(x)
    np.testing.assert_array_equal(knn.queries, np.arange(len(x)))


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_knn_against_reference_set(blobs_small, distance):
    x = blobs_small.x
    q, ref = x[:100], x[100:]
    knn = compute_knn(q, 5, distance=distance, reference=ref)
    idx, dist = brute_force_knn(q, 5, distance, reference=ref)
    np.testing.assert_array_equal(knn.indices, idx)
    np.testing.assert_allclose(knn.distances, dist, atol=2e-5)
    assert not knn.exclude_self


def test_knn_chunking_and_query_subset_do_not_change_results(blobs_small):
    x = blobs_small.x
    full = compute_knn(x, 5)
    for chunk in (1, 17, 10_000):
        np.testing.assert_array_equal(compute_knn(x, 5, chunk_size=chunk).indices, full.indices)
    rows = np.array([3, 599, 0, 250])
    sub = compute_knn(x, 5, queries=rows)
    np.testing.assert_array_equal(sub.indices, full.indices[rows])
    np.testing.assert_array_equal(sub.queries, rows)


def test_knn_exact_ties_broken_by_row_and_self_removed_by_index():
    # Small integers: every score is exact in float32, so the ties below are exact.
    x = np.array([[0, 0], [1, 0], [0, 1], [1, 0], [0, 0], [-1, 0]], dtype=np.float32)
    knn = compute_knn(x, 4, distance="euclidean")
    # Row 0 = (0,0): its duplicate row 4 first (d=0), then rows 1, 2, 3, 5 all at d=1: lowest rows.
    np.testing.assert_array_equal(knn.indices[0], [4, 1, 2, 3])
    np.testing.assert_allclose(knn.distances[0], [0, 1, 1, 1])
    # Row 1 = (1,0): duplicate row 3 stays a neighbour at distance 0; self (row 1) never appears.
    np.testing.assert_array_equal(knn.indices[1], [3, 0, 4, 2])
    assert not (knn.indices == np.arange(6)[:, None]).any()


def test_knn_k_equals_all_candidates(blobs_single_class):
    x = blobs_single_class.x
    knn = compute_knn(x, len(x) - 1)
    idx, _ = brute_force_knn(x, len(x) - 1, "cosine")
    np.testing.assert_array_equal(knn.indices, idx)


def test_knn_validation(blobs_small):
    x = blobs_small.x
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 599\]"):
        compute_knn(x, 600)
    with pytest.raises(ValueError, match="k must be"):
        compute_knn(x, 0)
    with pytest.raises(ValueError, match="distance must be one of"):
        compute_knn(x, 3, distance="manhattan")
    with pytest.raises(ValueError, match="dimension"):
        compute_knn(x, 3, reference=x[:, :4])
    with pytest.raises(ValueError, match="chunk_size"):
        compute_knn(x, 3, chunk_size=0)
    with pytest.raises(ValueError, match="queries"):
        compute_knn(x, 3, queries=np.array([0, 600]))
    bad = x.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf, first at row 17"):
        compute_knn(bad, 3)
    bad[17, 2] = np.inf
    with pytest.raises(ValueError, match="row 17"):
        compute_knn(bad, 3)


def test_stratified_sample_is_proportional_and_seeded(blobs_large):
    y = blobs_large.y
    s = stratified_sample(y, 600, seed=3)
    np.testing.assert_array_equal(s, stratified_sample(y, 600, seed=3))
    assert len(np.unique(s)) == len(s) == 600
    got = np.bincount(y[s], minlength=7)
    want = np.bincount(y, minlength=7) * 600 / len(y)
    assert np.all(np.abs(got - want) <= 1)
    # a class too small for its share still gets one row
    yy = np.array([0] * 999 + [1])
    assert 999 in stratified_sample(yy, 10)
    np.testing.assert_array_equal(stratified_sample(y, 10**6), np.arange(len(y)))


# ------------------------------------------------------------------------------ against PML


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced", "blobs_ties"])
def test_leave_one_out_equals_pml(fixture, distance, request):
    b = request.getfixturevalue(fixture)
    res = compute_retrieval(b.x, b.y, k=5, distance=distance, chunk_size=97)  # k > R: tiny classes
    want = pml(b.x, b.y, distance)
    assert np.nanmean(res.precision_at_k(1)) == pytest.approx(want["precision_at_1"], abs=1e-4)
    assert np.nanmean(res.r_precision) == pytest.approx(want["r_precision"], abs=1e-4)
    assert np.nanmean(res.map_at_r) == pytest.approx(want["mean_average_precision_at_r"], abs=1e-4)


def test_query_vs_reference_equals_pml(blobs_imbalanced):
    b = blobs_imbalanced
    # class 6 (3 samples) only among the queries: those queries are lone and left out, as in PML
    in_ref = (np.arange(len(b.y)) % 3 != 0) & (b.y != 6)
    q, qy, ref, ry = b.x[~in_ref], b.y[~in_ref], b.x[in_ref], b.y[in_ref]
    assert (qy == 6).any()
    for distance in ("cosine", "euclidean"):
        res = compute_retrieval(q, qy, k=3, distance=distance, reference=ref, reference_labels=ry)
        want = pml(q, qy, distance, reference=ref, reference_labels=ry)
        assert np.isnan(res.r_precision[qy == 6]).all() and (res.r[qy == 6] == 0).all()
        assert np.nanmean(res.precision_at_k(1)) == pytest.approx(want["precision_at_1"], abs=1e-4)
        assert np.nanmean(res.r_precision) == pytest.approx(want["r_precision"], abs=1e-4)
        assert np.nanmean(res.map_at_r) == pytest.approx(
            want["mean_average_precision_at_r"], abs=1e-4
        )


def test_map_at_r_samples_mean_is_map_at_r(blobs_imbalanced):
    b = blobs_imbalanced
    per = map_at_r_samples(b.x, b.y)
    assert per.shape == (len(b.y),)
    assert map_at_r(b.x, b.y) == pytest.approx(np.nanmean(per))


@pytest.mark.parametrize("scale", [2.0**-20, 2.0**10, 2.0**40])
def test_r_metrics_do_not_depend_on_the_scale(blobs_imbalanced, scale):
    # euclidean scores span many orders of magnitude; a power-of-two scale is exact in float32
    b = blobs_imbalanced
    ref = compute_retrieval(b.x, b.y, k=3, distance="euclidean")
    got = compute_retrieval(b.x * np.float32(scale), b.y, k=3, distance="euclidean")
    np.testing.assert_array_equal(got.r_precision, ref.r_precision)
    np.testing.assert_array_equal(got.map_at_r, ref.map_at_r)
    np.testing.assert_array_equal(got.knn.indices, ref.knn.indices)


def test_singleton_class_is_lone_and_excluded(blobs_ties):
    b = blobs_ties
    res = compute_retrieval(b.x, b.y, k=3)
    lone = b.y == 4
    assert lone.sum() == 1
    np.testing.assert_array_equal(res.lone, lone)
    assert np.isnan(res.r_precision[lone]).all() and np.isnan(res.map_at_r[lone]).all()
    assert np.isnan(res.precision_at_k(1)[lone]).all()
    assert np.isfinite(res.r_precision[~lone]).all()


# --------------------------------------------------------------------- hand-computed cases


def test_r_metrics_by_hand_with_pessimistic_tie():
    # 1-D points, euclidean. Class A: 0, 1, 3; class B: 2, 5.
    x = np.array([[0.0], [1.0], [3.0], [2.0], [5.0]], dtype=np.float32)
    y = np.array([0, 0, 0, 1, 1])
    res = compute_retrieval(x, y, k=2, distance="euclidean")
    # query 0: ranking A(1) B(2) A(3) B(5), R=2 -> R-prec 1/2, AP@R = (1/2)(1/1) = 0.5
    # query 1: B(2) ties A(0) at distance 1 -> irrelevant first: B A A B; R-prec 1/2,
    #          AP@R = (1/2)(0 + 1/2) = 0.25
    # query 2 (3): B(2) d=1, A(1) d=2, B(5) d=2 (tie: irrelevant first), A(0) d=3:
    #          top 2 = B, B -> 0 and 0
    # query 3 (B, 2): A(1) d=1 ties A(3) d=1, A(0) d=2, B(5) d=3; R=1 -> 0, 0
    # query 4 (B, 5): A(3) d=2, B(2) d=3; R=1 -> 0, 0
    np.testing.assert_allclose(res.r_precision, [0.5, 0.5, 0, 0, 0])
    np.testing.assert_allclose(res.map_at_r, [0.5, 0.25, 0, 0, 0])
    assert res.r.tolist() == [2, 2, 2, 1, 1]


def test_map_at_r_by_hand():
    # Query 0 (class 0) on a line; relevant items at ranks 1, 3 and 4 of R = 3:
    # AP@R = (1/3)(1/1 + 0 + 2/3) = 5/9, R-precision = 2/3.
    x = np.array([[0], [1], [2], [3], [4], [9], [10]], dtype=np.float32)
    y = np.array([0, 0, 1, 0, 0, 1, 1])
    res = compute_retrieval(x, y, k=3, distance="euclidean", queries=np.array([0]))
    assert res.map_at_r[0] == pytest.approx(5 / 9)
    assert res.r_precision[0] == pytest.approx(2 / 3)
    assert res.precision_at_k(3)[0] == pytest.approx(2 / 3)
    assert res.recall_at_k(1)[0] == 1.0


def test_perfect_retrieval(blobs_separated):
    b = blobs_separated
    assert r_precision(b.x, b.y) == 1.0
    assert map_at_r(b.x, b.y) == 1.0
    assert precision_at_k(b.x, b.y, k=5) == 1.0
    assert recall_at_k(b.x, b.y, k=1) == 1.0
    assert knn_accuracy(b.x, b.y, k=5) == 1.0


def test_single_class_is_trivially_perfect(blobs_single_class):
    b = blobs_single_class
    assert r_precision(b.x, b.y) == 1.0 and map_at_r(b.x, b.y) == 1.0


# ---------------------------------------------------------------------- consistency / API


def test_query_subset_equals_full_rows(blobs_large):
    b = blobs_large
    rows = stratified_sample(b.y, 300, seed=1)
    sub = compute_retrieval(b.x, b.y, k=5, queries=rows, chunk_size=64)
    # the same rows searched one at a time give the same per-query values
    for i in (0, 150, 299):
        one = compute_retrieval(b.x, b.y, k=5, queries=rows[i : i + 1])
        assert one.map_at_r[0] == pytest.approx(sub.map_at_r[i], abs=1e-12)
        assert one.r_precision[0] == pytest.approx(sub.r_precision[i], abs=1e-12)
        np.testing.assert_array_equal(one.knn.indices[0], sub.knn.indices[i])


def test_fused_search_matches_plain_knn(blobs_imbalanced):
    b = blobs_imbalanced
    res = compute_retrieval(b.x, b.y, k=6, chunk_size=50)
    knn = compute_knn(b.x, 6)
    np.testing.assert_array_equal(res.knn.indices, knn.indices)
    np.testing.assert_allclose(res.knn.distances, knn.distances, atol=1e-6)
    np.testing.assert_array_equal(res.neighbor_labels, b.y[knn.indices])
    plain = compute_retrieval(b.x, b.y, k=6, r_metrics=False)
    assert plain.r_precision is None
    np.testing.assert_array_equal(plain.knn.indices, knn.indices)


def test_precision_and_recall_at_k_by_definition(blobs_small):
    b = blobs_small
    idx, _ = brute_force_knn(b.x, 5, "cosine")
    hits = b.y[idx] == b.y[:, None]
    np.testing.assert_allclose(precision_at_k_samples(b.x, b.y, k=5), hits.mean(1))
    assert recall_at_k(b.x, b.y, k=5) == pytest.approx(hits.any(1).mean())
    res = compute_retrieval(b.x, b.y, k=5, r_metrics=False)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 5\]"):
        res.precision_at_k(6)


def test_knn_accuracy_is_majority_vote(blobs_small):
    b = blobs_small
    idx, _ = brute_force_knn(b.x, 5, "cosine")
    votes = np.stack([np.bincount(r, minlength=5) for r in b.y[idx]])
    # ties between classes: the nearest neighbour's class among the tied wins
    pred = []
    for lab_row, v in zip(b.y[idx], votes, strict=True):
        tied = np.flatnonzero(v == v.max())
        pred.append(next(lab for lab in lab_row if lab in tied))
    assert knn_accuracy(b.x, b.y, k=5) == pytest.approx(np.mean(np.array(pred) == b.y))


def test_retrieval_validation(blobs_small):
    b = blobs_small
    with pytest.raises(ValueError, match="reference_labels are required"):
        compute_retrieval(b.x, b.y, reference=b.x)
    with pytest.raises(ValueError, match=r"labels must have shape \(600,\)"):
        compute_retrieval(b.x, b.y[:-1])
    with pytest.raises(ValueError, match="labels must be >= 0"):
        compute_retrieval(b.x, b.y - 1)
    with pytest.raises(ValueError, match="labels must be integers"):
        compute_retrieval(b.x, b.y.astype(float))
    with pytest.raises(ValueError, match="k must be"):
        compute_retrieval(b.x, b.y, k=600)
    with pytest.raises(ValueError, match="dimension"):
        compute_retrieval(b.x, b.y, reference=b.x[:, :3], reference_labels=b.y)


def test_knn_dataclass_is_shared_type(blobs_small):
    res = compute_retrieval(blobs_small.x, blobs_small.y, k=2)
    assert isinstance(res.knn, KNN)


@pytest.mark.skipif(not _rank_kernel.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("case", ["plain", "ties", "duplicates", "reference"])
def test_compiled_ranking_equals_the_numpy_path(distance, case):
    # The numba kernel (histogram + radix sort) and the NumPy path (partition + sort) share
    # the ranking rules: neighbours by (score desc, row asc), irrelevant first on exact ties.
    rng = np.random.default_rng(7)
    y = rng.integers(0, 5, 1500)
    x = rng.normal(size=(1500, 6)).astype(np.float32) + np.eye(6, dtype=np.float32)[y]
    kw = {"k": 7, "distance": distance, "queries": np.sort(rng.choice(1500, 400, replace=False))}
    if case == "ties":
        x = np.round(x, 1)
    elif case == "duplicates":
        x[100:200] = x[0]
    elif case == "reference":
        kw["reference"] = rng.normal(size=(600, 6)).astype(np.float32)
        kw["reference_labels"] = rng.integers(0, 4, 600)  # class 4: lone queries
    a = compute_retrieval(x, y, compiled=True, **kw)
    b = compute_retrieval(x, y, compiled=False, **kw)
    np.testing.assert_array_equal(a.knn.indices, b.knn.indices)
    np.testing.assert_array_equal(a.knn.distances, b.knn.distances)
    np.testing.assert_allclose(a.r_precision, b.r_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.map_at_r, b.map_at_r, rtol=0, atol=1e-12)
    assert np.isnan(a.map_at_r).any() == (case == "reference")
