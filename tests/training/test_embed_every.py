"""``embed_every`` / ``ferembed train --embed-every``: the validation embeddings as a run series."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_trainer import tiny_config

from ferembed.cli import main
from ferembed.runs import evaluate_run, load_run
from ferembed.runs.log import load_series
from ferembed.training import ConfigError, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_series_holds_the_chosen_epochs_as_complete_runs(tmp_path):
    res = train(tiny_config(tmp_path, epochs=3, embed_every=2), progress=False)
    series = load_series(res.out / "series")
    assert [s["step"] for s in series["steps"]] == [2, 3]  # every 2nd epoch, and the last
    log = {row["epoch"]: row for row in json.loads((res.out / "log.json").read_text())}
    ids = None
    for step in (2, 3):
        run = load_run(res.out / "series" / f"step-{step:06d}")
        assert run.n == 24 and run.thumbs.shape == (24, 48, 48)
        assert run.class_names == ["happy", "sad", "surprise"]
        ids = list(run.samples["sample_id"]) if ids is None else ids
        assert list(run.samples["sample_id"]) == ids  # the steps pair by sample id
        # the head's predictions are the ones validation scored at that epoch
        s = run.samples
        acc = float((s["pred"] == s["label"]).mean())
        assert acc == pytest.approx(log[step]["val_acc"], abs=1e-12)
        assert run.manifest["extra"]["meta"]["epoch"] == step
    metrics = evaluate_run(res.out / "series" / "step-000003")
    assert metrics["head_accuracy"] == pytest.approx(log[3]["val_acc"], abs=1e-12)


def test_no_series_by_default(tmp_path):
    res = train(tiny_config(tmp_path, epochs=1), progress=False)
    assert not (res.out / "series").exists()


def test_embed_every_needs_a_validation_split(tmp_path):
    with pytest.raises(ConfigError, match="embed_every"):
        train(tiny_config(tmp_path, epochs=1, embed_every=1, val_split=None), progress=False)


def test_resume_keeps_one_run_per_step(tmp_path):
    cfg = tiny_config(tmp_path, epochs=2, embed_every=1)
    train(cfg.__class__(**{**cfg.to_dict(), "epochs": 1}), progress=False)
    res = train(cfg, progress=False, resume=True)
    assert [s["step"] for s in load_series(res.out / "series")["steps"]] == [1, 2]


def test_cli_writes_a_synthfer_series(tmp_path, capsys):
    out = tmp_path / "center"
    argv = ["train", "--dataset", "synthfer", "--method", "center", "--arch", "vgg"]
    argv += ["--epochs", "2", "--embed-every", "1", "--out", str(out), "--quiet"]
    argv += ["--set", 'model_kwargs={"widths": [4, 8, 8, 8]}', "--embedding-dim", "8"]
    argv += ["--dataset-arg", "n=48", "--dataset-arg", "image_size=16"]
    assert main(argv) == 0, capsys.readouterr().err
    steps = load_series(out / "series")["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    run = load_run(out / "series" / "step-000002")
    assert run.n == 48 and run.thumbs is not None and len(run.class_names) == 7
    assert np.isfinite(np.asarray(run.embeddings)).all()


def test_cli_rejects_a_negative_embed_every(capsys):
    assert main(["train", "--embed-every", "-1"]) == 2
    assert "--embed-every" in capsys.readouterr().err
