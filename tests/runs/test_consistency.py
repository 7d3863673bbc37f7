"""A run's files are checked together (issue #14): metrics.json records what it was computed
from; metrics of changed inputs are stale: ``load_metrics`` gives None, evaluate recomputes, export
refuses (or recomputes with ``--evaluate``). A kill between per_sample.parquet and metrics.json
leaves a pair that reads as stale, never as current."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ferembed import cli
from ferembed.errors import FerembedError
from ferembed.export import collect_metrics
from ferembed.runs import (
    EMBEDDINGS_FILE,
    LOGITS_FILE,
    PER_SAMPLE_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    evaluate_run,
    load_run,
    make_samples,
    write_run,
)

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["angry", "happy", "sad"]
N, D = 60, 8


def _embeddings(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 3
    return (rng.normal(size=(3, D))[y] * 3 + rng.normal(size=(N, D))).astype(np.float32)


def _evaluated(path: Path, seed: int = 0) -> Path:
    x = _embeddings(seed)
    samples = make_samples(np.arange(N) % 3, CLASSES, preds=x[:, :3].argmax(1))
    write_run(path, embeddings=x, samples=samples, class_names=CLASSES, logits=x[:, :3].copy())
    evaluate_run(path, n_boot=0)
    return path


def _save_npy_in_place(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # in place, as a user's script or a half-finished copy would
        np.save(fh, array)


def _truncate(run: Path) -> None:
    data = (run / EMBEDDINGS_FILE).read_bytes()
    (run / EMBEDDINGS_FILE).write_bytes(data[: len(data) // 2])


def _nan(run: Path) -> None:
    x = np.load(run / EMBEDDINGS_FILE)
    x[7] = np.nan
    _save_npy_in_place(run / EMBEDDINGS_FILE, x)


def _other_embeddings(run: Path) -> None:
    _save_npy_in_place(run / EMBEDDINGS_FILE, _embeddings(5))


def _other_logits(run: Path) -> None:
    _save_npy_in_place(run / LOGITS_FILE, -np.load(run / LOGITS_FILE))


def _other_samples(run: Path) -> None:
    import pandas as pd

    df = pd.read_parquet(run / SAMPLES_FILE)
    df["label"] = df["label"].to_numpy()[::-1].copy()
    df.to_parquet(run / SAMPLES_FILE, index=False)


def _other_distance(run: Path) -> None:
    manifest = json.loads((run / RUN_FILE).read_text())
    manifest["distance"] = "euclidean"
    (run / RUN_FILE).write_text(json.dumps(manifest))


def _other_per_sample(run: Path) -> None:
    import pandas as pd

    df = pd.read_parquet(run / PER_SAMPLE_FILE)
    df.iloc[::-1].to_parquet(run / PER_SAMPLE_FILE, index=False)


#: (name, change made after evaluate, files the stale reason names, does evaluate then work)
CHANGES = [
    ("truncated-embeddings", _truncate, [EMBEDDINGS_FILE], False),
    ("nan-embeddings", _nan, [EMBEDDINGS_FILE], False),
    ("replaced-embeddings", _other_embeddings, [EMBEDDINGS_FILE], True),
    ("replaced-logits", _other_logits, [LOGITS_FILE], True),
    ("relabelled-samples", _other_samples, [SAMPLES_FILE], True),
    ("edited-run-json", _other_distance, [RUN_FILE], True),
    ("foreign-per-sample", _other_per_sample, [PER_SAMPLE_FILE], True),
]


def test_fresh_metrics_record_their_inputs(tmp_path):
    run = load_run(_evaluated(tmp_path / "r"))
    assert run.metrics_status() == ("fresh", "")
    record = run.load_metrics()["computed_from"]
    for name in (RUN_FILE, EMBEDDINGS_FILE, SAMPLES_FILE, LOGITS_FILE):
        stamp = record["files"][name]
        assert stamp["size"] == (run.path / name).stat().st_size and len(stamp["sha256"]) == 64
    assert record["per_sample"]["size"] == run.per_sample_path.stat().st_size
    assert record["request"] == {"distance": "cosine", "reference": None, "options": {"n_boot": 0}}
    assert run.load_per_sample() is not None


@pytest.mark.parametrize(("name", "change", "named", "recomputable"), CHANGES, ids=lambda v: v)
def test_changed_inputs_make_metrics_stale(tmp_path, name, change, named, recomputable):
    path = _evaluated(tmp_path / "r")
    change(path)
    run = load_run(path, check_arrays=False)
    status, reason = run.metrics_status()
    assert status == "stale" and all(f in reason for f in named), reason
    assert run.load_metrics() is None
    if name != "foreign-per-sample":  # per-sample scores of other inputs are refused too
        assert run.load_per_sample() is None
    with pytest.raises(FerembedError, match="stale"):
        collect_metrics([path])
    if recomputable:
        metrics = evaluate_run(path, n_boot=0)
        again = load_run(path)
        assert again.metrics_status()[0] == "fresh" and again.load_metrics() == json.loads(
            json.dumps(metrics)
        )
        assert again.load_per_sample() is not None


@pytest.mark.parametrize(("name", "change", "named", "recomputable"), CHANGES, ids=lambda v: v)
def test_export_of_stale_metrics_fails_in_one_line_and_writes_nothing(
    tmp_path, capsys, name, change, named, recomputable
):
    path = _evaluated(tmp_path / "r")
    change(path)
    out = tmp_path / "m.csv"
    before = sorted(p.name for p in path.iterdir())
    assert cli.main(["export", str(path), "--format", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and "stale" in err and str(path) in err
    assert not out.exists() and sorted(p.name for p in path.iterdir()) == before
    # With --evaluate the metrics are recomputed, or the broken input is named in one line.
    code = cli.main(["export", str(path), "--format", "csv", "--out", str(out), "--evaluate"])
    err = capsys.readouterr().err.strip()
    if recomputable:
        assert code == 0 and out.is_file()
        assert load_run(path).metrics_status()[0] == "fresh"
    else:
        assert code == 2 and not out.exists()
        assert "\n" not in err and "Traceback" not in err
        assert EMBEDDINGS_FILE in err or "row 7" in err, err


def test_truncated_and_nan_embeddings_are_named_by_evaluate(tmp_path):
    _truncate(_evaluated(tmp_path / "a"))
    with pytest.raises(FerembedError, match=EMBEDDINGS_FILE):
        evaluate_run(tmp_path / "a")
    _nan(_evaluated(tmp_path / "b"))
    with pytest.raises(ValueError, match="7"):
        evaluate_run(tmp_path / "b", n_boot=0)
    assert load_run(tmp_path / "b").load_metrics() is None


def test_copies_and_touches_keep_metrics_fresh(tmp_path):
    path = _evaluated(tmp_path / "r")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy, copy_function=shutil.copyfile)  # new mtimes, same bytes
    assert load_run(copy).metrics_status() == ("fresh", "")
    os.utime(path / EMBEDDINGS_FILE, (1, 1))
    assert load_run(path).metrics_status() == ("fresh", "")


def test_metrics_of_an_earlier_version_are_read_as_before(tmp_path):
    path = _evaluated(tmp_path / "r")
    metrics = json.loads((path / "metrics.json").read_text())
    del metrics["computed_from"]
    (path / "metrics.json").write_text(json.dumps(metrics))
    run = load_run(path)
    assert run.metrics_status()[0] == "unverified"
    assert run.load_metrics() == metrics and run.load_per_sample() is not None
    assert collect_metrics([path])[1]["run"].tolist() == ["r"]


def test_a_changed_reference_makes_metrics_stale(tmp_path):
    ref = _evaluated(tmp_path / "ref", seed=1)
    path = _evaluated(tmp_path / "r")
    evaluate_run(path, reference=ref, n_boot=0)
    assert load_run(path).metrics_status()[0] == "fresh"
    _other_embeddings(ref)
    status, reason = load_run(path).metrics_status()
    assert status == "stale" and str(ref.resolve() / EMBEDDINGS_FILE) in reason


_KILL_BEFORE_METRICS = """
import os, signal, sys
_real = os.replace
def _killing(src, dst, *a, **k):
    if str(dst).endswith("metrics.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real(src, dst, *a, **k)
os.replace = _killing
from ferembed.runs import evaluate_run
evaluate_run(sys.argv[1], n_boot=0, include=["retrieval"])
"""


def test_kill_between_per_sample_and_metrics_reads_as_stale_and_evaluate_repairs(tmp_path):
    path = _evaluated(tmp_path / "r")
    old_metrics = (path / "metrics.json").read_bytes()
    old_per_sample = (path / PER_SAMPLE_FILE).read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILL_BEFORE_METRICS), str(path)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # The mismatched pair of the issue: the new per-sample file beside the old metrics.json.
    assert (path / "metrics.json").read_bytes() == old_metrics
    assert (path / PER_SAMPLE_FILE).read_bytes() != old_per_sample
    run = load_run(path)
    status, reason = run.metrics_status()
    assert status == "stale" and PER_SAMPLE_FILE in reason
    assert run.load_metrics() is None
    metrics = evaluate_run(path, n_boot=0, include=["retrieval"])
    assert load_run(path).metrics_status()[0] == "fresh"
    assert metrics["computed_from"]["request"]["options"] == {"include": ["retrieval"], "n_boot": 0}
    assert [p.name for p in path.iterdir() if p.name.endswith(".tmp")] == []


def test_cached_results_are_not_served_for_replaced_embeddings(tmp_path):
    from ferembed.runs import cache_entry, load_cached, save_cached

    path = _evaluated(tmp_path / "r")
    entry = cache_entry(load_run(path), "projection", {"method": "pca"})
    assert save_cached(entry, {"x": 1})
    assert load_cached(cache_entry(load_run(path), "projection", {"method": "pca"})) == {"x": 1}
    _other_embeddings(path)
    assert load_cached(cache_entry(load_run(path), "projection", {"method": "pca"})) is None
