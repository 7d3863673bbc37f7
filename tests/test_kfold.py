"""Subject-independent k-fold studies: ``ferembed.kfold.train_kfold`` and ``ferembed kfold``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferembed.cli import main
from ferembed.data import create_dataset
from ferembed.kfold import KFOLD_FILE, load_kfold, train_kfold
from ferembed.runs import load_run
from ferembed.training import ConfigError, TrainConfig

CK_FOLDERS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
N_SUBJECTS = 12
NUM_FOLDS = 3
FOLDS = [0, 2]
METRIC_KEYS = (
    "accuracy",
    "mean_class_accuracy",
    "knn_accuracy",
    "map_at_r",
    "compactness",
    "class_separation",
    "fisher_ratio",
    "silhouette",
)


def write_ckplus(root: Path, *, n_subjects: int = N_SUBJECTS, frames=(7, 8)) -> Path:
    """A fake CK+ tree ROOT/<class>/S<subject>_<seq>_<frame>.png: 2 sequences per subject.

    Subject s has sequences of classes s % 7 and (s + 3) % 7, so every class has several
    subjects; the images are noise plus a class-dependent bright band (learnable, not trivial).
    """
    rng = np.random.default_rng(0)
    for s in range(1, n_subjects + 1):
        for seq, c in enumerate((s % 7, (s + 3) % 7), start=1):
            for frame in frames:
                img = rng.integers(0, 100, size=(48, 48)).astype(np.uint8)
                img[6 * c : 6 * c + 5, 4:44] += 120
                path = root / CK_FOLDERS[c] / f"S{s:03d}_{seq:03d}_{frame:08d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img, "L").save(path)
    return root


def kfold_config(root: Path, **changes) -> TrainConfig:
    base = dict(
        dataset="ckplus",
        root=str(root),
        val_split=None,
        num_folds=NUM_FOLDS,
        arch="vgg",
        model_kwargs={"widths": [4, 4, 8, 8]},
        embedding_dim=8,
        epochs=1,
        batch_size=8,
        eval_batch_size=64,
        lr=0.05,
        device="cpu",
        out="unused",
    )
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def ck_root(tmp_path_factory) -> Path:
    return write_ckplus(tmp_path_factory.mktemp("ckplus"))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def study(ck_root, tmp_path_factory):
    """Folds 0 and 2 of a 3-fold study, trained once for the module: ``(out, record)``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("study")
        record = train_kfold(kfold_config(ck_root), out=out, folds=FOLDS, progress=False)
    finally:
        torch.set_num_threads(n)
    return out, record


def _ck(root, split, fold):
    return create_dataset("ckplus", str(root), split, fold=fold, num_folds=NUM_FOLDS)


# ------------------------------------------------------------------------------------------------
# Config errors (no training)


def test_validation_split_is_refused(ck_root, tmp_path):
    with pytest.raises(ConfigError, match="val_split"):
        train_kfold(kfold_config(ck_root, val_split="test"), out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


def test_repeated_fold_is_rejected(ck_root, tmp_path):
    with pytest.raises(ConfigError, match="repeat"):
        train_kfold(kfold_config(ck_root), out=tmp_path / "s", folds=[0, 0], progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("folds", [[3], [-1], [0, 5]])
def test_fold_out_of_range(ck_root, tmp_path, folds):
    with pytest.raises(ConfigError, match="out of range"):
        train_kfold(kfold_config(ck_root), out=tmp_path / "s", folds=folds, progress=False)
    assert not (tmp_path / "s").exists()


def test_default_num_folds_is_ten(ck_root, tmp_path):
    with pytest.raises(ConfigError, match=r"\[0, 9\]"):
        train_kfold(kfold_config(ck_root, num_folds=None), out=tmp_path, folds=[10])


# ------------------------------------------------------------------------------------------------
# A study


def test_fixture_folds_are_subject_disjoint(ck_root):
    for fold in range(NUM_FOLDS):
        train_ds, test_ds = _ck(ck_root, "train", fold), _ck(ck_root, "test", fold)
        assert len(train_ds) and len(test_ds)
        assert not {s.subject for s in train_ds.samples} & {s.subject for s in test_ds.samples}


def test_study_writes_one_row_per_fold(ck_root, study):
    out, record = study
    on_disk = json.loads((out / KFOLD_FILE).read_text())
    assert on_disk == load_kfold(out) == load_kfold(out / KFOLD_FILE)
    assert on_disk["schema"] == "ferembed.kfold/1"
    assert on_disk["dataset"] == "ckplus" and on_disk["num_folds"] == NUM_FOLDS
    assert on_disk["config"]["val_split"] is None
    assert on_disk["summary"] == json.loads(json.dumps(record["summary"]))
    rows = on_disk["folds"]
    assert [r["fold"] for r in rows] == FOLDS
    for row in rows:
        k = row["fold"]
        test_ds, train_ds = _ck(ck_root, "test", k), _ck(ck_root, "train", k)
        assert row["n_test"] == len(test_ds)
        assert row["n_train"] == len(train_ds)
        assert row["epochs"] == 1
        metrics = json.loads((out / f"fold-{k}" / "run-test" / "metrics.json").read_text())
        for key in METRIC_KEYS:
            assert row[key] == metrics.get(key), (k, key)
        assert 0.0 <= row["accuracy"] <= 1.0


def test_fold_trained_without_its_held_out_subjects(ck_root, study):
    out, _ = study
    for k in FOLDS:
        sidecar = json.loads((out / f"fold-{k}" / "best.json").read_text())
        data = sidecar["data"]
        assert data["dataset"] == "ckplus" and data["split"] == "train"
        assert data["fold"] == k and data["num_folds"] == NUM_FOLDS
        assert data["val_split"] is None
        train_ds, test_ds = _ck(ck_root, "train", k), _ck(ck_root, "test", k)
        held_out = {s.subject for s in test_ds.samples}
        assert held_out and not held_out & {s.subject for s in train_ds.samples}
        assert data["n_train"] == len(train_ds)
        # The training counts are those of the subjects outside the held-out fold.
        counts = np.bincount(train_ds.labels, minlength=len(train_ds.class_names))
        assert data["counts"] == dict(zip(train_ds.class_names, counts.tolist(), strict=True))
        # The test run holds exactly the held-out fold's faces.
        run = load_run(out / f"fold-{k}" / "run-test")
        assert sorted(run.samples["sample_id"]) == sorted(s.sample_id for s in test_ds.samples)
        assert set(run.samples["subject"]) == held_out


def test_summary_mean_std_and_pooled_accuracy(study):
    out, record = study
    rows, summary = record["folds"], record["summary"]
    assert summary["n_folds"] == len(FOLDS)
    for key in ("accuracy", "mean_class_accuracy"):
        v = np.array([r[key] for r in rows], dtype=np.float64)
        assert summary[key]["mean"] == pytest.approx(float(v.mean()), abs=1e-12)
        assert summary[key]["std"] == pytest.approx(float(v.std(ddof=1)), abs=1e-12)

    pooled = None
    for k in FOLDS:
        metrics = json.loads((out / f"fold-{k}" / "run-test" / "metrics.json").read_text())
        counts = np.asarray(metrics["confusion"]["head"]["counts"], dtype=np.int64)
        assert counts.sum() == metrics["n"]
        pooled = counts if pooled is None else pooled + counts
    assert record["pooled_confusion"] == pooled.tolist()
    assert pooled.sum() == sum(r["n_test"] for r in rows)
    assert summary["pooled_accuracy"] == pytest.approx(np.trace(pooled) / pooled.sum(), abs=1e-12)
    support = pooled.sum(axis=1)
    recall = np.diag(pooled)[support > 0] / support[support > 0]
    assert summary["pooled_mean_class_accuracy"] == pytest.approx(recall.mean(), abs=1e-12)
    # Pooled accuracy is the n_test-weighted mean of the fold accuracies.
    weighted = sum(r["accuracy"] * r["n_test"] for r in rows) / sum(r["n_test"] for r in rows)
    assert summary["pooled_accuracy"] == pytest.approx(weighted, abs=1e-9)


def test_rerun_resumes_without_retraining(ck_root, study):
    out, record = study
    before = {}
    for k in FOLDS:
        fold_dir = out / f"fold-{k}"
        before[k] = {
            name: ((fold_dir / name).stat().st_mtime_ns, (fold_dir / name).read_bytes())
            for name in ("log.json", "best.safetensors", "train_state.pt")
        }
    again = train_kfold(kfold_config(ck_root), out=out, folds=FOLDS, progress=False)
    for k in FOLDS:
        fold_dir = out / f"fold-{k}"
        for name, (mtime, blob) in before[k].items():
            assert (fold_dir / name).read_bytes() == blob, (k, name)
            assert (fold_dir / name).stat().st_mtime_ns == mtime, (k, name)
    assert again["summary"] == record["summary"]
    assert again["pooled_confusion"] == record["pooled_confusion"]
    for a, b in zip(again["folds"], record["folds"], strict=True):
        assert {k: v for k, v in a.items() if k != "wall_time_s"} == {
            k: v for k, v in b.items() if k != "wall_time_s"
        }


# ------------------------------------------------------------------------------------------------
# The command line


def test_cli_kfold_one_fold(ck_root, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "kfold",
            "--dataset",
            "ckplus",
            "--root",
            str(ck_root),
            "--num-folds",
            str(NUM_FOLDS),
            "--folds",
            "1",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--set",
            "arch=vgg",
            "--set",
            'model_kwargs={"widths": [4, 4, 8, 8]}',
            "--set",
            "embedding_dim=8",
            "--set",
            "batch_size=8",
            "--set",
            "eval_batch_size=64",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert any("accuracy" in line for line in captured.out.splitlines())
    record = load_kfold(out)
    assert [r["fold"] for r in record["folds"]] == [1]
    assert record["config"]["val_split"] is None  # forced by the command
    assert record["folds"][0]["n_test"] == len(_ck(ck_root, "test", 1))
    assert record["summary"]["accuracy"]["std"] is None  # one fold: no spread
    assert f"{100 * record['summary']['accuracy']['mean']:.2f}%" in captured.out


def test_cli_kfold_bad_root(tmp_path, capsys):
    code = main(
        [
            "kfold",
            "--dataset",
            "ckplus",
            "--root",
            str(tmp_path / "missing"),
            "--num-folds",
            "3",
            "--folds",
            "0",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ferembed: error:"), err
    assert "missing" in lines[0]


def test_cli_kfold_fold_out_of_range(ck_root, tmp_path, capsys):
    code = main(
        ["kfold", "--dataset", "ckplus", "--root", str(ck_root), "--num-folds", "3"]
        + ["--folds", "3", "--out", str(tmp_path / "out"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ferembed: error:") and "out of range" in err
