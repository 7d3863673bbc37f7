"""The training loop end to end, on a tiny in-memory dataset and a tiny model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_data import banded, tiny_train_config

from ferembed.data._base import ArrayDataset
from ferembed.data._registry import register_dataset
from ferembed.losses import FERLoss
from ferembed.models import load_checkpoint, normalize_images
from ferembed.training import ConfigError, TrainConfig, train
from ferembed.training import setup as setup_mod

CLASSES = ["happy", "sad", "surprise"]


@register_dataset("tiny3", splits=("train", "val"), layout="in memory (tests)", needs_root=False)
def _tiny3(root, split, *, n: int | None = None, seed: int = 0, **_):
    return banded(split, CLASSES, n=n or (48 if split == "train" else 24), seed=seed, name="tiny3")


class ProbeOnlyLoss(FERLoss):
    """A loss that does not train the head (pulls embeddings to one-hot targets)."""

    name = "probe_only"
    uses_head = False

    def compute(self, embeddings, logits, labels, *, indices=None):
        target = F.one_hot(labels, self.embedding_dim).to(embeddings.dtype)
        return {"pull": (embeddings - target).pow(2).mean()}


def tiny_config(tmp_path, name="run", **changes) -> TrainConfig:
    return tiny_train_config(tmp_path / name, **{"dataset": "tiny3", "epochs": 2, **changes})


pytestmark = pytest.mark.usefixtures("one_thread")


def _weights(path):
    model, _ = load_checkpoint(path)
    return model.state_dict()


def test_end_to_end_writes_logs_and_loadable_checkpoints(tmp_path):
    cfg = tiny_config(tmp_path, loss="center", loss_params={"lam": 0.01})
    res = train(cfg, progress=False, command="ferembed train --test")
    out = tmp_path / "run"
    assert res.out == out and res.epochs_run == 2 and not res.stopped_early
    assert {p.name for p in out.iterdir()} >= {
        "log.csv",
        "log.json",
        "best.json",
        "best.safetensors",
        "last.json",
        "last.safetensors",
        "train_state.pt",
        "config.json",
    }
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for key in ("lr", "train_loss", "train_ce", "train_center", "train_acc", "val_acc"):
        assert key in rows[0]
    for key in ("val_mean_class_acc", "epoch_time_s", "images_per_s"):
        assert key in rows[0]
    log = json.loads((out / "log.json").read_text())
    assert log == json.loads(json.dumps(res.history))
    assert len(log[0]["val_per_class_acc"]) == 3
    np.testing.assert_allclose(
        log[1]["train_loss"], log[1]["train_ce"] + log[1]["train_center"], rtol=1e-5
    )

    model, sidecar = load_checkpoint(out / "last")
    assert sidecar["class_names"] == CLASSES and sidecar["epochs"] == 2
    assert sidecar["loss"]["name"] == "center"
    assert sidecar["train"] == cfg.to_dict()
    assert sidecar["command"] == "ferembed train --test"
    assert sidecar["data"]["counts"] == {"happy": 16, "sad": 16, "surprise": 16}
    assert sidecar["input"]["size"] == 16 and sidecar["device"] == "cpu"
    assert sidecar["metrics"]["val_acc"] == log[1]["val_acc"]
    best = json.loads((out / "best.json").read_text())
    assert best["epochs"] == res.best_epoch
    # The checkpoint reproduces the logged validation accuracy.
    val = _tiny3(None, "val")
    with torch.no_grad():
        _, logits = model(normalize_images(torch.from_numpy(val.load_all())))
    acc = float((logits.argmax(1).numpy() == val.labels).mean())
    assert acc == pytest.approx(log[1]["val_acc"])


def test_two_runs_with_a_seed_give_identical_weights(tmp_path):
    a = train(tiny_config(tmp_path, "a"), progress=False)
    b = train(tiny_config(tmp_path, "b"), progress=False)
    c = train(tiny_config(tmp_path, "c", seed=1), progress=False)
    wa, wb, wc = (_weights(r.last_checkpoint) for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


class _Interrupt(Exception):
    pass


def test_resume_gives_the_same_final_weights(tmp_path):
    changes = dict(epochs=3, loss="center", sampler="balanced", samples_per_class=4)
    full = train(tiny_config(tmp_path, "full", **changes), progress=False)

    cfg = tiny_config(tmp_path, "cut", **changes)

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(cfg, progress=False, callback=stop_after_first)
    assert len(json.loads((tmp_path / "cut" / "log.json").read_text())) == 1
    resumed = train(cfg, progress=False, resume=True)

    wf, wr = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    from safetensors.torch import load_file

    lf = load_file(tmp_path / "full" / "last.safetensors")
    lr = load_file(tmp_path / "cut" / "last.safetensors")
    assert torch.equal(lf["loss.centers"], lr["loss.centers"])
    assert resumed.epochs_run == 3 and len(resumed.history) == 3
    strip = ("epoch_time_s", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in full.history] == [
        {k: v for k, v in r.items() if k not in strip} for r in resumed.history
    ]


def test_resume_refuses_a_different_config(tmp_path):
    train(tiny_config(tmp_path, epochs=1), progress=False)
    with pytest.raises(ConfigError, match=r"config differs in \['lr'\]"):
        train(tiny_config(tmp_path, epochs=2, lr=0.1), progress=False, resume=True)


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    train(tiny_config(tmp_path, epochs=1), progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(tiny_config(tmp_path, epochs=1), progress=False)
    res = train(tiny_config(tmp_path, epochs=1), progress=False, overwrite=True)
    assert res.epochs_run == 1


def test_linear_probe_when_the_loss_does_not_use_the_head(tmp_path, monkeypatch):
    monkeypatch.setattr(
        setup_mod, "build_loss", lambda name, params, c, d, counts: ProbeOnlyLoss(c, d)
    )
    res = train(tiny_config(tmp_path, epochs=2), progress=False)
    row = res.history[-1]
    assert "train_probe_ce" in row and "train_pull" in row
    np.testing.assert_allclose(row["train_loss"], row["train_pull"], rtol=1e-5)
    model, _ = load_checkpoint(res.last_checkpoint)
    assert not torch.equal(model.head.bias, torch.zeros(3))  # the probe trained the head


def test_early_stopping(tmp_path):
    # A vanishing learning rate: validation never improves after epoch 1.
    res = train(
        tiny_config(
            tmp_path, epochs=6, lr=1e-12, early_stopping_patience=2, augment={"enabled": False}
        ),
        progress=False,
    )
    assert res.stopped_early and res.epochs_run == 3 and res.best_epoch == 1


def test_no_validation_split_best_is_last(tmp_path):
    res = train(tiny_config(tmp_path, val_split=None), progress=False)
    assert res.best_score is None and res.best_epoch == 2
    assert "val_acc" not in res.history[0]
    best, last = (json.loads(p.read_text()) for p in (res.best_checkpoint, res.last_checkpoint))
    assert best["sha256"] == last["sha256"]


def test_dataloader_path_matches_preloaded(tmp_path):
    a = train(tiny_config(tmp_path, "a", epochs=1), progress=False)
    b = train(tiny_config(tmp_path, "b", epochs=1, preload=False), progress=False)
    wa, wb = _weights(a.last_checkpoint), _weights(b.last_checkpoint)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_max_train_samples_and_adamw_step_schedule(tmp_path):
    res = train(
        tiny_config(tmp_path, max_train_samples=20, optimizer="adamw", lr=1e-3, schedule="step"),
        progress=False,
    )
    _, sidecar = load_checkpoint(res.last_checkpoint)
    assert sidecar["data"]["n_train"] == 20


def test_fused_input_mode_trains_the_fusion_model(tmp_path, monkeypatch):
    # PartialImage's default regions are for 48x48 faces: upsample the tiny set.
    def tiny48(root, split, **kw):
        ds = _tiny3(root, split, **kw)
        images = np.kron(ds.images, np.ones((3, 3), np.uint8))
        out = ArrayDataset(images, ds.samples, CLASSES, split=split, image_size=48)
        out.name = "tiny48"
        return out

    register_dataset("tiny48", splits=("train", "val"), layout="tests", needs_root=False)(tiny48)
    cfg = tiny_config(tmp_path, dataset="tiny48", input_mode="fused", epochs=1)
    cfg.model_kwargs = {"widths": [4, 4, 4, 4]}
    res = train(cfg, progress=False)
    model, sidecar = load_checkpoint(res.last_checkpoint)
    assert sidecar["arch"] == "fusion" and sidecar["input"]["mode"] == "fused"
    assert sidecar["model_kwargs"]["full_arch"] == "vgg"


def test_partial_mode_needs_48x48_faces(tmp_path):
    with pytest.raises(ConfigError, match="needs 48x48 faces"):
        train(tiny_config(tmp_path, input_mode="partial"), progress=False)


def test_synthfer_is_the_default_dataset(tmp_path):
    assert TrainConfig().dataset == "synthfer"
    cfg = tiny_config(
        tmp_path, dataset="synthfer", dataset_kwargs={"n": 32, "image_size": 16}, epochs=1
    )
    res = train(cfg, progress=False)
    _, sidecar = load_checkpoint(res.last_checkpoint)
    assert len(sidecar["class_names"]) == 7


def test_unknown_dataset_and_arch_are_user_errors(tmp_path):
    from ferembed.errors import FerembedError

    with pytest.raises(FerembedError, match="unknown dataset"):
        train(tiny_config(tmp_path, dataset="nope"), progress=False)
    with pytest.raises(FerembedError, match="unknown model"):
        train(tiny_config(tmp_path, arch="nope"), progress=False)
    with pytest.raises(FerembedError, match="unknown loss"):
        train(tiny_config(tmp_path, loss="nope"), progress=False)


def test_subset_views_compose_and_relabel():
    from ferembed.data.subset import SubsetDataset

    base = _tiny3(None, "train")
    outer = SubsetDataset(base, [10, 11, 12, 13, 14])
    inner = SubsetDataset(outer, [4, 0], labels=[2, 2])
    assert inner.labels.tolist() == [2, 2]
    assert np.array_equal(inner.load_all(), base.images[[14, 10]])
    assert np.array_equal(inner.load_image(1), base.images[10])
    assert [s.sample_id for s in inner.samples] == ["train_14", "train_10"]
    assert inner.class_counts().tolist() == [0, 0, 2]
