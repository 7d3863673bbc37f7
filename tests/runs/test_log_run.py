"""``ferembed.log_run``: runs and series of runs written from a training loop's arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferembed
from ferembed.errors import DataError
from ferembed.runs import load_run
from ferembed.runs.log import find_series, images_to_thumbs, load_series

CLASSES = ["angry", "happy", "sad"]


def _epoch(n=60, d=8, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(3, d))[y] * 3 + rng.normal(scale=spread, size=(n, d))
    return x.astype(np.float32), y


def test_three_steps_make_a_series_of_complete_runs(tmp_path):
    from ferembed.runs import evaluate_run

    faces = np.random.default_rng(1).integers(0, 256, (60, 64, 64), dtype=np.uint8)
    for step in range(3):
        x, y = _epoch(seed=step, spread=1.0 / (step + 1))
        logits = torch.from_numpy(x[:, :3]).requires_grad_()  # a tensor still in the graph
        path = ferembed.log_run(
            tmp_path / "series", torch.from_numpy(x), torch.from_numpy(y), class_names=CLASSES,
            sample_ids=[f"val/{i}" for i in range(60)], logits=logits, images=faces,
            step=step, name="center loss", meta={"epoch": step, "loss": 1.0 / (step + 1)},
        )  # fmt: skip
        assert path == tmp_path / "series" / f"step-{step:06d}"
    series = json.loads((tmp_path / "series" / "series.json").read_text())
    assert series["schema"] == "ferembed.series/1" and series["name"] == "center loss"
    assert [s["step"] for s in series["steps"]] == [0, 1, 2]
    assert find_series(tmp_path) == [tmp_path / "series"]
    for s in load_series(tmp_path / "series")["steps"]:
        run = load_run(s["path"])
        assert run.n == 60 and run.dim == 8 and run.class_names == CLASSES
        assert run.thumbs.shape == (60, 48, 48) and run.thumbs.dtype == np.uint8
        assert run.manifest["source"] == "log" and run.manifest["extra"]["step"] == s["step"]
        assert run.manifest["extra"]["meta"]["epoch"] == s["step"]
        assert run.samples["sample_id"].iloc[5] == "val/5"
        metrics = evaluate_run(run.path, n_boot=0)
        assert 0 <= metrics["precision_at_1"] <= 1 and metrics["head_accuracy"] is not None


def test_logging_a_step_again_replaces_it(tmp_path):
    x, y = _epoch()
    ferembed.log_run(tmp_path / "s", x, y, step=4)
    ferembed.log_run(tmp_path / "s", x * 2, y, step=4)
    steps = load_series(tmp_path / "s")["steps"]
    assert [s["step"] for s in steps] == [4]
    np.testing.assert_allclose(load_run(steps[0]["path"]).embeddings, x * 2)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["series.json", "step-000004"]


def test_without_step_out_is_the_run(tmp_path):
    x, y = _epoch()
    names = np.array(CLASSES)[y]  # class names as labels
    run = load_run(ferembed.log_run(tmp_path / "run", x, names, name="final"))
    assert run.name == "final" and run.class_names == CLASSES and run.thumbs is None
    np.testing.assert_array_equal(run.labels, y)


@pytest.mark.parametrize(
    "layout",
    ["nhw", "nhwc1", "nhwc3", "nchw1", "nchw3", "float01", "normalised"],
)
def test_image_layouts_become_gray_thumbnails(layout):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (4, 32, 32)).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    images = {
        "nhw": gray,
        "nhwc1": gray[..., None],
        "nhwc3": rgb,
        "nchw1": gray[:, None],
        "nchw3": np.moveaxis(rgb, -1, 1),
        "float01": gray.astype(np.float32) / 255,
        "normalised": (gray.astype(np.float32) / 255 - 0.5) / 0.25,
    }[layout]
    thumbs = images_to_thumbs(images)
    assert thumbs.shape == (4, 48, 48) and thumbs.dtype == np.uint8
    # the same face whatever the layout (equal gray channels; min-max for normalised input)
    ref = images_to_thumbs(gray)
    tol = 2 if layout != "normalised" else 3
    assert np.abs(thumbs.astype(int) - ref.astype(int)).max() <= tol


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"embeddings": np.ones(5)}, "2-D"),
        ({"labels": np.arange(4)}, "4 labels for 6"),
        ({"labels": np.full(6, 0.5)}, "integers or class names"),
        ({"class_names": ["a"]}, "outside 0..0"),
        ({"logits": np.ones((6, 2))}, "expected (6, 3)"),
        ({"images": np.ones((6, 5, 5, 7))}, "no channel axis"),
        ({"images": np.ones((5, 8, 8), np.uint8)}, "5 images for 6"),
        ({"sample_ids": ["a"] * 6}, "6 unique ids"),
    ],
)
def test_bad_input(tmp_path, kwargs, message):
    args = {"embeddings": np.ones((6, 2)), "labels": np.arange(6) % 3, **kwargs}
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ferembed.log_run(tmp_path / "r", args.pop("embeddings"), args.pop("labels"), **args)
    assert not (tmp_path / "r").exists()


def test_import_ferembed_stays_light():
    import subprocess
    import sys

    code = "import sys, ferembed; print('pandas' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert callable(ferembed.log_run)
