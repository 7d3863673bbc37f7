"""kNN label disagreement and the identity confound (``ferembed.metrics.neighbors``)."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.metrics._knn import compute_knn
from ferembed.metrics.neighbors import (
    identity_confound,
    identity_samples,
    label_disagreement,
    label_disagreement_samples,
)


def test_label_disagreement_by_hand():
    nl = np.array([[0, 0, 1], [2, 2, 2], [1, -1, 0], [-1, -1, -1]])
    y = np.array([0, 1, 1, 0])
    got = label_disagreement_samples(nl, y)
    np.testing.assert_allclose(got[:3], [1 / 3, 1.0, 0.5])  # -1 (no neighbour) is ignored
    assert np.isnan(got[3])
    assert label_disagreement(nl, y) == pytest.approx((1 / 3 + 1 + 0.5) / 3)


def test_label_disagreement_flags_injected_label_noise(blobs_separated):
    b = blobs_separated
    y = np.array(b.y)
    flipped = np.array([3, 50, 120])
    y[flipped] = (y[flipped] + 1) % 4
    knn = compute_knn(b.x, 5)
    dis = label_disagreement_samples(y[knn.indices], y)
    assert np.all(dis[flipped] == 1.0)
    # everyone else has at most one flipped neighbour out of five
    assert np.all(np.delete(dis, flipped) <= 0.2)


def test_identity_by_hand():
    # Queries 0..3 searched in themselves (leave-one-out), k = 2.
    knn = np.array([[1, 2], [0, 3], [3, 0], [2, 1]])
    y = np.array([0, 0, 1, 1])
    subj = np.array(["a", "b", "a", ""], dtype=object)
    per = identity_samples(knn, y, subj)
    # q0 (a, 0): neighbours 1 (b, 0), 2 (a, 1) -> same subject 1/2, same expression 1/2
    # q1 (b, 0): 0 (a, 0), 3 (unknown) -> only one known neighbour: 0/1 and 1/1
    # q2 (a, 1): 3 (unknown), 0 (a, 0) -> 1/1 and 0/1
    # q3: unknown subject -> NaN
    np.testing.assert_allclose(per["same_subject"][:3], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(per["same_expression"][:3], [0.5, 1.0, 0.0])
    assert np.isnan(per["same_subject"][3]) and per["n_known"].tolist() == [2, 1, 1, 0]
    s = identity_confound(knn, y, subj)
    # pairs with both subjects known: (0,1) (0,2) (1,0) (2,0) -> same subject: (0,2), (2,0)
    assert s["same_subject_rate"] == pytest.approx(2 / 4)
    assert s["same_expression_rate"] == pytest.approx(2 / 4)  # (0,1) and (1,0)
    assert s["same_subject_other_expression_rate"] == pytest.approx(2 / 4)
    assert s["other_subject_same_expression_rate"] == pytest.approx(2 / 4)
    # chance: known references a, b, a; query a -> 1 other a of 2 candidates, query b -> 0 of 2
    assert s["chance_same_subject"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert s["subject_lift"] == pytest.approx(0.5 / (1 / 3))
    assert s["n_queries"] == 3 and s["n_subjects"] == 2


def test_identity_detects_subject_clusters():
    # Embeddings made of a strong subject component and a weak expression component.
    rng = np.random.default_rng(0)
    n_subj, per_subj = 20, 14
    subj_vec = rng.normal(0, 3, (n_subj, 16))
    expr_vec = rng.normal(0, 1, (7, 16))
    s = np.repeat(np.arange(n_subj), per_subj)
    y = np.tile(np.arange(7), n_subj * per_subj // 7)
    x = (subj_vec[s] + expr_vec[y] + rng.normal(0, 0.3, (len(s), 16))).astype(np.float32)
    knn = compute_knn(x, 5)
    out = identity_confound(knn.indices, y, np.array([f"s{i}" for i in s], dtype=object))
    assert out["same_subject_rate"] > 0.9 and out["subject_lift"] > 10
    assert out["same_subject_other_expression_rate"] > out["other_subject_same_expression_rate"]


def test_identity_with_reference_set():
    knn = np.array([[0, 1], [1, 2]])
    y = np.array([0, 1])
    subj = np.array(["a", "b"], dtype=object)
    ref_y = np.array([0, 0, 1])
    ref_s = np.array(["a", "c", "b"], dtype=object)
    out = identity_confound(knn, y, subj, reference_labels=ref_y, reference_subjects=ref_s)
    assert out["same_subject_rate"] == pytest.approx(2 / 4)
    assert out["chance_same_subject"] == pytest.approx(1 / 3)  # nothing excluded
    loo = identity_confound(
        knn, y, subj, reference_labels=ref_y, reference_subjects=ref_s, leave_one_out=True
    )
    assert loo["chance_same_subject"] == pytest.approx(0.0)


def test_identity_without_known_subjects():
    out = identity_confound(np.array([[1], [0]]), np.array([0, 1]), np.array(["", ""]))
    assert out["same_subject_rate"] is None and out["n_queries"] == 0


def test_validation():
    with pytest.raises(ValueError, match=r"\(Q, k\)"):
        label_disagreement_samples(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="k = 0"):
        label_disagreement_samples(np.zeros((3, 0)), np.zeros(3))
    with pytest.raises(ValueError, match="knn_indices must be"):
        identity_samples(np.zeros((2, 2), int), np.zeros(3, int), np.array(["a"] * 3))
    with pytest.raises(ValueError, match="refer to row 5"):
        identity_samples(np.array([[5]]), np.zeros(1, int), np.array(["a"]))
    with pytest.raises(ValueError, match="differ in length"):
        identity_samples(
            np.array([[0]]),
            np.zeros(1, int),
            np.array(["a"]),
            reference_labels=np.zeros(2, int),
            reference_subjects=np.array(["a"]),
        )
