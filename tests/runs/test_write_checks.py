"""write_run (and so log_run, import, embed) refuses arrays that would be stored wrong."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.cli import main
from ferembed.errors import RunFormatError
from ferembed.runs import make_samples, write_run
from ferembed.runs.log import log_run

CLASSES = ["happy", "sad"]


def _write(tmp_path, **arrays):
    n = len(arrays.get("embeddings", np.zeros((4, 3))))
    samples = make_samples(np.arange(n) % 2, CLASSES)
    arrays.setdefault("embeddings", np.ones((n, 3), np.float32))
    return write_run(tmp_path / "run", samples=samples, class_names=CLASSES, **arrays)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"embeddings": np.ones((4, 3)) * (1 + 1j)}, "embeddings is complex"),
        ({"embeddings": np.full((4, 3), 1e300)}, "embeddings is not finite as float32"),
        ({"embeddings": np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, np.nan, 1.0]])}, "row 3"),
        ({"logits": np.full((4, 2), np.inf)}, "logits is not finite"),
        ({"head_weight": np.full((2, 3), np.nan), "head_bias": np.zeros(2)}, "head weight"),
    ],
    ids=["complex", "overflow", "nan-row", "inf-logits", "nan-head"],
)
def test_bad_arrays_are_refused_and_nothing_is_written(tmp_path, arrays, message):
    with pytest.raises(RunFormatError, match=message):
        _write(tmp_path, **arrays)
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left either


def test_log_run_refuses_complex_embeddings(tmp_path):
    with pytest.raises(RunFormatError, match="complex"):
        log_run(tmp_path / "s", np.ones((4, 3), np.complex64), [0, 1, 0, 1], step=1)
    assert not (tmp_path / "s" / "step-000001").exists()


def test_embed_refuses_an_image_size_dataset_arg(tmp_path, capsys):
    argv = ["embed", "--checkpoint", "checkpoints/synthfer/softmax.json", "--dataset", "synthfer"]
    argv += ["--dataset-arg", "image_size=8", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dataset-arg image_size" in err[0]
    assert not (tmp_path / "run").exists()
