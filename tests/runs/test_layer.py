"""The run layer: file and column names owned by ferembed.runs, per-sample loading, predictions,
the keyed disk cache, cached comparisons, and embed-then-evaluate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ferembed.metrics.evaluate import evaluate
from ferembed.runs import (
    CACHE_DIR,
    METRICS_FILE,
    PER_SAMPLE_FILE,
    _files,
    cache_entry,
    compare_runs,
    embed_and_evaluate,
    evaluate_run,
    is_comparison_cached,
    load_cached,
    load_run,
    make_samples,
    save_cached,
    write_run,
)

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["angry", "happy", "sad"]


def _write(path, n=60, seed=0, order=None, logits=False):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = (rng.normal(size=(3, 8))[y] * 3 + rng.normal(size=(n, 8))).astype(np.float32)
    ids = [f"s{i:03d}" for i in range(n)]
    if order is not None:
        x, y, ids = x[order], y[order], [ids[i] for i in order]
    lg = x[:, :3].copy() if logits else None
    samples = make_samples(y, CLASSES, sample_ids=ids, preds=None if lg is None else lg.argmax(1))
    return load_run(write_run(path, embeddings=x, samples=samples, class_names=CLASSES, logits=lg))


def test_file_names_are_the_documented_ones():
    doc = (REPO / "docs" / "run_format.md").read_text()
    listed = set(re.findall(r"^  (\S+?)/?\s", doc, flags=re.M))
    names = {
        getattr(_files, k) for k in dir(_files) if k.endswith(("_FILE", "_DIR")) and k.isupper()
    }
    assert names == listed
    assert (_files.RUN_FILE, _files.METRICS_FILE, _files.PER_SAMPLE_FILE) == (
        "run.json",
        "metrics.json",
        "per_sample.parquet",
    )
    assert (_files.CACHE_DIR, _files.INDEX_DIR) == ("cache", "index")


def test_evaluate_writes_only_documented_per_sample_columns(tmp_path):
    run = _write(tmp_path / "r", logits=True)
    _, per_sample = evaluate(
        run.embeddings,
        run.labels,
        class_names=CLASSES,
        logits=run.logits,
        subjects=np.array(["p1", "p2"] * 30, dtype=object),
        n_boot=0,
        return_per_sample=True,
    )
    known = {getattr(_files, k) for k in dir(_files) if k.startswith("PS_")}
    assert set(per_sample.columns) <= known
    assert _files.PS_KNN_PRED in per_sample and _files.PS_LABEL_DISAGREEMENT in per_sample


def test_load_per_sample_is_aligned_to_the_run_rows(tmp_path):
    run = _write(tmp_path / "r")
    assert run.load_per_sample() is None
    assert (run.predictions("knn") == -1).all()
    evaluate_run(run, n_boot=0)
    assert run.metrics_path == run.path / METRICS_FILE and run.metrics_path.is_file()
    assert run.per_sample_path == run.path / PER_SAMPLE_FILE
    ps = run.load_per_sample()
    assert ps["sample_id"].tolist() == run.samples["sample_id"].tolist()
    # Shuffle the file's rows and drop one: still the run's order, the missing row NaN / -1.
    raw = ps.sample(frac=1.0, random_state=0).iloc[1:]
    missing_id = ps["sample_id"][~ps["sample_id"].isin(raw["sample_id"])].item()
    raw.to_parquet(run.per_sample_path, index=False)
    again = run.load_per_sample()
    assert again["sample_id"].tolist() == run.samples["sample_id"].tolist()
    knn = run.predictions("knn")
    row = int(np.flatnonzero(run.sample_ids == missing_id)[0])
    assert knn[row] == -1
    others = np.arange(run.n) != row
    np.testing.assert_array_equal(knn[others], ps["knn_pred"].to_numpy()[others])
    assert (knn[others] >= 0).all()


def test_head_predictions_and_bad_kind(tmp_path):
    run = _write(tmp_path / "r", logits=True)
    np.testing.assert_array_equal(run.predictions("head"), run.logits.argmax(1))
    assert (_write(tmp_path / "nohead").predictions("head") == -1).all()
    with pytest.raises(ValueError, match="kind must be one of"):
        run.predictions("centroid")


def test_metadata_columns_are_kept(tmp_path):
    y = np.arange(12) % 3
    samples = make_samples(y, CLASSES).assign(source=["a", "b"] * 6)
    x = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    run = load_run(write_run(tmp_path / "m", embeddings=x, samples=samples, class_names=CLASSES))
    assert run.metadata_columns == ["source"]
    assert run.samples["source"].tolist() == ["a", "b"] * 6


def test_cache_entry_keys_and_round_trip(tmp_path):
    run = _write(tmp_path / "r")
    other = _write(tmp_path / "o", seed=1)
    e1 = cache_entry(run, "thing", {"p": 1})
    assert e1.path.parent == run.path / CACHE_DIR and e1.path.name.startswith("thing-")
    assert cache_entry(run, "thing", {"p": 1}).path == e1.path
    assert cache_entry(run, "thing", {"p": 2}).path != e1.path
    assert cache_entry(run, "thing", {"p": 1}, inputs=[other]).path != e1.path
    assert load_cached(e1) is None
    assert save_cached(e1, {"x": [1.0, float("nan")]})
    assert load_cached(e1) == {"x": [1.0, None]}
    assert not list(e1.path.parent.glob("*.tmp"))
    # A file whose stored key differs (copied in, or a hash collision) is a miss.
    stored = json.loads(e1.path.read_text())
    stored["ident"]["params"] = {"p": 99}
    e1.path.write_text(json.dumps(stored))
    assert load_cached(e1) is None
    e1.path.write_text("garbage")
    assert load_cached(e1) is None
    arrays = cache_entry(run, "arr", {"p": 1}, suffix=".npz")
    assert save_cached(arrays, {"a": np.arange(3)})
    np.testing.assert_array_equal(load_cached(arrays)["a"], np.arange(3))
    with pytest.raises(ValueError, match="suffix"):
        cache_entry(run, "x", {}, suffix=".pkl")


def test_compare_runs_cache(tmp_path, monkeypatch):
    a = _write(tmp_path / "a")
    b = _write(tmp_path / "b", seed=1, order=np.random.default_rng(2).permutation(60))
    assert not is_comparison_cached(a, b, n_boot=50)
    fresh = compare_runs(a, b, n_boot=50, cache=True)
    assert is_comparison_cached(a, b, n_boot=50)
    assert not is_comparison_cached(a, b, n_boot=51)
    assert len(list((a.path / CACHE_DIR).glob("compare-*.json"))) == 1

    import ferembed.runs.compare as rc

    def boom(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(rc, "compare_embeddings", boom)
    assert compare_runs(a, b, n_boot=50, cache=True) == fresh
    with pytest.raises(AssertionError, match="recomputed"):
        compare_runs(a, b, n_boot=50)  # cache=False never reads it


@pytest.mark.slow
def test_embed_and_evaluate_writes_an_evaluated_run(tmp_path):
    card = REPO / "checkpoints" / "synthfer" / "softmax.json"
    if not card.exists():
        pytest.skip("no shipped SynthFER checkpoint")
    out = tmp_path / "run"
    metrics = embed_and_evaluate(
        card, dataset="synthfer", root=None, split="test", out=out, progress=False, name="x"
    )
    run = load_run(out)
    assert run.name == "x" and json.loads(run.metrics_path.read_text()) == metrics
    assert run.load_per_sample() is not None


def test_compare_runs_is_compare_embeddings_on_the_paired_rows(tmp_path):
    from ferembed.metrics.compare import compare_embeddings

    a = _write(tmp_path / "a", logits=True)
    order = np.random.default_rng(3).permutation(60)
    b = _write(tmp_path / "b", seed=1, order=order, logits=True)
    res = compare_runs(a, b, n_boot=40)
    pos_b = np.argsort(order)  # row of B holding each of A's samples
    direct = compare_embeddings(
        a.embeddings,
        np.asarray(b.embeddings)[pos_b],
        a.labels,
        class_names=CLASSES,
        logits_a=a.logits,
        logits_b=np.asarray(b.logits)[pos_b],
        sample_ids=a.sample_ids,
        n_boot=40,
    )
    assert res == {"run_a": "a", "run_b": "b", **direct}
    assert res["correctness"] == "head"
