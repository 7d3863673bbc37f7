"""``ferembed embed --model``: a user's network as a python: factory (+ .safetensors or .pt
weights), TorchScript and ONNX gives the embeddings of a direct forward pass, with thumbnails, and
the runs evaluate and export."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from byom_net import CLASSES, MEAN, STD, direct_forward, make_imagefolder, trained

from ferembed.cli import main
from ferembed.runs import load_run

HELPER = Path(__file__).with_name("byom_net.py")
PREPROCESS = [
    "--input-size", "48", "--channels", "3",
    "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same trained TinyNet as state dicts, TorchScript and ONNX, and an image folder."""
    from safetensors.torch import save_file

    tmp = tmp_path_factory.mktemp("byom")
    net = trained()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, tmp / "net.safetensors")
    torch.save(state, tmp / "net.pt")
    x = torch.randn(2, 3, 48, 48)
    torch.jit.trace(net, x).save(str(tmp / "net.ts"))
    torch.onnx.export(
        net, (x,), str(tmp / "net.onnx"), dynamo=False, input_names=["image"],
        output_names=["embedding", "logits"],
        dynamic_axes={"image": {0: "b"}, "embedding": {0: "b"}, "logits": {0: "b"}},
    )  # fmt: skip
    root = make_imagefolder(tmp / "faces")
    emb, logits = direct_forward(net, root)
    return {"dir": tmp, "root": root, "emb": emb, "logits": logits}


def embed(files, out, spec, *extra) -> int:
    argv = ["embed", "--model", spec, "--dataset", "imagefolder", "--root", str(files["root"])]
    argv += ["--split", "test", "--out", str(out), "--device", "cpu", "--quiet", *PREPROCESS]
    return main(argv + list(extra))


PY = f"python:{HELPER}:create"
CASES = {
    "python-file-safetensors": (PY, "net.safetensors", ["--head-layer", "head"]),
    "python-file-pt": (PY, "net.pt", ["--head-layer", "head"]),
    "python-module-hook": ("python:byom_net:create", "net.safetensors",
                           ["--embedding-layer", "embed", "--head-layer", "head"]),
    "torchscript": ("torchscript:{dir}/net.ts", None, ["--head-layer", "1"]),
    "onnx": ("onnx:{dir}/net.onnx", None, ["--head-layer", "logits"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_model_spec_matches_a_direct_forward_pass(files, tmp_path, case):
    spec, weights, extra = CASES[case]
    spec = spec.format(dir=files["dir"])
    if weights:
        extra = [*extra, "--weights", str(files["dir"] / weights)]
    assert embed(files, tmp_path / "run", spec, *extra) == 0
    run = load_run(tmp_path / "run")
    assert run.class_names == list(CLASSES) and run.n == 15
    assert np.abs(run.embeddings - files["emb"]).max() < 1e-4
    assert np.abs(run.logits - files["logits"]).max() < 1e-4
    assert (run.samples["pred"].to_numpy() == files["logits"].argmax(1)).all()
    assert run.thumbs.shape == (15, 48, 48) and run.thumbs.dtype == np.uint8
    model = run.manifest["model"]
    assert model["spec"] == spec and model["preprocess"] == {
        "size": [48, 48], "channels": 3, "mean": list(MEAN), "std": list(STD),
    }  # fmt: skip
    assert model["device"] == ("CPUExecutionProvider" if case == "onnx" else "cpu")
    if weights:
        digest = hashlib.sha256((files["dir"] / weights).read_bytes()).hexdigest()
        assert model["weights_sha256"] == digest
        # the head layer is an nn.Linear: its weights travel with the run (NC3 works)
        np.testing.assert_array_equal(run.head_weight, trained().head.weight.detach().numpy())
    else:
        assert run.head_weight is None


def test_user_model_run_evaluates_and_exports(files, tmp_path):
    from ferembed.export import export
    from ferembed.runs import evaluate_run

    weights = str(files["dir"] / "net.safetensors")
    assert embed(files, tmp_path / "run", PY, "--weights", weights, "--head-layer", "head") == 0
    metrics = evaluate_run(tmp_path / "run")
    acc = (files["logits"].argmax(1) == np.repeat(np.arange(3), 5)).mean()
    assert metrics["head_accuracy"] == pytest.approx(acc)
    assert metrics["nc3"] is not None  # the head weights came along
    out = export([tmp_path / "run"], format="csv", out=tmp_path / "all.csv")
    assert "run" in out.read_text().splitlines()[0]


def test_non_square_input_and_grayscale(tmp_path):
    """--input-size HxW resizes the faces; the thumbnails stay 48x48."""
    root = make_imagefolder(tmp_path / "faces", per_class=2)
    helper = tmp_path / "gray.py"
    helper.write_text(
        "import torch\n"
        "def create():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(40 * 32, 4))\n"
    )
    argv = ["embed", "--model", f"python:{helper}:create", "--dataset", "imagefolder"]
    argv += ["--root", str(root), "--split", "test", "--out", str(tmp_path / "run")]
    assert main(argv + ["--input-size", "40x32", "--quiet", "--device", "cpu"]) == 0
    run = load_run(tmp_path / "run")
    assert run.dim == 4 and run.logits is None and run.thumbs.shape == (6, 48, 48)
    assert run.manifest["model"]["preprocess"]["size"] == [40, 32]


def test_dict_output_gives_embedding_and_logits(tmp_path):
    root = make_imagefolder(tmp_path / "faces", per_class=2)
    helper = tmp_path / "dict_net.py"
    helper.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.emb = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 48, 5))\n"
        "        self.cls = torch.nn.Linear(5, 3)\n"
        "    def forward(self, x):\n"
        "        e = self.emb(x)\n"
        "        return {'logits': self.cls(e), 'embedding': e}\n"
        "def create():\n"
        "    return Net()\n"
    )
    argv = ["embed", "--model", f"python:{helper}:create", "--dataset", "imagefolder"]
    argv += ["--root", str(root), "--split", "test", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv + ["--device", "cpu"]) == 0
    run = load_run(tmp_path / "run")
    assert run.dim == 5 and run.logits.shape == (6, 3) and run.head_weight is None
    np.testing.assert_array_equal(run.samples["pred"], run.logits.argmax(1))


def test_user_model_run_shows_its_faces_in_the_dashboard(files, tmp_path, monkeypatch):
    """The Neighbours page of a --model run shows the query face and its 3 neighbours' faces."""
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "runs"
    weights = str(files["dir"] / "net.safetensors")
    assert embed(files, root / "mine", PY, "--weights", weights, "--head-layer", "head") == 0
    run = load_run(root / "mine")
    monkeypatch.setenv("FEREMBED_RUNS", str(root))
    at = AppTest.from_file(str(HELPER.parents[2] / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.session_state["nb_mode"] = "id"
    at.session_state["nb_k"] = 3
    at.switch_page("views/neighbours.py").run()
    query = run.samples["sample_id"].iloc[0]
    at.text_input(key="nb_id").input(query).run()
    assert not at.exception, [e.message for e in at.exception]
    images = [uri for element in at.main.get("image") for uri in element.value]
    assert len(images) == 1 + 3  # the query and its 3 nearest faces
    assert all(isinstance(u, str) and u.endswith((".jpg", ".png")) for u in images)
