"""Outputs never clobber inputs (issue #14): every command's output path is checked by
``ferembed.runs._outputs.check_output`` before anything is read, computed or written.

The table :data:`CASES` drives each bad output through ``ferembed.cli.main``: the command must
exit 2 with one line naming the culprit, and leave every file of the test world as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferembed.cli import main
from ferembed.errors import ConfigError, FerembedError
from ferembed.export import export
from ferembed.runs._outputs import check_output, enclosing_run
from ferembed.training.loop import check_fresh

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "synthfer"
CLASSES = ("angry", "happy", "sad")


def _import_run(world: Path, name: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    np.save(world / "in" / f"{name}.npy", rng.normal(size=(24, 8)).astype(np.float32))
    argv = ["import", "--embeddings", str(world / "in" / f"{name}.npy")]
    argv += ["--labels", str(world / "in" / "l.csv"), "--out", str(world / "runs" / name)]
    assert main(argv) == 0
    return world / "runs" / name


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Two evaluated runs, their inputs, a tiny image dataset, a checkpoint folder, a training
    folder with checkpoints but no state, and a few existing files and folders."""
    w = tmp_path_factory.mktemp("outputs")
    (w / "in").mkdir()
    pd.DataFrame({"sample_id": [f"s{i}" for i in range(24)], "label": list(CLASSES) * 8}).to_csv(
        w / "in" / "l.csv", index=False
    )
    (w / "runs").mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        _import_run(w, name, seed)
        assert main(["evaluate", str(w / "runs" / name), "--include", "retrieval"]) == 0
    # CK+ names (subject S00k) in class folders: an imagefolder and a CK+ root at once.
    names = {c: [f"S{k + 1:03d}_00{j + 1}_00000001.png" for k in range(4)]
             for j, c in enumerate(CLASSES)}  # fmt: skip
    paths = [f"{c}/{names[c][i % 4]}" for i, c in enumerate(CLASSES * 8)]  # l.csv's row order
    pd.DataFrame({"label": list(CLASSES) * 8, "path": paths}).to_csv(
        w / "in" / "lp.csv", index=False
    )
    rng = np.random.default_rng(2)
    for c in CLASSES:
        (w / "data" / c).mkdir(parents=True)
        for name in names[c]:
            pixels = rng.integers(0, 256, size=(48, 48), dtype=np.uint8)
            Image.fromarray(pixels).save(w / "data" / c / name)
    (w / "ck").mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(SHIPPED / f"softmax{suffix}", w / "ck" / f"softmax{suffix}")
    (w / "model").mkdir()
    (w / "model" / "m.onnx").write_bytes(b"not really onnx")
    (w / "trained").mkdir()
    (w / "trained" / "best.safetensors").write_bytes(b"89% weights")
    (w / "trained" / "best.json").write_text("{}")
    (w / "old.csv").write_text("keep me\n")
    (w / "old.json").write_text('{"keep": true}\n')
    (w / "config.json").write_text('{"epochs": 1}\n')
    (w / "adir").mkdir()
    (w / "afile").write_text("a file\n")
    (w / "link").symlink_to(w / "runs" / "a")
    return w


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root``: a file's digest, a folder or a link's target."""
    snap = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_symlink():
            snap[key] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            snap[key] = "dir"
        else:
            snap[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("ferembed: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


EXPORT = ["export", "{w}/runs/a", "--format", "csv"]
COMPARE = ["compare", "{w}/runs/a", "{w}/runs/b"]
LEAKAGE = ["leakage", "{w}/runs/a", "{w}/runs/b"]
IMPORT = ["import", "--embeddings", "{w}/in/a.npy", "--labels", "{w}/in/l.csv"]
IMAGES = ["import", "--embeddings", "{w}/in/a.npy", "--labels", "{w}/in/lp.csv", "--images",
          "{w}/data"]  # fmt: skip
EMBED = ["embed", "--checkpoint", "{w}/ck/softmax.safetensors", "--quiet", "--device", "cpu"]
FOLDER = [*EMBED, "--dataset", "imagefolder", "--root", "{w}/data", "--split", "all"]
ONNX = ["embed", "--model", "onnx:{w}/model/m.onnx", "--dataset", "synthfer", "--quiet"]
TRAIN = ["train", "--dataset", "synthfer", "--epochs", "1", "--quiet"]
TRAIN_DATA = ["train", "--dataset", "imagefolder", "--root", "{w}/data", "--split", "all"]
TRAIN_DATA += ["--val-split", "none", "--epochs", "1", "--quiet"]
ZOO = ["zoo", "--dataset", "synthfer", "--methods", "softmax", "--quiet"]
KFOLD = ["kfold", "--dataset", "ckplus", "--root", "{w}/data", "--num-folds", "2", "--folds", "0"]
KFOLD += ["--quiet"]
DEMO = ["demo", "--no-dashboard", "--checkpoints", "{w}/ck"]

#: (case, argv, fragments of the one-line error). Every case must exit 2 and change nothing.
CASES = [
    ("export into another run's run.json", ["export", "{w}/runs/b", "--format", "json",
     "--out", "{w}/runs/a/run.json"], ["--out", "inside the run", "runs/a"]),
    ("export a new file inside a run", [*EXPORT, "--out", "{w}/runs/a/table.csv"],
     ["inside the run"]),
    ("export over its own run directory", [*EXPORT, "--out", "{w}/runs/a"],
     ["the same path as RUN_DIR", "runs/a"]),
    ("export through a symlink into a run", [*EXPORT, "--out", "{w}/link/run.json"],
     ["inside the run"]),
    ("export over an existing file", [*EXPORT, "--out", "{w}/old.csv"],
     ["already exists", "--overwrite"]),
    ("export to an empty path", [*EXPORT, "--out", ""], ["--out: empty path"]),
    ("export onto a folder", [*EXPORT, "--out", "{w}/adir"], ["adir: Is a directory"]),
    ("export below a file", [*EXPORT, "--out", "{w}/afile/x.csv"], ["afile is a file"]),
    ("compare over a run's embeddings", [*COMPARE, "--out", "{w}/runs/b/embeddings.npy"],
     ["inside the run", "runs/b"]),
    ("compare over a run's metrics with --overwrite",
     [*COMPARE, "--out", "{w}/runs/a/metrics.json", "--overwrite"], ["inside the run"]),
    ("compare over an existing file", [*COMPARE, "--out", "{w}/old.json"], ["already exists"]),
    ("compare onto RUN_B", [*COMPARE, "--out", "{w}/runs/b"], ["the same path as RUN_B"]),
    ("leakage into a run", [*LEAKAGE, "--out", "{w}/runs/a/pairs.csv"], ["inside the run"]),
    ("leakage onto RUN_A", [*LEAKAGE, "--out", "{w}/runs/a", "--overwrite"],
     ["the same path as RUN_A"]),
    ("leakage over an existing file", [*LEAKAGE, "--out", "{w}/old.csv"], ["already exists"]),
    ("import --out the embeddings file", [*IMPORT, "--out", "{w}/in/a.npy", "--overwrite"],
     ["the same path as --embeddings"]),
    ("import --out the inputs' folder", [*IMPORT, "--out", "{w}/in", "--overwrite"],
     ["holds --embeddings", "an output must never replace an input"]),
    ("import --out inside --images", [*IMAGES, "--out", "{w}/data/run"], ["inside --images"]),
    ("import --out the --images folder", [*IMAGES, "--out", "{w}/data", "--overwrite"],
     ["the same path as --images"]),
    ("import --out inside a run", [*IMPORT, "--out", "{w}/runs/a/sub"], ["inside the run"]),
    ("import --out a folder of runs", [*IMPORT, "--out", "{w}/runs", "--overwrite"],
     ["not a run", "--overwrite replaces only a run"]),
    ("import --out a file", [*IMPORT, "--out", "{w}/afile", "--overwrite"],
     ["is a file, not a run directory"]),
    ("import --out an existing run", [*IMPORT, "--out", "{w}/runs/b"], ["already exists"]),
    ("embed --out the dataset root", [*FOLDER, "--out", "{w}/data", "--overwrite"],
     ["the same path as --root"]),
    ("embed --out inside the dataset root", [*FOLDER, "--out", "{w}/data/run"],
     ["inside --root"]),
    ("embed --out holding the dataset root", [*FOLDER, "--out", "{w}", "--overwrite"],
     ["holds --checkpoint"]),
    ("embed --out the checkpoint's folder", [*FOLDER, "--out", "{w}/ck", "--overwrite"],
     ["holds --checkpoint", "softmax"]),
    ("embed --out inside a run", [*FOLDER, "--out", "{w}/runs/a/x"], ["inside the run"]),
    ("embed --model: --out the model's folder", [*ONNX, "--out", "{w}/model", "--overwrite"],
     ["holds --model"]),
    ("train --out a run directory", [*TRAIN, "--out", "{w}/runs/a"], ["is a run directory"]),
    ("train --out inside a run", [*TRAIN, "--out", "{w}/runs/a/train"], ["inside the run"]),
    ("train --out with best.* but no train_state", [*TRAIN, "--out", "{w}/trained"],
     ["already holds checkpoints", "best.safetensors", "train_state.pt"]),
    ("train --method pseudo_label --out with best.* but no record",
     [*TRAIN, "--method", "pseudo_label", "--out", "{w}/trained"],
     ["already holds checkpoints", "pseudo_labels.json"]),
    ("train --out the --config file",
     [*TRAIN, "--config", "{w}/config.json", "--out", "{w}/config.json"],
     ["the same path as --config"]),
    ("train --out a file", [*TRAIN, "--out", "{w}/afile"], ["is a file, not a folder"]),
    ("train --out the dataset root", [*TRAIN_DATA, "--out", "{w}/data"],
     ["the same path as --root"]),
    ("train --out inside the dataset root", [*TRAIN_DATA, "--out", "{w}/data/work"],
     ["inside --root"]),
    ("zoo --out onto shipped checkpoints", [*ZOO, "--out", "{w}/ck"],
     ["already holds softmax.safetensors", "--overwrite"]),
    ("zoo --out a run directory", [*ZOO, "--out", "{w}/runs/a"], ["is a run directory"]),
    ("zoo --cards-only --out a run", [*ZOO, "--cards-only", "--out", "{w}/runs/a"],
     ["is a run directory"]),
    ("kfold --out the dataset root", [*KFOLD, "--out", "{w}/data"], ["the same path as --root"]),
    ("kfold --out inside a run", [*KFOLD, "--out", "{w}/runs/a/study"], ["inside the run"]),
    ("kfold --out a file", [*KFOLD, "--out", "{w}/afile"], ["is a file, not a folder"]),
    ("demo --runs inside --checkpoints", [*DEMO, "--runs", "{w}/ck/runs"],
     ["--runs", "inside --checkpoints"]),
    ("demo --runs a run directory", [*DEMO, "--runs", "{w}/runs/a"], ["is a run directory"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_output_is_refused_and_nothing_changes(world, capsys, argv, fragments):
    before = _snapshot(world)
    err = _one_line_error(capsys, [a.format(w=world) for a in argv])
    for fragment in fragments:
        assert fragment in err, err
    assert _snapshot(world) == before


# ------------------------------------------------------------------- what is still allowed
def test_overwrite_replaces_an_export_and_a_comparison(world, tmp_path, capsys):
    out = tmp_path / "m.csv"
    out.write_text("old\n")
    run_a, run_b = str(world / "runs" / "a"), str(world / "runs" / "b")
    assert main(["export", run_a, "--format", "csv", "--out", str(out), "--overwrite"]) == 0
    assert "map_at_r" in out.read_text()
    cmp_path = tmp_path / "cmp.json"
    cmp_path.write_text("{}")
    assert main(["compare", run_a, run_b, "--out", str(cmp_path), "--overwrite"]) == 0
    assert json.loads(cmp_path.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_report_beside_the_runs_of_a_folder(world, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(world / "runs", runs)
    out = export([runs], format="markdown", out=runs / "report.md")
    assert out.is_file() and sorted(p.name for p in runs.iterdir()) == ["a", "b", "report.md"]


def test_overwrite_replaces_the_run_it_targets(world, tmp_path, capsys):
    shutil.copytree(world / "runs" / "a", tmp_path / "a")
    argv = ["import", "--embeddings", str(world / "in" / "b.npy")]
    argv += ["--labels", str(world / "in" / "l.csv"), "--out", str(tmp_path / "a"), "--overwrite"]
    assert main(argv) == 0
    assert np.array_equal(np.load(tmp_path / "a" / "embeddings.npy"), np.load(world / "in/b.npy"))


# ----------------------------------------------------------------------------- the library
def test_check_output_follows_symlinks_to_an_input(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    with pytest.raises(FerembedError, match="the same path as --root"):
        check_output(tmp_path / "alias", inputs=[("--root", tmp_path / "data")], kind="run")
    with pytest.raises(FerembedError, match="inside --root"):
        check_output(tmp_path / "alias" / "x.csv", inputs=[("--root", tmp_path / "data")])
    assert check_output(tmp_path / "new.csv", inputs=[("--root", tmp_path / "data")]).name


def test_check_output_names_its_kinds():
    with pytest.raises(ValueError, match="kind must be one of"):
        check_output("x", kind="folder")


def test_enclosing_run(world):
    assert enclosing_run(world / "runs" / "a" / "x" / "y.json") == world / "runs" / "a"
    assert enclosing_run(world / "runs" / "a") is None
    assert enclosing_run(world / "link" / "z") == world / "runs" / "a"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_before_any_work(world, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        err = _one_line_error(capsys, [*EXPORT[:1], str(world / "runs" / "a"), "--format", "csv",
                                       "--out", str(locked / "m.csv")])  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert "cannot write" in err and str(locked) in err


def test_export_refuses_an_existing_file_without_overwrite(world, tmp_path):
    out = tmp_path / "m.json"
    out.write_text("keep")
    with pytest.raises(FerembedError, match="already exists"):
        export([world / "runs" / "a"], format="json", out=out)
    assert out.read_text() == "keep"
    export([world / "runs" / "a"], format="json", out=out, overwrite=True)
    assert json.loads(out.read_text())["schema"] == "ferembed.export/1"


def test_check_fresh_refuses_checkpoints_without_state(tmp_path):
    (tmp_path / "last.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds checkpoints \(last.json\)"):
        check_fresh(tmp_path, resume=True, overwrite=False)
    check_fresh(tmp_path, resume=False, overwrite=True)
    (tmp_path / "train_state.pt").write_bytes(b"")
    check_fresh(tmp_path, resume=True, overwrite=False)  # a state to resume from
    with pytest.raises(FerembedError, match="inside --root"):
        check_fresh(tmp_path / "w", resume=False, overwrite=False, inputs=[("--root", tmp_path)])


def test_embed_checkpoint_refuses_its_dataset_root(world):
    from ferembed.runs.embed import embed_checkpoint

    before = _snapshot(world)
    with pytest.raises(FerembedError, match="the same path as --root"):
        embed_checkpoint(
            world / "ck" / "softmax.json",
            dataset="imagefolder",
            root=world / "data",
            split="all",
            out=world / "data",
            overwrite=True,
        )
    assert _snapshot(world) == before


def test_zoo_replaces_a_checkpoint_only_once_its_card_is_complete(tmp_path, monkeypatch):
    import ferembed.runs
    import ferembed.training
    from ferembed.zoo import train_zoo

    out, new = tmp_path / "ck", tmp_path / "new"
    out.mkdir()
    new.mkdir()
    for suffix in (".safetensors", ".json"):
        (out / f"softmax{suffix}").write_bytes(b"the 89% checkpoint")
        shutil.copyfile(SHIPPED / f"softmax{suffix}", new / f"best{suffix}")

    class Trained:
        best_checkpoint = new / "best.json"

    def broken(*args, **kwargs):
        raise FerembedError("the test split could not be embedded")

    monkeypatch.setattr(ferembed.training, "train", lambda config, **kwargs: Trained())
    monkeypatch.setattr(ferembed.runs, "embed_and_evaluate", broken)
    kw = dict(dataset="synthfer", out=out, methods=["softmax"], work=tmp_path / "w", progress=False)
    with pytest.raises(FerembedError, match="already holds softmax.safetensors"):
        train_zoo(**kw)
    with pytest.raises(FerembedError, match="could not be embedded"):
        train_zoo(**kw, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        "softmax.safetensors": b"the 89% checkpoint",
        "softmax.json": b"the 89% checkpoint",
    }  # the old checkpoint is intact and no staging folder is left

    metrics = {"n": 12, "classification": {"head": {"accuracy": 0.14}}}
    monkeypatch.setattr(ferembed.runs, "embed_and_evaluate", lambda *a, **k: metrics)
    (row,) = train_zoo(**kw, overwrite=True)
    assert row["test_accuracy"] == 0.14
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "softmax.card.json", "softmax.config.json", "softmax.json",
                     "softmax.md", "softmax.safetensors"]  # fmt: skip
    shipped = (SHIPPED / "softmax.safetensors").read_bytes()
    assert (out / "softmax.safetensors").read_bytes() == shipped


@pytest.mark.slow
def test_zoo_overwrite_ships_the_new_checkpoint_and_its_card(tmp_path, capsys):
    out = tmp_path / "ck"
    out.mkdir()
    for suffix in (".safetensors", ".json"):
        (out / f"softmax{suffix}").write_bytes(b"the 89% checkpoint")
    argv = [*ZOO, "--epochs", "1", "--max-train-samples", "64", "--device", "cpu"]
    argv += ["--out", str(out), "--work", str(tmp_path / "work")]
    assert main(argv) == 2 and "already holds" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    trained = tmp_path / "work" / "softmax" / "best.safetensors"
    assert (out / "softmax.safetensors").read_bytes() == trained.read_bytes()
    card = json.loads((out / "softmax.card.json").read_text())
    assert card["method"] == "softmax" and (out / "softmax.md").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    run = json.loads((tmp_path / "work" / "run-test" / "softmax" / "run.json").read_text())
    assert Path(run["model"]["checkpoint"]).is_file()  # the test run names a file that exists
