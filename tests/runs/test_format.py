import json

import numpy as np
import pytest

from ferembed.errors import RunFormatError
from ferembed.runs import SAMPLE_COLUMNS, find_runs, load_run, make_samples, write_run

CLASSES = ["angry", "happy", "sad"]


def _write(path, n=12, d=5, **kw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.arange(n) % len(CLASSES)
    samples = make_samples(
        y, CLASSES, sample_ids=[f"s{i}" for i in range(n)], subjects=["a"] * n, splits="test"
    )
    write_run(path, embeddings=x, samples=samples, class_names=CLASSES, **kw)
    return x, y


def test_round_trip_preserves_arrays_and_table(tmp_path):
    logits = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    thumbs = np.arange(12 * 48 * 48, dtype=np.int64).reshape(12, 48, 48).astype(np.uint8)
    x, y = _write(
        tmp_path / "r",
        logits=logits,
        thumbs=thumbs,
        head_weight=np.ones((3, 5)),
        folds={"num_folds": 2, "folds": [["a"], ["b"]]},
    )
    run = load_run(tmp_path / "r")
    assert (run.n, run.dim, run.class_names) == (12, 5, CLASSES)
    np.testing.assert_array_equal(run.embeddings, x)
    assert isinstance(run.embeddings, np.memmap)  # memory-mapped, not copied
    np.testing.assert_array_equal(run.labels, y)
    np.testing.assert_array_equal(run.logits, logits)
    np.testing.assert_array_equal(run.thumbs, thumbs)
    np.testing.assert_array_equal(run.head_bias, np.zeros(3, np.float32))
    assert run.folds["num_folds"] == 2
    assert list(run.samples.columns) == list(SAMPLE_COLUMNS)
    assert run.samples["label_name"].tolist()[:3] == CLASSES
    assert run.samples["pred"].tolist() == [-1] * 12  # no preds given
    m = json.loads((tmp_path / "r" / "run.json").read_text())
    assert m["schema"] == "ferembed.run/1" and m["has_logits"] and m["has_head"]


def test_existing_run_is_not_overwritten_without_flag(tmp_path):
    _write(tmp_path / "r")
    with pytest.raises(RunFormatError, match="already exists"):
        _write(tmp_path / "r")
    _write(tmp_path / "r", n=6, overwrite=True)
    assert load_run(tmp_path / "r").n == 6
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary leftovers


def test_failed_write_leaves_no_directory(tmp_path):
    with pytest.raises(RunFormatError):  # logits of the wrong class count
        _write(tmp_path / "r", head_weight=np.ones((2, 5)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: (p / "run.json").unlink(), "no run.json"),
        (lambda p: (p / "run.json").write_text("{"), "invalid JSON"),
        (lambda p: (p / "run.json").write_text('{"schema": "other/9"}'), "schema"),
        (lambda p: (p / "embeddings.npy").unlink(), "embeddings.npy: missing"),
        (lambda p: (p / "embeddings.npy").write_bytes(b"garbage"), "not a readable"),
        (lambda p: np.save(p / "embeddings.npy", np.zeros((3, 5), np.float32)), "expected"),
        (lambda p: (p / "samples.parquet").write_bytes(b"nope"), "samples.parquet"),
    ],
)
def test_malformed_runs_raise_one_clear_error(tmp_path, corrupt, message):
    _write(tmp_path / "r")
    corrupt(tmp_path / "r")
    with pytest.raises(RunFormatError, match=message):
        load_run(tmp_path / "r")


def test_find_runs_skips_hidden_and_nested(tmp_path):
    _write(tmp_path / "b")
    _write(tmp_path / "group" / "a")
    (tmp_path / ".a.tmp").mkdir()
    (tmp_path / ".a.tmp" / "run.json").write_text("{}")
    assert find_runs(tmp_path) == [tmp_path / "b", tmp_path / "group" / "a"]
