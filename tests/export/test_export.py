"""collect_metrics / export on runs with hand-written metrics.json files."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from ferembed import _io
from ferembed.errors import FerembedError
from ferembed.export import FORMATS, collect_metrics, export
from ferembed.runs import make_samples, write_run

CLASSES = ["angry", "happy", "sad"]


def _metrics(name, shift):
    """A metrics.json following docs/metrics.md (values made up, some null)."""
    m = {
        "schema": "ferembed.metrics/1",
        "run": name,
        "n": 12,
        "dim": 4,
        "num_classes": 3,
        "class_names": CLASSES,
        "distance": "cosine",
        "created": "2025-01-01T00:00:00+00:00",
        "ferembed_version": "0.1.0",
        "reference": None,
        "modes": {"retrieval": "exact", "silhouette": "exact"},
        "timings_s": {"geometry": 0.1},
    }
    head = {
        "precision_at_1": 0.8,
        "r_precision": 0.6,
        "map_at_r": 0.5,
        "knn_accuracy": 0.75,
        "nmi": 0.4,
        "ami": 0.38,
        "ari": 0.3,
        "purity": 0.7,
        "silhouette": 0.2,
        "davies_bouldin": 1.5,
        "calinski_harabasz": 40.0,
        "fisher_ratio": 0.9,
        "accuracy": 0.7,
        "mean_class_accuracy": 0.65,
        "macro_f1": 0.6,
        "head_accuracy": 0.7,
        "centroid_accuracy": 0.72,
        "alignment": 0.5,
        "uniformity": -2.0,
        "nc1": 1.2,
        "nc2_equinorm": 0.1,
        "nc2_equiangularity": 0.05,
        "nc3": None,
        "hist_overlap": 0.3,
    }
    m.update({k: (v + shift if v is not None else None) for k, v in head.items()})
    m["ci"] = {"precision_at_1": [0.7 + shift, 0.9 + shift], "accuracy": [0.6, 0.8]}
    m["per_class"] = {
        c: {
            "n": 4,
            "compactness_mean": 0.1 * (i + 1) + shift,
            "margin": 0.2 - 0.1 * i,
            "nearest_class": CLASSES[(i + 1) % 3],
            "silhouette": 0.3,
            "precision": 0.5,
            "recall": 0.25 * (i + 1),
            "f1": 0.4,
            "r_precision": None,
        }
        for i, c in enumerate(CLASSES)
    }
    m["separation"] = {
        "centroid_distances": [[0, 0.5, 0.7], [0.5, 0, 0.4], [0.7, 0.4, 0]],
        "nearest_class": [1, 2, 1],
        "margin": [0.1, 0.2, 0.3],
    }
    cm = [[3, 1, 0], [0, 4, 0], [1, 1, 2]]
    norm = [[0.75, 0.25, 0], [0, 1, 0], [0.25, 0.25, 0.5]]
    m["confusion"] = {
        "head": {"counts": cm, "normalized": norm},
        "knn": {"counts": cm, "normalized": norm},
    }
    m["classification"] = {
        "primary": "head",
        "head": {"accuracy": 0.7},
        "knn": {"accuracy": 0.75, "mean_class_accuracy": 0.7, "macro_f1": 0.69},
    }
    m["retrieval"] = {"k_values": [1, 5], "precision_at_k": [0.8, 0.6], "recall_at_k": [0.1, 0.4]}
    m["histograms"] = {
        "bin_edges": [0, 1, 2],
        "intra": [0.8, 0.2],
        "inter": [0.3, 0.7],
        "overlap": 0.5,
    }
    return m


def _run(root, name, *, shift=0.0, with_metrics=True):
    rng = np.random.default_rng(0)
    y = np.arange(12) % 3
    path = write_run(
        root / name,
        embeddings=rng.normal(size=(12, 4)).astype(np.float32),
        samples=make_samples(y, CLASSES),
        class_names=CLASSES,
    )
    if with_metrics:
        _io.write_json(path / "metrics.json", _metrics(name, shift))
    return path


@pytest.fixture
def runs(tmp_path):
    return [_run(tmp_path, "base"), _run(tmp_path, "better", shift=0.05)]


def test_long_table_contents(runs):
    long_df, _ = collect_metrics(runs)
    assert list(long_df.columns) == ["run", "metric", "class", "value", "ci_low", "ci_high"]
    row = long_df[(long_df.run == "better") & (long_df.metric == "precision_at_1")].iloc[0]
    assert row["class"] == "" and row["value"] == pytest.approx(0.85)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.75, 0.95))
    nc3 = long_df[(long_df.run == "base") & (long_df.metric == "nc3")]
    assert len(nc3) == 1 and math.isnan(nc3["value"].iloc[0])  # null -> NaN
    ids = long_df.metric.isin(["n", "dim", "num_classes"]) & (long_df["class"] == "")
    assert not ids.any()  # identification keys are not metrics (per-class n is)
    per_class = long_df[(long_df.run == "base") & (long_df["class"] == "sad")]
    got = dict(zip(per_class.metric, per_class.value, strict=True))
    assert got["recall"] == pytest.approx(0.75) and got["compactness_mean"] == pytest.approx(0.3)
    assert "nearest_class" not in got  # not numeric
    overall = set(long_df[long_df["class"] == ""].metric)
    assert {"precision_at_5", "recall_at_1", "knn_macro_f1", "knn_mean_class_accuracy"} <= overall
    assert "head_accuracy" in overall and "knn_accuracy" in overall
    assert len(long_df) == len(long_df.drop_duplicates(["run", "metric", "class"]))


def test_wide_is_the_long_overall_rows_pivoted(runs):
    long_df, wide_df = collect_metrics(runs)
    assert wide_df["run"].tolist() == ["base", "better"]
    assert wide_df.loc[0, "n"] == 12 and wide_df.loc[0, "distance"] == "cosine"
    overall = long_df[long_df["class"] == ""]
    for _, r in overall.iterrows():
        w = wide_df.set_index("run").loc[r["run"]]
        v = w[r["metric"]]
        assert (math.isnan(v) and math.isnan(r["value"])) or v == pytest.approx(r["value"])
        if not math.isnan(r["ci_low"]):
            assert w[f"{r['metric']}_ci_low"] == pytest.approx(r["ci_low"])
            assert w[f"{r['metric']}_ci_high"] == pytest.approx(r["ci_high"])
    # headline metrics come first, in the documented order
    metric_cols = [
        c for c in wide_df.columns if c not in ("run", "path", "n", "num_classes", "distance")
    ]
    assert metric_cols[:3] == ["precision_at_1", "r_precision", "map_at_r"]


def test_directory_of_runs_and_duplicate_names(tmp_path):
    _run(tmp_path / "x", "same")
    _run(tmp_path / "y", "same")
    long_df, wide_df = collect_metrics(tmp_path)  # a root folder stands for its runs
    assert wide_df["run"].tolist() == ["same", "same#2"]
    assert set(long_df["run"]) == {"same", "same#2"}


def test_missing_metrics_tells_to_evaluate(tmp_path):
    path = _run(tmp_path, "raw", with_metrics=False)
    with pytest.raises(FerembedError, match="ferembed evaluate"):
        collect_metrics([path])
    with pytest.raises(FerembedError, match="not a run directory"):
        collect_metrics([tmp_path / "nowhere"])
    (path / "metrics.json").write_text('{"schema": "other/1"}')
    with pytest.raises(FerembedError, match="schema 'other/1'"):
        collect_metrics([path])


def test_evaluate_on_the_fly(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    x = (rng.normal(size=(3, 8))[y] + rng.normal(0, 0.5, (60, 8))).astype(np.float32)
    path = write_run(
        tmp_path / "fresh", embeddings=x, samples=make_samples(y, CLASSES), class_names=CLASSES
    )
    long_df, wide_df = collect_metrics([path], evaluate=True)
    assert (path / "metrics.json").exists()
    assert 0 <= wide_df.loc[0, "precision_at_1"] <= 1


def _read_back(fmt, out):
    if fmt == "csv":
        return pd.read_csv(out, keep_default_na=False, na_values=[""])
    if fmt == "parquet":
        return pd.read_parquet(out)
    if fmt == "json":
        return pd.DataFrame(json.loads(out.read_text())["long"])
    return None


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_or_parses(runs, tmp_path, fmt):
    out = export(runs, format=fmt, out=tmp_path / "out" / f"report.{fmt}")
    assert out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # atomic: no temp
    long_df, wide_df = collect_metrics(runs)
    back = _read_back(fmt, out)
    if back is not None:
        back["class"] = back["class"].fillna("").astype(str)
        expected = long_df.astype({"run": object, "metric": object, "class": object})
        pd.testing.assert_frame_equal(
            back.astype(expected.dtypes.to_dict()).reset_index(drop=True),
            expected.reset_index(drop=True),
            check_dtype=False,
        )
    text = out.read_bytes()
    if fmt == "json":
        doc = json.loads(text)
        assert doc["schema"] == "ferembed.export/1"
        assert [r["run"] for r in doc["wide"]] == ["base", "better"]
        assert doc["metrics"]["better"]["per_class"]["sad"]["recall"] == 0.75
        assert doc["long"][0]["ci_low"] is None or isinstance(doc["long"][0]["ci_low"], float)
    if fmt == "markdown":
        md = text.decode()
        rows = [ln for ln in md.splitlines() if ln.startswith("| precision_at_1 ")]
        assert rows == ["| precision_at_1 | 0.8000 [0.7000, 0.9000] | 0.8500 [0.7500, 0.9500] |"]
        assert "## Per class: Recall" in md and "| sad | 0.7500 | 0.7500 |" in md
        for block in md.split("\n\n"):  # every row of a table has the header's column count
            lines = [ln for ln in block.splitlines() if ln.startswith("|")]
            assert len({ln.count("|") for ln in lines}) <= 1


def test_csv_and_parquet_wide_table(runs, tmp_path):
    _, wide_df = collect_metrics(runs)
    out = export(runs, format="parquet", out=tmp_path / "w.parquet", table="wide")
    pd.testing.assert_frame_equal(pd.read_parquet(out), wide_df, check_dtype=False)
    out = export(runs, format="csv", out=tmp_path / "w.csv", table="wide")
    back = pd.read_csv(out)
    np.testing.assert_allclose(back["precision_at_1"], wide_df["precision_at_1"])


def test_html_is_self_contained(runs, tmp_path):
    out = export(runs, format="html", out=tmp_path / "report.html")
    page = out.read_text()
    # no external scripts, stylesheets or frames: nothing loads from the network
    tags = re.findall(r"<(?:script|link|iframe|img)\b[^>]*>", page, flags=re.I)
    assert tags and not [t for t in tags if re.search(r"(src|href)\s*=", t, flags=re.I)]
    assert "cdn.plot.ly" not in "".join(tags)
    assert page.count("plotly.js v") == 1  # the library is inlined exactly once
    assert page.count('class="plotly-graph-div"') >= 2 + 4 + 2  # confusion, per-class, centroid
    for needle in (
        "Summary",
        "0.8500 [0.7500, 0.9500]",
        "better: kNN vote",
        "better: centroid distances (cosine)",
        "Separation margin",
    ):
        assert needle in page
    assert page.rstrip().endswith("</html>")


def test_bad_export_options(runs, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export(runs, format="xlsx", out=tmp_path / "x")
    with pytest.raises(ValueError, match="table must be"):
        export(runs, format="csv", out=tmp_path / "x", table="tall")
