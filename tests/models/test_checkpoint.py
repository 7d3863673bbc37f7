"""Checkpoint round-trips, the sidecar, and the errors for bad files."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch
from torch import nn

from ferembed.errors import CheckpointError
from ferembed.models import (
    checkpoint_paths,
    count_flops,
    create_model,
    load_checkpoint,
    load_loss_state,
    load_sidecar,
    save_checkpoint,
)

SIDECAR_KEYS = {
    "format",
    "arch",
    "model_kwargs",
    "num_classes",
    "class_names",
    "embedding_dim",
    "input",
    "loss",
    "train",
    "data",
    "metrics",
    "command",
    "wall_time_s",
    "device",
    "epochs",
    "created",
    "ferembed_version",
    "num_params",
    "flops",
    "sha256",
}


pytestmark = pytest.mark.usefixtures("one_thread")


class _CentersLoss(nn.Module):
    """Stands in for a FERLoss: a buffer, a parameter, a name and a config."""

    name = "toy_center"

    def __init__(self, num_classes: int = 3, dim: int = 8) -> None:
        super().__init__()
        self.register_buffer("centers", torch.zeros(num_classes, dim))
        self.scale = nn.Parameter(torch.ones(()))

    def config(self) -> dict:
        return {"lam": 0.01}


def _trained_model(**kw):
    """A tiny vgg whose weights and BN statistics are no longer at their init."""
    torch.manual_seed(0)
    model = create_model("vgg", 3, embedding_dim=8, widths=(4, 4, 8, 8), **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.train()
        model(torch.randn(8, 1, 48, 48))  # moves the BN running stats
    return model.eval()


@pytest.fixture
def saved(tmp_path):
    model = _trained_model()
    loss = _CentersLoss()
    loss.centers.normal_()
    meta = {
        "class_names": ["happy", "sad", "neutral"],
        "train": {"lr": 0.1},
        "data": {"dataset": "tiny", "split": "train"},
        "metrics": {"val_acc": 0.5, "nan_metric": float("nan")},
        "command": "ferembed train",
        "wall_time_s": 1.5,
        "device": "cpu",
        "epochs": 2,
    }
    path = save_checkpoint(tmp_path / "ck" / "best", model, loss=loss, meta=meta)
    return model, loss, path


def test_round_trip_gives_identical_outputs(saved):
    model, _, path = saved
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        ref = model(x)
    for where in (path, path.with_suffix(".safetensors"), path.with_suffix("")):
        loaded, sidecar = load_checkpoint(where)
        assert not loaded.training
        with torch.no_grad():
            out = loaded(x)
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
        assert sidecar["arch"] == "vgg"


def test_sidecar_fields(saved):
    model, _, path = saved
    sidecar = json.loads(path.read_text())
    assert set(sidecar) == SIDECAR_KEYS
    assert sidecar["format"] == "ferembed.checkpoint/1"
    assert sidecar["model_kwargs"] == {"widths": [4, 4, 8, 8]}
    assert sidecar["num_classes"] == 3 and sidecar["embedding_dim"] == 8
    assert sidecar["class_names"] == ["happy", "sad", "neutral"]
    assert sidecar["input"] == {"size": 48, "channels": 1, "mean": 0.5, "std": 0.5, "mode": "full"}
    assert sidecar["loss"] == {"name": "toy_center", "params": {"lam": 0.01}}
    assert sidecar["metrics"] == {"val_acc": 0.5, "nan_metric": None}
    assert sidecar["epochs"] == 2 and sidecar["command"] == "ferembed train"
    assert sidecar["num_params"] == sum(p.numel() for p in model.parameters())
    assert sidecar["flops"] == count_flops(model)
    weights = path.with_suffix(".safetensors").read_bytes()
    assert sidecar["sha256"] == hashlib.sha256(weights).hexdigest()


def test_tensor_names_are_prefixed(saved):
    from safetensors.torch import load_file

    _, _, path = saved
    names = set(load_file(path.with_suffix(".safetensors")))
    assert {"loss.centers", "loss.scale", "model.head.weight"} <= names
    assert all(n.startswith(("model.", "loss.")) for n in names)


def test_loss_state_round_trip(saved):
    _, loss, path = saved
    fresh = _CentersLoss()
    load_loss_state(fresh, path)
    assert torch.equal(fresh.centers, loss.centers)


def test_loading_never_unpickles(saved, monkeypatch):
    _, _, path = saved

    def boom(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(torch, "load", boom)
    load_checkpoint(path)


def test_tampered_weights_are_rejected(saved):
    _, _, path = saved
    weights = path.with_suffix(".safetensors")
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"best\.safetensors: sha256"):
        load_checkpoint(path)


def test_missing_weights(saved):
    _, _, path = saved
    path.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"best\.safetensors: checkpoint weights not found"):
        load_checkpoint(path)


def test_missing_sidecar(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.json: checkpoint sidecar not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: "{not json", "unreadable checkpoint sidecar"),
        (lambda s: json.dumps({**s, "format": "other/1"}), "not a ferembed checkpoint"),
        (lambda s: json.dumps({k: v for k, v in s.items() if k != "arch"}), "lacks"),
        (lambda s: json.dumps({**s, "arch": "vgg99"}), "cannot rebuild the model"),
        (
            lambda s: json.dumps({**s, "model_kwargs": {"widths": [4, 4, 8, 16]}}),
            "do not fit the architecture",
        ),
        (lambda s: json.dumps({**s, "num_classes": 5}), "do not fit"),
    ],
)
def test_bad_sidecars(saved, edit, match):
    _, _, path = saved
    sidecar = json.loads(path.read_text())
    path.write_text(edit(sidecar))
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert "best" in str(info.value) and "\n" not in str(info.value)


def test_unknown_meta_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown meta key"):
        save_checkpoint(tmp_path / "x", _trained_model(), meta={"colour": "red"})


def test_partial_mode_is_restored(tmp_path):
    model = _trained_model().set_input_mode("partial")
    path = save_checkpoint(tmp_path / "p", model, meta={})
    loaded, sidecar = load_checkpoint(path)
    assert sidecar["input"]["mode"] == "partial" and loaded.input_mode == "partial"
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


def test_fusion_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model(
        "fusion", 3, embedding_dim=8, full_arch="vgg", stream_kwargs={"widths": [4, 4, 4, 4]}
    ).eval()
    path = save_checkpoint(tmp_path / "f", model)
    loaded, sidecar = load_checkpoint(path)
    assert sidecar["input"]["mode"] == "fused" and sidecar["arch"] == "fusion"
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], model(x)[0])


def test_checkpoint_paths_accepts_stem_and_suffixes(tmp_path):
    want = (tmp_path / "run.v1.safetensors", tmp_path / "run.v1.json")
    assert checkpoint_paths(tmp_path / "run.v1") == want
    assert checkpoint_paths(tmp_path / "run.v1.json") == want
    assert checkpoint_paths(tmp_path / "run.v1.safetensors") == want


def test_load_sidecar_reads_metadata_only(saved):
    _, _, path = saved
    path.with_suffix(".safetensors").unlink()
    assert load_sidecar(path)["arch"] == "vgg"
