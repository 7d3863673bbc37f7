"""One quantity, one value (issue #12): compare's per-run geometry equals evaluate's, every
interval of an evaluated run contains its estimate, BCa equals scipy's, Holm equals statsmodels'
and the class-balanced retrieval equals pytorch-metric-learning's avg_of_avgs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from statsmodels.stats.multitest import multipletests

from ferembed.metrics import evaluate
from ferembed.metrics.bootstrap import CI_METHODS, bca_interval, recentred_interval
from ferembed.runs import evaluate_run, make_samples, write_run
from ferembed.runs.compare import compare_many, compare_runs, format_comparisons

GEOMETRY = ("compactness", "class_separation", "fisher_ratio")
NAMES = [f"c{i}" for i in range(5)]


def _embedding(rng, n, spread, *, collapsed=False, d=16, k=5):
    """Labels with imbalanced classes and embeddings whose class means are ``spread`` apart.

    ``collapsed``: every class on one far-away point plus small noise (the triplet case).
    """
    y = rng.choice(k, size=n, p=[0.4, 0.25, 0.2, 0.1, 0.05])
    y[:k] = np.arange(k)
    means = spread * rng.normal(size=(k, d))
    if collapsed:
        return (8.0 + means[y] + 0.3 * rng.normal(size=(n, d))).astype(np.float32), y
    return (means[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _write(tmp_path, name, x, y, logits=None):
    samples = make_samples(y, NAMES, sample_ids=[f"s{i}" for i in range(len(y))])
    return write_run(
        tmp_path / name, embeddings=x, samples=samples, class_names=NAMES, logits=logits
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three cosine runs of the same 300 samples: separated, weak, collapsed."""
    tmp = tmp_path_factory.mktemp("truth")
    rng = np.random.default_rng(12)
    xa, y = _embedding(rng, 300, 2.0)
    xb = (_embedding(rng, 300, 0.5)[0][: len(y)] + 2.0 * np.eye(5, 16)[y]).astype(np.float32)
    xc = _embedding(rng, 300, 0.02, collapsed=True)[0]
    return [_write(tmp, name, x, y) for name, x in (("a", xa), ("b", xb), ("c", xc))]


def test_compare_geometry_equals_evaluate(runs):
    metrics = [evaluate_run(r, n_boot=50) for r in runs]
    for i, j in ((0, 1), (0, 2), (2, 1)):
        geo = compare_runs(runs[i], runs[j], n_boot=50)["geometry"]
        for key in GEOMETRY:
            assert geo[key]["a"] == pytest.approx(metrics[i][key], abs=1e-6, rel=1e-6)
            assert geo[key]["b"] == pytest.approx(metrics[j][key], abs=1e-6, rel=1e-6)


@pytest.mark.parametrize(
    "spread, collapsed, n",
    [(2.0, False, 400), (0.3, False, 250), (0.01, True, 400), (0.0, True, 60)],
)
def test_every_interval_of_an_evaluated_run_contains_its_estimate(spread, collapsed, n):
    rng = np.random.default_rng(int(100 * spread) + n)
    x, y = _embedding(rng, n, spread, collapsed=collapsed)
    logits = rng.normal(size=(n, 5)) + 2.0 * np.eye(5)[y] * (not collapsed)
    m = evaluate(x, y, class_names=NAMES, logits=logits, n_boot=300, seed=3)
    assert set(m["ci_method"]) == set(m["ci"]) and set(m["ci_method"].values()) <= set(CI_METHODS)
    assert {"class_separation", "fisher_ratio", "macro_f1", "map_at_r_balanced"} <= set(m["ci"])
    for key, (lo, hi) in m["ci"].items():
        assert lo <= m[key] <= hi, (key, lo, m[key], hi)


def test_bca_equals_scipy_on_a_skewed_mean():
    x = np.random.default_rng(0).exponential(size=60)
    res = scipy.stats.bootstrap(
        (x,), np.mean, method="BCa", n_resamples=2000, confidence_level=0.9, random_state=1
    )
    jack = (x.sum() - x) / (x.size - 1)  # the mean with each sample left out
    lo, hi = bca_interval(res.bootstrap_distribution, x.mean(), jack, 0.1)
    assert lo == pytest.approx(res.confidence_interval.low, rel=1e-12)
    assert hi == pytest.approx(res.confidence_interval.high, rel=1e-12)


def test_recentred_interval_is_the_percentile_one_shifted_by_the_bias():
    boot = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3; 5% and 95% quantiles 1.2 and 4.8
    lo, hi = recentred_interval(boot, 2.0, 0.1)
    assert (lo, hi) == pytest.approx((0.2, 3.8))
    assert np.isnan(recentred_interval(np.array([np.nan]), 1.0, 0.05)).all()


def test_compare_many_adjusts_the_mcnemar_pvalues_like_statsmodels(runs):
    out = compare_many(runs[0], [runs[1], runs[2], runs[1]], n_boot=20)
    raw = [c["mcnemar"]["pvalue"] for c in out["comparisons"]]
    holm = [c["mcnemar"]["pvalue_holm"] for c in out["comparisons"]]
    np.testing.assert_allclose(holm, multipletests(raw, method="holm")[1], rtol=1e-12)
    assert out["baseline"] == "a" and [c["run_b"] for c in out["comparisons"]] == ["b", "c", "b"]
    text = format_comparisons(out)
    assert "p (Holm)" in text and f"{holm[1]:.4g}" in text


def test_balanced_retrieval_equals_pml_avg_of_avgs():
    rng = np.random.default_rng(4)
    x, y = _embedding(rng, 500, 0.8)
    m = evaluate(x, y, class_names=NAMES, n_boot=0)
    calc = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        avg_of_avgs=True,
        knn_func=CustomKNN(CosineSimilarity()),
        device=torch.device("cpu"),
    )
    want = calc.get_accuracy(x.copy(), y.copy(), x.copy(), y.copy(), ref_includes_query=True)
    assert m["precision_at_1_balanced"] == pytest.approx(want["precision_at_1"], abs=1e-6)
    assert m["r_precision_balanced"] == pytest.approx(want["r_precision"], abs=1e-6)
    assert m["map_at_r_balanced"] == pytest.approx(want["mean_average_precision_at_r"], abs=1e-6)
    assert m["precision_at_1_balanced"] != pytest.approx(m["precision_at_1"], abs=1e-4)


def test_cli_compare_with_several_runs_prints_raw_and_holm_p(runs, tmp_path, capsys):
    from ferembed.cli import main

    out = tmp_path / "cmp.json"
    assert main(["compare", *map(str, runs), "-k", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p (Holm)" in text and "baseline A = a" in text
    saved = json.loads(out.read_text())
    assert [c["run_b"] for c in saved["comparisons"]] == ["b", "c"]
    assert all("pvalue_holm" in c["mcnemar"] for c in saved["comparisons"])
    # one challenger: the single comparison, as before
    assert main(["compare", str(runs[0]), str(runs[1]), "-k", "5"]) == 0
    assert "p (Holm)" not in capsys.readouterr().out


def test_confusion_jackknife_equals_leaving_each_sample_out():
    from sklearn.metrics import f1_score

    from ferembed.metrics._groups import _confusion_jackknife
    from ferembed.metrics.classification import confusion_matrix

    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(4), 12)
    pred = np.where(rng.random(y.size) < 0.6, y, rng.integers(0, 4, y.size))
    cm = confusion_matrix(y, pred, 4)
    want = [
        f1_score(np.delete(y, i), np.delete(pred, i), average="macro", labels=range(4))
        for i in range(y.size)
    ]
    np.testing.assert_allclose(np.sort(_confusion_jackknife(cm, "macro_f1")), np.sort(want))
