"""Bad ``--model`` input: one line naming the culprit, exit 2, and no run directory left."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from byom_net import make_imagefolder, trained

from ferembed.cli import main

HELPER = Path(__file__).with_name("byom_net.py")
PY = f"python:{HELPER}:create"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    net = trained()
    torch.save(net, tmp / "pickled.pt")  # the whole module: a pickle that runs code to load
    torch.save(net.state_dict(), tmp / "state.pt")
    torch.onnx.export(
        net, (torch.zeros(1, 3, 48, 48),), str(tmp / "net.onnx"), dynamo=False,
        input_names=["image"], output_names=["embedding", "logits"],
    )  # fmt: skip
    return tmp, make_imagefolder(tmp / "faces", per_class=2)


def _fails(files, tmp_path, capsys, spec, *extra) -> str:
    _, root = files
    argv = ["embed", "--model", spec, "--dataset", "imagefolder", "--root", str(root)]
    argv += [
        "--split",
        "test",
        "--out",
        str(tmp_path / "out" / "run"),
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(argv + list(extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferembed: error: "), err
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())  # no run, no temp dir
    return err[0]


def test_unknown_spec_form(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, "keras:model.h5")
    assert "'keras:model.h5'" in msg and "unknown form" in msg and "onnx:PATH" in msg


@pytest.mark.parametrize("kind", ["python:{}:create", "torchscript:{}", "onnx:{}"])
def test_missing_file(files, tmp_path, capsys, kind):
    missing = tmp_path / "nope.py"
    assert f"{missing}: file not found" in _fails(files, tmp_path, capsys, kind.format(missing))


def test_missing_weights_file(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, PY, "--weights", str(tmp_path / "w.safetensors"))
    assert "w.safetensors: file not found" in msg


def test_missing_function_lists_the_callables(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, f"python:{HELPER}:build")
    assert "no function 'build'" in msg and "create" in msg and "trained" in msg


def test_missing_module(files, tmp_path, capsys):
    assert "cannot import 'no_such_pkg.models'" in _fails(
        files, tmp_path, capsys, "python:no_such_pkg.models:create"
    )


def test_factory_returning_something_else(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, f"python:{HELPER}:not_a_module")
    assert "not_a_module: returned dict, not a torch.nn.Module" in msg


def test_channel_mismatch(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, PY, "--channels", "1")
    assert "rejected input (2, 1, 48, 48)" in msg and "--channels 1" in msg


def test_onnx_shape_mismatch_names_the_flag(files, tmp_path, capsys):
    spec = f"onnx:{files[0] / 'net.onnx'}"
    msg = _fails(files, tmp_path, capsys, spec, "--channels", "3", "--input-size", "64")
    assert "expects input [1, 3, 48, 48]" in msg and "--input-size" in msg


def test_unknown_layer_lists_the_layers(files, tmp_path, capsys):
    msg = _fails(files, tmp_path, capsys, PY, "--channels", "3", "--embedding-layer", "neck")
    assert "no layer 'neck'" in msg and "features.0" in msg and "embed, head" in msg


def test_unknown_onnx_output_lists_the_outputs(files, tmp_path, capsys):
    spec = f"onnx:{files[0] / 'net.onnx'}"
    msg = _fails(files, tmp_path, capsys, spec, "--channels", "3", "--head-layer", "head")
    assert "no output 'head'" in msg and "embedding, logits" in msg


def test_pickled_module_as_weights_is_refused(files, tmp_path, capsys):
    weights = files[0] / "pickled.pt"
    msg = _fails(files, tmp_path, capsys, PY, "--channels", "3", "--weights", str(weights))
    assert f"{weights}: refused" in msg and "weights_only" in msg


def test_weights_of_another_network(files, tmp_path, capsys):
    other = tmp_path / "other.py"
    other.write_text("import torch\ndef create():\n    return torch.nn.Linear(3, 4)\n")
    weights = files[0] / "state.pt"
    msg = _fails(files, tmp_path, capsys, f"python:{other}:create", "--weights", str(weights))
    assert f"{weights}: does not fit the model" in msg


def test_checkpoint_and_model_are_exclusive(files, tmp_path, capsys):
    argv = ["embed", "--model", PY, "--checkpoint", "x", "--dataset", "synthfer", "--out", "o"]
    assert main(argv) == 2  # a usage error: one line, exit 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_bad_mean(files, tmp_path, capsys):
    assert "--mean expects a number" in _fails(files, tmp_path, capsys, PY, "--mean", "a,b")


def test_model_options_are_refused_with_a_checkpoint(tmp_path, capsys):
    ckpt = Path(__file__).resolve().parents[2] / "checkpoints" / "synthfer" / "softmax.safetensors"
    argv = ["embed", "--checkpoint", str(ckpt), "--dataset", "synthfer", "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "r"), "--weights", "w.pt", "--channels", "3"]) == 2
    assert "--weights, --channels: only with --model" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
