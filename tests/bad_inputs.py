"""The bad inputs of tests/test_validation.py: one builder per case, each making its bad input
in a fresh folder and returning the ``ferembed`` command line that must refuse it.

Plain functions, so that the same table can be replayed against an older ferembed to record its
outcome.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

N, D = 14, 4
CLASSES = ["angry", "happy", "sad"]
NET = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(48 * 48, 4)
        self.head = nn.Linear(4, 7)

    def forward(self, x):
        e = self.embed(x.flatten(1))
        return e, self.head(e)


class NanNet(Net):
    def forward(self, x):
        e, logits = super().forward(x)
        return e * float("nan"), logits


class ComplexNet(Net):
    def forward(self, x):
        e, logits = super().forward(x)
        return e.to(torch.complex64), logits


def create():
    return Net()


def nan_net():
    return NanNet()


def complex_net():
    return ComplexNet()
"""


# ------------------------------------------------------------------------------------ builders
def _labels(tmp: Path, labels: list, **cols) -> Path:
    path = tmp / "labels.csv"
    pd.DataFrame({"label": labels, **cols}).to_csv(path, index=False)
    return path


def _good_labels(tmp: Path) -> Path:
    return _labels(tmp, [CLASSES[i % 3] for i in range(N)])


def _emb(tmp: Path, arr: np.ndarray, name: str = "emb.npy") -> Path:
    np.save(tmp / name, arr)
    return tmp / name


def _normal(n: int = N, d: int = D, dtype=np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


def _import(tmp: Path, emb: Path, labels: Path, *extra: str) -> list[str]:
    return ["import", "--embeddings", str(emb), "--labels", str(labels), "--out",
            str(tmp / "out" / "run"), *extra]  # fmt: skip


def imp_complex(tmp):
    return _import(tmp, _emb(tmp, _normal().astype(np.complex64) * 1j), _good_labels(tmp))


def imp_overflow(tmp):
    x = _normal(dtype=np.float64)
    x[3, 1] = 1e300  # finite in float64, Inf in float32
    return _import(tmp, _emb(tmp, x), _good_labels(tmp))


def imp_zero_width(tmp):
    return _import(tmp, _emb(tmp, np.zeros((N, 0), np.float32)), _good_labels(tmp))


def imp_zero_rows(tmp):
    return _import(tmp, _emb(tmp, np.zeros((0, D), np.float32)), _labels(tmp, []))


def imp_npz(tmp):
    np.savez(tmp / "emb.npy", x=_normal())  # savez appends .npz
    return _import(tmp, tmp / "emb.npy.npz", _good_labels(tmp))


def imp_bool(tmp):
    return _import(tmp, _emb(tmp, _normal() > 0), _good_labels(tmp))


def imp_labels_dir(tmp):
    (tmp / "labels").mkdir()
    return _import(tmp, _emb(tmp, _normal()), tmp / "labels")


def imp_embeddings_dir(tmp):
    (tmp / "emb").mkdir()
    return _import(tmp, tmp / "emb", _good_labels(tmp))


def imp_nan_label(tmp):
    labels = [CLASSES[i % 3] for i in range(N)]
    labels[5] = "NaN"
    return _import(tmp, _emb(tmp, _normal()), _labels(tmp, labels))


def imp_mixed_labels(tmp):
    labels = [str(i % 3) for i in range(N)]
    labels[4] = "happy"
    return _import(tmp, _emb(tmp, _normal()), _labels(tmp, labels))


def imp_empty_label(tmp):
    (tmp / "labels.csv").write_text("label\n" + "angry\n" * (N - 1) + '""\n')
    return _import(tmp, _emb(tmp, _normal()), tmp / "labels.csv")


def imp_huge_index(tmp):
    labels = ["0"] * N
    labels[2] = "9" * 30
    return _import(tmp, _emb(tmp, _normal()), _labels(tmp, labels))


def imp_duplicate_classes(tmp):
    labels = [str(i % 3) for i in range(N)]
    return _import(tmp, _emb(tmp, _normal()), _labels(tmp, labels), "--classes", "a,b,a")


def imp_empty_class_name(tmp):
    labels = [str(i % 3) for i in range(N)]
    return _import(tmp, _emb(tmp, _normal()), _labels(tmp, labels), "--classes", "a,,b")


def run_nan_head(tmp):
    from ferembed.runs.format import make_samples, write_run

    y = np.arange(N) % 3
    w = np.ones((3, D), np.float32)
    run = write_run(tmp / "run", embeddings=_normal(), samples=make_samples(y, CLASSES),
                    class_names=CLASSES, head_weight=w, source="import")  # fmt: skip
    # write_run refuses a NaN head; a run written by other tools may still hold one
    w[1, 2] = np.nan
    np.save(run / "head_weight.npy", w)
    return ["evaluate", str(run)]


def imp_complex_logits(tmp):
    logits = _emb(tmp, _normal(d=3).astype(np.complex128), "logits.npy")
    return _import(tmp, _emb(tmp, _normal()), _good_labels(tmp), "--logits", str(logits))


def imp_pickled(tmp):
    np.save(tmp / "emb.npy", np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    return _import(tmp, tmp / "emb.npy", _good_labels(tmp))


# --- embed --model: weights and outputs
def _net(tmp: Path) -> Path:
    (tmp / "net.py").write_text(NET)
    return tmp / "net.py"


def _embed(tmp: Path, spec: str, *extra: str) -> list[str]:
    return ["embed", "--model", spec, "--dataset", "synthfer", "--split", "test",
            "--dataset-arg", "n=14", "--out", str(tmp / "out" / "run"), "--quiet",
            "--device", "cpu", *extra]  # fmt: skip


def _weights(tmp: Path, change) -> list[str]:
    import torch
    from safetensors.torch import save_file

    net = _net(tmp)
    torch.manual_seed(0)
    state = {"embed.weight": torch.randn(4, 48 * 48), "embed.bias": torch.zeros(4),
             "head.weight": torch.randn(7, 4), "head.bias": torch.zeros(7)}  # fmt: skip
    change(state)
    save_file(state, str(tmp / "w.safetensors"))
    return _embed(tmp, f"python:{net}:create", "--weights", str(tmp / "w.safetensors"))


def emb_nan_weights(tmp):
    return _weights(tmp, lambda s: s["embed.weight"].__setitem__((0, 0), float("nan")))


def emb_int_weights(tmp):
    return _weights(tmp, lambda s: s.update({"head.weight": (s["head.weight"] * 10).long()}))


def emb_bool_weights(tmp):
    return _weights(tmp, lambda s: s.update({"embed.bias": s["embed.bias"] > 0}))


def emb_nan_output(tmp):
    return _embed(tmp, f"python:{_net(tmp)}:nan_net")


def emb_complex_output(tmp):
    return _embed(tmp, f"python:{_net(tmp)}:complex_net")


def emb_fold_synthfer(tmp):
    return _embed(tmp, f"python:{_net(tmp)}:create", "--fold", "1")


def _synthfer_arg(arg: str):
    def build(tmp):
        return _embed(tmp, f"python:{_net(tmp)}:create", "--dataset-arg", arg)

    return build


def emb_duplicate_classes(tmp):
    classes = "angry,disgust,fear,happy,sad,surprise,angry"
    return _embed(tmp, f"python:{_net(tmp)}:create", "--classes", classes)


def emb_synonym_classes(tmp):
    classes = "angry,disgust,fear,happy,sad,surprise,anger"
    return _embed(tmp, f"python:{_net(tmp)}:create", "--classes", classes)


# --- embed --checkpoint: the sidecar schema and the weights
def _checkpoint(tmp: Path, edit=None, tensors=None) -> list[str]:
    import torch
    from safetensors.torch import load_file, save_file

    from ferembed.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("vgg", 7, embedding_dim=8, widths=(4, 4, 8, 8)).eval()
    meta = {"class_names": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]}
    sidecar_path = save_checkpoint(tmp / "ck" / "best", model, meta=meta)
    weights = sidecar_path.with_suffix(".safetensors")
    sidecar = json.loads(sidecar_path.read_text())
    if tensors is not None:
        state = load_file(str(weights))
        tensors(state)
        save_file(state, str(weights), metadata={"format": sidecar["format"]})
        sidecar["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    if edit is not None:
        edit(sidecar)
    sidecar_path.write_text(json.dumps(sidecar))
    return ["embed", "--checkpoint", str(weights), "--dataset", "synthfer", "--split", "test",
            "--dataset-arg", "n=14", "--out", str(tmp / "out" / "run"), "--quiet",
            "--device", "cpu"]  # fmt: skip


def _edit(**changes):
    def edit(sidecar):
        for key, value in changes.items():
            section, _, field = key.partition("__")
            if field:
                sidecar[section][field] = value
            elif value is _DROP:
                del sidecar[section]
            else:
                sidecar[section] = value

    return edit


_DROP = object()


def ck_missing_input(tmp):
    return _checkpoint(tmp, _edit(input=_DROP))


def ck_num_classes_text(tmp):
    return _checkpoint(tmp, _edit(num_classes="7"))


def ck_negative_size(tmp):
    return _checkpoint(tmp, _edit(input__size=-3))


def ck_zero_std(tmp):
    return _checkpoint(tmp, _edit(input__std=0))


def ck_input_list(tmp):
    return _checkpoint(tmp, _edit(input=[48, 1]))


def ck_huge_size(tmp):
    return _checkpoint(tmp, _edit(input__size=100_000))


def ck_bad_model_kwargs(tmp):
    return _checkpoint(tmp, _edit(model_kwargs={"widths": "abc"}))


def emb_huge_input_size(tmp):
    return _embed(tmp, f"python:{_net(tmp)}:create", "--input-size", "100000")


def ck_bad_mode(tmp):
    return _checkpoint(tmp, _edit(input__mode="sideways"))


def ck_class_names_text(tmp):
    return _checkpoint(tmp, _edit(class_names="angry,happy"))


def ck_duplicate_class(tmp):
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "angry"]
    return _checkpoint(tmp, _edit(class_names=names))


def ck_too_few_classes(tmp):
    return _checkpoint(tmp, _edit(class_names=["angry", "happy"]))


def ck_bad_sha(tmp):
    return _checkpoint(tmp, _edit(sha256=12345))


def ck_loss_without_name(tmp):
    return _checkpoint(tmp, _edit(loss={"params": {}}))


def ck_nan_weights(tmp):
    return _checkpoint(tmp, tensors=lambda s: s["model.head.weight"].fill_(float("inf")))


def ck_int_weights(tmp):
    def to_int(state):
        state["model.head.weight"] = (state["model.head.weight"] * 100).long()

    return _checkpoint(tmp, tensors=to_int)


# --- runs: load_run, and evaluate --reference
def _run(tmp: Path, name: str = "run", seed: int = 0) -> Path:
    from ferembed.runs.format import make_samples, write_run

    y = np.arange(N) % 3
    return write_run(
        tmp / name,
        embeddings=_normal(seed=seed),
        samples=make_samples(y, CLASSES, preds=y),
        class_names=CLASSES,
        source="import",
    )


def _samples_edit(tmp: Path, column: str, row: int, value) -> list[str]:
    run = _run(tmp)
    df = pd.read_parquet(run / "samples.parquet")
    df[column] = df[column].astype("float64")
    df.loc[row, column] = value
    df.to_parquet(run / "samples.parquet", index=False)
    return ["evaluate", str(run)]


def _manifest_edit(tmp: Path, **changes) -> list[str]:
    run = _run(tmp)
    manifest = json.loads((run / "run.json").read_text())
    manifest.update(changes)
    (run / "run.json").write_text(json.dumps(manifest))
    return ["evaluate", str(run)]


def run_pred_42(tmp):
    return _samples_edit(tmp, "pred", 6, 42)


def run_pred_minus_2(tmp):
    return _samples_edit(tmp, "pred", 6, -2)


def run_nan_label(tmp):
    return _samples_edit(tmp, "label", 9, np.nan)


def run_negative_label(tmp):
    return _samples_edit(tmp, "label", 1, -1)


def run_duplicate_class(tmp):
    return _manifest_edit(tmp, class_names=["angry", "happy", "angry"])


def run_class_names_text(tmp):
    return _manifest_edit(tmp, class_names="angry,happy,sad")


def run_n_text(tmp):
    return _manifest_edit(tmp, n="14")


def ref_same_path(tmp):
    run = _run(tmp)
    return ["evaluate", str(run), "--reference", str(run)]


def ref_copy(tmp):
    run = _run(tmp)
    shutil.copytree(run, tmp / "copy")
    return ["evaluate", str(run), "--reference", str(tmp / "copy")]


def ref_symlink(tmp):
    run = _run(tmp)
    (tmp / "link").symlink_to(run, target_is_directory=True)
    return ["evaluate", str(run), "--reference", str(tmp / "link")]


def eval_zero_rows_cosine(tmp):
    from ferembed.runs.format import make_samples, write_run

    x = _normal()
    x[[2, 7]] = 0.0
    y = np.arange(N) % 3
    run = write_run(tmp / "run", embeddings=x, samples=make_samples(y, CLASSES),
                    class_names=CLASSES, source="import")  # fmt: skip
    return ["evaluate", str(run)]


#: (id, builder, fragments the one error line must contain)
