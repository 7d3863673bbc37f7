"""The orchestrator (``ferembed.metrics.evaluate``): the metrics.json contract, agreement with the
stand-alone metrics and with scikit-learn, sampling, reference runs, edge cases, run directories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from ferembed.metrics._validation import l2_normalize
from ferembed.metrics.clustering import clustering_scores
from ferembed.metrics.evaluate import (
    GROUPS,
    HEADLINE,
    Reference,
    default_sample_size,
    evaluate,
)
from ferembed.metrics.retrieval import compute_retrieval
from ferembed.runs.evaluate import evaluate_run
from ferembed.runs.format import load_run, make_samples, write_run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


@pytest.fixture(scope="module")
def imbalanced_eval(blobs_imbalanced):
    b = blobs_imbalanced
    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, b.x.shape[1])).astype(np.float32)
    logits = b.x @ w.T
    return evaluate(
        b.x,
        b.y,
        class_names=[f"c{i}" for i in range(7)],
        logits=logits,
        head_weight=w,
        subjects=b.subjects,
        n_boot=200,
        return_per_sample=True,
    ) + (logits,)


# --------------------------------------------------------------------------------- contract


def _doc_headline_keys() -> list[str]:
    text = DOCS.read_text()
    section = text.split("## Top level", 1)[1].split("##", 1)[0]
    return re.findall(r"`([a-z0-9_]+)`", section.split("\n\n")[1])


def test_docs_headline_keys_are_all_present(imbalanced_eval):
    m, _, _ = imbalanced_eval
    documented = _doc_headline_keys()
    assert "precision_at_1" in documented and "mean_class_accuracy" in documented
    assert set(documented) == set(HEADLINE)
    for key in documented:
        assert key in m
    for key in (
        "schema", "run", "n", "dim", "num_classes", "class_names", "distance", "created",
        "ferembed_version", "reference", "modes", "timings_s", "ci", "per_class", "separation",
        "confusion", "classification", "retrieval", "clustering", "histograms", "collapse",
        "identity", "neighbors", "notes",
    ):  # fmt: skip
        assert key in m, key
    assert m["schema"] == "ferembed.metrics/1" and m["n"] == 900 and m["num_classes"] == 7


def test_json_ready(imbalanced_eval):
    m, _, _ = imbalanced_eval
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_per_class_section(imbalanced_eval, blobs_imbalanced):
    m, _, _ = imbalanced_eval
    pc = m["per_class"]
    assert list(pc) == [f"c{i}" for i in range(7)]
    for key in (
        "n", "compactness_mean", "compactness_median", "compactness_p90", "intra_pairwise_mean",
        "nearest_class", "nearest_class_distance", "margin", "silhouette", "precision", "recall",
        "f1", "r_precision", "map_at_r",
    ):  # fmt: skip
        assert key in pc["c0"], key
    assert [pc[f"c{i}"]["n"] for i in range(7)] == np.bincount(blobs_imbalanced.y).tolist()
    assert pc["c0"]["nearest_class"] in pc


def test_confusion_and_classification(imbalanced_eval, blobs_imbalanced):
    m, ps, logits = imbalanced_eval
    y = blobs_imbalanced.y
    head = logits.argmax(1)
    assert m["classification"]["primary"] == "head"
    assert m["accuracy"] == pytest.approx(np.mean(head == y))
    assert m["head_accuracy"] == m["accuracy"]
    assert m["mean_class_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, head))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, head, average="macro"))
    np.testing.assert_array_equal(m["confusion"]["head"]["counts"], skm.confusion_matrix(y, head))
    assert set(m["confusion"]) == {"head", "knn", "centroid"}
    assert m["knn_accuracy"] == pytest.approx(np.mean(ps["knn_pred"] == y))
    assert m["centroid_accuracy"] == pytest.approx(np.mean(ps["centroid_pred"] == y))
    for key in ("accuracy", "mean_class_accuracy", "macro_f1", "knn_accuracy"):
        lo, hi = m["ci"][key]
        assert lo <= m[key] <= hi


def test_values_equal_standalone_metrics(imbalanced_eval, blobs_imbalanced):
    m, ps, _ = imbalanced_eval
    b = blobs_imbalanced
    res = compute_retrieval(b.x, b.y, k=10)
    assert m["precision_at_1"] == pytest.approx(np.nanmean(res.precision_at_k(1)))
    assert m["r_precision"] == pytest.approx(np.nanmean(res.r_precision))
    assert m["map_at_r"] == pytest.approx(np.nanmean(res.map_at_r))
    assert m["retrieval"]["precision_at_k"]["10"] == pytest.approx(
        np.nanmean(res.precision_at_k(10))
    )
    cl = clustering_scores(b.x, b.y, seed=0)
    assert m["nmi"] == pytest.approx(cl["nmi"]) and m["ami"] == pytest.approx(cl["ami"])
    np.testing.assert_array_equal(ps["cluster"], cl["clusters"])
    # lone class (3 samples: not lone); the singleton-free fixture has no NaN R-precision
    assert m["retrieval"]["n_lone_queries"] == 0
    np.testing.assert_allclose(ps["r_precision"], res.r_precision)
    for lo_hi, key in ((m["ci"]["r_precision"], "r_precision"), (m["ci"]["map_at_r"], "map_at_r")):
        assert lo_hi[0] <= m[key] <= lo_hi[1]


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_sklearn_geometry_through_evaluate(blobs_small, distance):
    b = blobs_small
    m = evaluate(b.x, b.y, distance=distance, include=["geometry", "silhouette"], n_boot=0)
    xs = l2_normalize(b.x) if distance == "cosine" else b.x
    x64 = np.asarray(xs, np.float64)
    assert m["silhouette"] == pytest.approx(
        skm.silhouette_score(np.asarray(b.x, np.float64), b.y, metric=distance), abs=1e-4
    )
    assert m["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x64, b.y), abs=1e-4)
    assert m["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(x64, b.y), rel=1e-4)
    assert m["modes"]["silhouette"] == "exact"
    assert set(m["timings_s"]) == {"geometry", "silhouette", "total"}
    assert m["precision_at_1"] is None and m["nmi"] is None  # not included


def test_per_sample_table(imbalanced_eval, blobs_imbalanced):
    _, ps, _ = imbalanced_eval
    assert isinstance(ps, pd.DataFrame) and len(ps) == 900
    for col in (
        "label", "knn_query", "knn_pred", "centroid_pred", "head_pred", "label_disagreement",
        "r_precision", "map_at_r", "precision_at_1", "silhouette", "cluster",
        "distance_to_centroid", "same_subject_rate", "same_expression_rate",
    ):  # fmt: skip
        assert col in ps, col
    assert ps["knn_query"].all()
    unknown = blobs_imbalanced.subjects == ""
    assert ps["same_subject_rate"][unknown].isna().all()
    assert ps["label_disagreement"].between(0, 1).all()


def test_identity_section(imbalanced_eval):
    m, _, _ = imbalanced_eval
    ident = m["identity"]
    assert ident["n_subjects"] == 30 and 0 <= ident["same_subject_rate"] <= 1
    # subjects were drawn at random: no identity structure beyond chance
    assert ident["subject_lift"] == pytest.approx(1.0, abs=0.5)


# ---------------------------------------------------------------------------- scale: sampling


def test_sampled_queries_above_max_exact_n(blobs_large):
    b = blobs_large
    full = compute_retrieval(b.x, b.y, k=10)
    exact = {
        "precision_at_1": np.nanmean(full.precision_at_k(1)),
        "r_precision": np.nanmean(full.r_precision),
        "map_at_r": np.nanmean(full.map_at_r),
    }
    m, ps = evaluate(
        b.x, b.y, include=["retrieval", "neighbors"], max_exact_n=2000, sample_size=1500,
        n_boot=300, return_per_sample=True,
    )  # fmt: skip
    assert m["modes"]["retrieval"] == "sampled(n=1500, seed=0, stratified by class)"
    assert m["retrieval"]["n_queries"] == 1500 and ps["knn_query"].sum() == 1500
    assert ps["r_precision"][~ps["knn_query"]].isna().all()
    for key, value in exact.items():
        lo, hi = m["ci"][key]
        assert lo <= m[key] <= hi
        assert abs(m[key] - value) < 3 * (hi - lo)  # the estimate is near the exact value
    # each sampled query's value is exact: equal to the full computation on that row
    # (to float32 rounding: other query blocks, other BLAS rounding, near-ties may swap)
    q = np.flatnonzero(ps["knn_query"])
    np.testing.assert_allclose(ps["map_at_r"][q], full.map_at_r[q], atol=1e-5)


def test_default_sample_size():
    assert default_sample_size(100_000, 100_000, 128) == 10_000
    assert default_sample_size(1_000_000, 1_000_000, 512) == 4882  # 2.5e12 / (N * D)
    assert default_sample_size(10**7, 10**7, 2048) == 2_000
    assert default_sample_size(3_000, 3_000, 8) == 3_000


# ------------------------------------------------------------------------------- reference


def test_reference_set(blobs_imbalanced):
    b = blobs_imbalanced
    test, train = np.arange(900) < 300, np.arange(900) >= 300
    ref = Reference(b.x[train], b.y[train], b.subjects[train], "train")
    m, ps = evaluate(
        b.x[test], b.y[test], subjects=b.subjects[test], reference=ref, n_boot=0,
        include=["retrieval", "classification", "neighbors"], return_per_sample=True,
    )  # fmt: skip
    res = compute_retrieval(
        b.x[test], b.y[test], k=10, reference=b.x[train], reference_labels=b.y[train]
    )
    assert m["reference"] == "train"
    assert m["precision_at_1"] == pytest.approx(np.nanmean(res.precision_at_k(1)))
    assert m["map_at_r"] == pytest.approx(np.nanmean(res.map_at_r))
    assert "identity" in m
    # tuple form works too
    m2 = evaluate(b.x[test], b.y[test], reference=(b.x[train], b.y[train]), n_boot=0,
                  include=["retrieval"])  # fmt: skip
    assert m2["map_at_r"] == m["map_at_r"]
    m3 = evaluate(
        b.x[test], b.y[test], n_boot=0, include=["retrieval"],
        reference={"embeddings": b.x[train], "labels": b.y[train]},
    )  # fmt: skip
    assert m3["map_at_r"] == m["map_at_r"]
    with pytest.raises(ValueError, match="reference has dimension"):
        evaluate(b.x, b.y, reference=(b.x[:, :3], b.y))
    with pytest.raises(ValueError, match="reference labels must lie"):
        evaluate(b.x, b.y, class_names=list("abcdefg"), reference=(b.x, b.y + 1))


# ------------------------------------------------------------------------------ edge cases


def test_ties_and_singleton_class(blobs_ties):
    b = blobs_ties
    m, ps = evaluate(b.x, b.y, n_boot=50, return_per_sample=True)
    assert m["retrieval"]["n_lone_queries"] == 1
    assert m["per_class"]["4"]["r_precision"] is None and m["per_class"]["4"]["n"] == 1
    assert np.isnan(ps["r_precision"][b.y == 4]).all()
    assert all(m[k] is not None for k in ("precision_at_1", "map_at_r", "nmi", "silhouette"))


def test_single_class_returns_nulls_with_notes(blobs_single_class):
    b = blobs_single_class
    m = evaluate(b.x, b.y, n_boot=20)
    for key in (
        "nmi", "ami", "ari", "purity", "silhouette", "davies_bouldin", "calinski_harabasz",
        "fisher_ratio", "nc1", "hist_overlap",
    ):  # fmt: skip
        assert m[key] is None, key
    assert m["precision_at_1"] == 1.0 and m["r_precision"] == 1.0  # trivially
    assert any("1 class present" in note for note in m["notes"])
    json.dumps(m, allow_nan=False)


def test_tiny_run_reduces_k(blobs_small):
    m = evaluate(blobs_small.x[:4], blobs_small.y[:4] * 0 + np.array([0, 0, 1, 1]), n_boot=0)
    assert m["retrieval"]["k_values"] == [1, 3]
    assert any("k reduced from 10 to 3" in note for note in m["notes"])


def test_input_validation(blobs_small):
    x, y = np.array(blobs_small.x), blobs_small.y
    bad = x.copy()
    bad[42, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf, first at row 42"):
        evaluate(bad, y)
    with pytest.raises(ValueError, match=r"labels must have shape \(600,\)"):
        evaluate(x, y[:10])
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        evaluate(x, y, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"logits must have shape \(600, 5\)"):
        evaluate(x, y, logits=np.zeros((600, 4)))
    with pytest.raises(ValueError, match="logits has NaN"):
        evaluate(x, y, logits=np.full((600, 5), np.nan))
    with pytest.raises(ValueError, match=r"head_weight must have shape \(5, 16\)"):
        evaluate(x, y, head_weight=np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"subjects must have shape \(600,\)"):
        evaluate(x, y, subjects=["a"])
    with pytest.raises(ValueError, match="distance must be one of"):
        evaluate(x, y, distance="cityblock")
    with pytest.raises(ValueError, match=r"unknown metric group\(s\) \['bogus'\]"):
        evaluate(x, y, include=["bogus"])
    with pytest.raises(ValueError, match="not a string"):
        evaluate(x, y, exclude="geometry")
    with pytest.raises(ValueError, match="k must be"):
        evaluate(x, y, k=0)
    with pytest.raises(ValueError, match="sample_size"):
        evaluate(x, y, sample_size=0)
    with pytest.raises(ValueError, match="n_boot"):
        evaluate(x, y, n_boot=-1)


def test_include_exclude(blobs_small):
    b = blobs_small
    m = evaluate(b.x, b.y, exclude=[g for g in GROUPS if g != "clustering"], n_boot=0)
    assert m["groups"] == ["clustering"] and m["nmi"] is not None
    assert m["precision_at_1"] is None and "retrieval" not in m
    m = evaluate(b.x, b.y, include=["classification"], n_boot=0)  # needs the kNN search anyway
    assert m["knn_accuracy"] is not None and m["r_precision"] is None
    assert m["classification"]["primary"] == "knn"
    assert m["accuracy"] == m["knn_accuracy"]


# --------------------------------------------------------------------------- run directories


def test_evaluate_run_writes_files(run_small):
    m = evaluate_run(run_small, n_boot=50)
    assert m["run"] == "run_small" and m["reference"] is None
    run = load_run(run_small)
    assert run.load_metrics() == m
    ps = pd.read_parquet(run_small / "per_sample.parquet")
    assert ps.columns[0] == "sample_id" and len(ps) == run.n
    assert ps["sample_id"].tolist() == run.samples["sample_id"].tolist()
    assert m["classification"]["primary"] == "head" and m["nc3"] is not None
    assert "identity" in m
    # no temporary files left in the run directory
    assert not [p for p in run_small.iterdir() if p.name.startswith(".")]


def test_evaluate_run_with_reference_and_distance(run_small, tmp_path, blobs_imbalanced):
    b = blobs_imbalanced
    names = load_run(run_small).class_names
    ref = write_run(
        tmp_path / "train", embeddings=b.x[::2], samples=make_samples(b.y[::2], names),
        class_names=names, source="import",
    )  # fmt: skip
    m = evaluate_run(run_small, reference=ref, distance="euclidean", n_boot=0, write=False)
    assert m["reference"] == "train" and m["distance"] == "euclidean"
    other = write_run(
        tmp_path / "other", embeddings=b.x, samples=make_samples(b.y, list("abcdefg")),
        class_names=list("abcdefg"), source="import",
    )  # fmt: skip
    with pytest.raises(ValueError, match="has classes"):
        evaluate_run(run_small, reference=other, write=False)
