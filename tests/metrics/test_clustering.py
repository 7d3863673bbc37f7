"""Clustering agreement (``ferembed.metrics.clustering``) against PML and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from ferembed.index import kmeans
from ferembed.metrics.clustering import (
    ami,
    ari,
    clustering_scores,
    compute_clusters,
    nmi,
    purity,
)


def test_nmi_ami_equal_pml_given_the_same_clusters(blobs_imbalanced):
    b = blobs_imbalanced
    clusters = compute_clusters(b.x, 7, seed=0)
    calc = AccuracyCalculator(include=("NMI", "AMI"), device=torch.device("cpu"))
    want = calc._get_accuracy(
        calc.get_function_dict(("NMI", "AMI")),
        query_labels=torch.from_numpy(np.array(b.y)),
        cluster_labels=torch.from_numpy(clusters),
    )
    assert nmi(b.y, clusters) == pytest.approx(want["NMI"], abs=1e-4)
    assert ami(b.y, clusters) == pytest.approx(want["AMI"], abs=1e-4)
    got = clustering_scores(b.x, b.y, clusters=clusters)
    assert got["nmi"] == pytest.approx(want["NMI"], abs=1e-4)
    assert got["ami"] == pytest.approx(want["AMI"], abs=1e-4)


def test_purity_and_ari_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    clusters = np.array([5, 5, 7, 7, 7, 7, 9, 9])
    # cluster 5: {0,0} -> 2; cluster 7: {0,1,1,1} -> 3; cluster 9: {2,2} -> 2; purity = 7/8
    assert purity(labels, clusters) == pytest.approx(7 / 8)
    assert ari(labels, labels) == 1.0 and nmi(labels, labels) == pytest.approx(1.0)
    # relabelled clusters score the same
    assert ari(labels, clusters) == pytest.approx(ari(labels, (clusters * 3) % 11))


def test_separated_blobs_cluster_perfectly(blobs_separated):
    b = blobs_separated
    for distance in ("cosine", "euclidean"):
        s = clustering_scores(b.x, b.y, distance=distance, seed=1)
        assert s["k"] == 4 and s["seed"] == 1 and s["n_train"] == 200
        assert s["nmi"] == pytest.approx(1.0) and s["ami"] == pytest.approx(1.0)
        assert s["ari"] == pytest.approx(1.0) and s["purity"] == 1.0
        assert s["clusters"].shape == (200,)


def test_k_is_number_of_present_classes_and_seeded(blobs_ties):
    b = blobs_ties
    s = clustering_scores(b.x, b.y, seed=5)
    assert s["k"] == 5
    np.testing.assert_array_equal(s["clusters"], kmeans(b.x, 5, seed=5).assignments)
    np.testing.assert_array_equal(s["clusters"], clustering_scores(b.x, b.y, seed=5)["clusters"])


def test_single_class_gives_none(blobs_single_class):
    s = clustering_scores(blobs_single_class.x, blobs_single_class.y)
    assert s["k"] == 1
    assert s["nmi"] is None and s["ami"] is None and s["ari"] is None and s["purity"] is None


def test_validation(blobs_small):
    with pytest.raises(ValueError, match="equal length"):
        nmi(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        purity(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="distance must be one of"):
        clustering_scores(blobs_small.x, blobs_small.y, distance="l1")
    bad = np.array(blobs_small.x)
    bad[9, 0] = np.nan
    with pytest.raises(ValueError, match="row 9"):
        clustering_scores(bad, blobs_small.y)
