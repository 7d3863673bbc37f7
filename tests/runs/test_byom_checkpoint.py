"""A shipped ferembed checkpoint exported to TorchScript and ONNX and embedded with ``--model``
gives the run that ``--checkpoint`` gives (same split, same samples, < 1e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ferembed.cli import main
from ferembed.runs import load_run

CKPT = Path(__file__).resolve().parents[2] / "checkpoints" / "synthfer" / "softmax.safetensors"
SPLIT = ["--dataset", "synthfer", "--split", "test", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The --checkpoint run, and the checkpoint exported to TorchScript and ONNX."""
    from ferembed.models import load_checkpoint

    tmp = tmp_path_factory.mktemp("shipped")
    assert main(["embed", "--checkpoint", str(CKPT), "--out", str(tmp / "ckpt"), *SPLIT]) == 0
    model, card = load_checkpoint(CKPT)
    model.eval()
    x = torch.randn(4, 1, 48, 48)
    torch.jit.trace(model, x).save(str(tmp / "softmax.ts"))
    torch.onnx.export(
        model, (x,), str(tmp / "softmax.onnx"), dynamo=False, input_names=["image"],
        output_names=["embedding", "logits"],
        dynamic_axes={"image": {0: "b"}, "embedding": {0: "b"}, "logits": {0: "b"}},
    )  # fmt: skip
    return tmp, load_run(tmp / "ckpt"), card


@pytest.mark.parametrize("spec, head", [("torchscript:{}/softmax.ts", "1"),
                                        ("onnx:{}/softmax.onnx", "logits")])  # fmt: skip
def test_exported_checkpoint_matches_checkpoint_run(reference, tmp_path, spec, head):
    tmp, ref, card = reference
    inp = card["input"]
    argv = [
        "embed",
        "--model",
        spec.format(tmp),
        "--head-layer",
        head,
        "--out",
        str(tmp_path / "r"),
    ]
    argv += ["--mean", str(inp["mean"]), "--std", str(inp["std"]), "--input-size", str(inp["size"])]
    assert main(argv + ["--classes", ",".join(card["class_names"]), *SPLIT]) == 0
    run = load_run(tmp_path / "r")
    assert run.n == ref.n == 1400 and run.class_names == ref.class_names
    assert (run.samples["sample_id"] == ref.samples["sample_id"]).all()
    assert np.abs(run.embeddings - ref.embeddings).max() < 1e-4
    assert np.abs(run.logits - ref.logits).max() < 1e-4
    np.testing.assert_array_equal(run.thumbs, ref.thumbs)
