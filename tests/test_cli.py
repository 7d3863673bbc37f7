"""The command line end to end: one-line errors on bad input, and the whole pipeline."""

import json

import numpy as np
import pytest
from PIL import Image

from ferembed.cli import main
from ferembed.data.vocab import FER2013_ORDER
from ferembed.runs import load_run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from ferembed.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("vgg_small", len(FER2013_ORDER), embedding_dim=16)
    stem = tmp_path_factory.mktemp("ckpt") / "tiny"
    return save_checkpoint(stem, model, meta={"class_names": list(FER2013_ORDER)})


def _faces(root, classes=("happy", "sadness", "anger"), per_class=4, size=48, mode="L"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / c / f"{c}_{i}.png"
            )
    return root


def _embed(checkpoint, root, out, *extra):
    return main(
        [
            "embed",
            "--checkpoint",
            str(checkpoint),
            "--dataset",
            "imagefolder",
            "--root",
            str(root),
            "--split",
            "all",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("ferembed: error:")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_embed_writes_a_run_with_mapped_labels(checkpoint, tmp_path):
    root = _faces(tmp_path / "faces")
    assert _embed(checkpoint, root, tmp_path / "run") == 0
    run = load_run(tmp_path / "run")
    assert run.n == 12 and run.dim == 16 and run.class_names == list(FER2013_ORDER)
    # folder names anger/sadness map onto the checkpoint's angry/sad
    assert sorted(set(run.samples["label_name"])) == ["angry", "happy", "sad"]
    assert run.thumbs.shape == (12, 48, 48) and run.logits.shape == (12, 7)
    np.testing.assert_array_equal(run.samples["pred"], run.logits.argmax(1))
    # the stored head reproduces the stored logits from the stored embeddings
    np.testing.assert_allclose(
        run.embeddings @ run.head_weight.T + run.head_bias, run.logits, rtol=1e-4, atol=1e-4
    )
    assert run.manifest["model"]["arch"] == "vgg_small"
    assert len(run.manifest["model"]["checkpoint_sha256"]) == 64


def test_embed_is_deterministic(checkpoint, tmp_path):
    root = _faces(tmp_path / "faces")
    _embed(checkpoint, root, tmp_path / "a")
    _embed(checkpoint, root, tmp_path / "b")
    np.testing.assert_array_equal(
        load_run(tmp_path / "a").embeddings, load_run(tmp_path / "b").embeddings
    )


def test_other_sizes_and_rgb_are_converted_with_a_note(checkpoint, tmp_path, capsys):
    root = _faces(tmp_path / "faces", size=64, mode="RGB")
    assert _embed(checkpoint, root, tmp_path / "run") == 0
    assert "resizing to 48x48" in capsys.readouterr().err
    assert load_run(tmp_path / "run").thumbs.shape == (12, 48, 48)


def test_truncated_image_is_named_and_no_run_is_left(checkpoint, tmp_path, capsys):
    root = _faces(tmp_path / "faces")
    bad = root / "happy" / "happy_2.png"
    bad.write_bytes(bad.read_bytes()[:60])
    assert _embed(checkpoint, root, tmp_path / "run") == 2
    _one_line_error(capsys, "happy_2.png")
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["faces"]  # no temporary directory either


def test_unknown_class_folder(checkpoint, tmp_path, capsys):
    root = _faces(tmp_path / "faces", classes=("happy", "grumpy"))
    assert _embed(checkpoint, root, tmp_path / "run") == 2
    _one_line_error(capsys, "grumpy")


def test_empty_split(checkpoint, tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    assert _embed(checkpoint, tmp_path / "faces", tmp_path / "run") == 2
    _one_line_error(capsys)


def test_manifest_row_with_missing_file(checkpoint, tmp_path, capsys):
    root = _faces(tmp_path / "faces", classes=("happy",), per_class=2)
    (root / "manifest.csv").write_text(
        "path,label\nhappy/happy_0.png,happy\nhappy/nope.png,happy\n"
    )
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(checkpoint),
            "--dataset",
            "csv",
            "--root",
            str(root),
            "--split",
            "all",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ]
    )
    assert rc == 2
    _one_line_error(capsys, "nope.png")


def test_missing_checkpoint(tmp_path, capsys):
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(tmp_path / "none.json"),
            "--dataset",
            "synthfer",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 2
    _one_line_error(capsys, "none")


def test_unknown_dataset_lists_known_ones(checkpoint, tmp_path, capsys):
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(checkpoint),
            "--dataset",
            "mnist",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 2
    _one_line_error(capsys, "mnist", "fer2013")


def test_evaluate_malformed_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "schema")


@pytest.mark.slow
def test_pipeline_train_embed_evaluate_compare_export(tmp_path, capsys):
    """SynthFER -> two trained checkpoints -> runs -> metrics -> comparison -> every export."""
    small = ["--dataset-arg", "n=140"]
    for seed in (0, 1):
        rc = main(
            [
                "train",
                "--dataset",
                "synthfer",
                "--arch",
                "vgg_small",
                "--loss",
                "center",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--seed",
                str(seed),
                *small,
                "--out",
                str(tmp_path / f"train{seed}"),
                "--quiet",
            ]
        )
        assert rc == 0
        rc = main(
            [
                "embed",
                "--checkpoint",
                str(tmp_path / f"train{seed}" / "best.json"),
                "--dataset",
                "synthfer",
                "--split",
                "test",
                *small,
                "--out",
                str(tmp_path / "runs" / f"s{seed}"),
                "--quiet",
            ]
        )
        assert rc == 0
    runs = [str(tmp_path / "runs" / "s0"), str(tmp_path / "runs" / "s1")]
    assert main(["evaluate", *runs]) == 0
    metrics = json.loads((tmp_path / "runs" / "s0" / "metrics.json").read_text())
    run = load_run(runs[0])
    # the head accuracy in metrics.json is the accuracy of the stored predictions
    expected = float((run.samples["pred"] == run.samples["label"]).mean())
    assert metrics["head_accuracy"] == pytest.approx(expected)
    assert run.n == 140
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp.json")]) == 0
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert cmp  # written and parseable
    for fmt, name in [
        ("csv", "m.csv"),
        ("json", "m.json"),
        ("markdown", "m.md"),
        ("parquet", "m.parquet"),
        ("html", "m.html"),
    ]:
        assert main(["export", *runs, "--format", fmt, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 0
    import pandas as pd

    long = pd.read_csv(tmp_path / "m.csv")
    assert {"run", "metric", "class", "value", "ci_low", "ci_high"} <= set(long.columns)
    assert set(long["run"]) == {"s0", "s1"}


def test_index_command_saves_an_index_and_reports_recall(tmp_path, capsys):
    from ferembed.index import load_index

    rng = np.random.default_rng(0)
    np.save(tmp_path / "e.npy", rng.normal(size=(600, 8)).astype(np.float32))
    (tmp_path / "l.csv").write_text("label\n" + "".join(f"{i % 3}\n" for i in range(600)))
    assert (
        main(
            [
                "import",
                "--embeddings",
                str(tmp_path / "e.npy"),
                "--labels",
                str(tmp_path / "l.csv"),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert main(["index", str(tmp_path / "run"), "--kind", "hnsw"]) == 0
    out = capsys.readouterr().out
    recall = float(out.rsplit("vs exact", 1)[1])
    assert 0.5 < recall <= 1.0
    index = load_index(tmp_path / "run", "hnsw-cosine")
    assert index.ntotal == 600


def test_evaluate_and_export_an_imported_run(tmp_path, capsys):
    """Bring-your-own embeddings: two well-separated classes give perfect retrieval."""
    rng = np.random.default_rng(3)
    centers = np.array([[5.0, 0, 0], [0, 5.0, 0]], dtype=np.float32)
    y = np.arange(200) % 2
    np.save(tmp_path / "e.npy", centers[y] + rng.normal(scale=0.3, size=(200, 3)))
    (tmp_path / "l.csv").write_text(
        "label,sample_id\n" + "".join(f"{'happy' if c else 'sad'},s{i}\n" for i, c in enumerate(y))
    )
    run_dir = tmp_path / "runs" / "mine"
    assert (
        main(
            [
                "import",
                "--embeddings",
                str(tmp_path / "e.npy"),
                "--labels",
                str(tmp_path / "l.csv"),
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    assert main(["evaluate", str(run_dir)]) == 0
    assert "precision@1" in capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["precision_at_1"] == 1.0 and metrics["map_at_r"] == pytest.approx(1.0)
    assert metrics["head_accuracy"] is None and metrics["knn_accuracy"] == 1.0
    assert (
        main(
            [
                "export",
                str(tmp_path / "runs"),
                "--format",
                "markdown",
                "--out",
                str(tmp_path / "m.md"),
            ]
        )
        == 0
    )
    assert "mine" in (tmp_path / "m.md").read_text()


def test_datasets_command_detects_the_layout_and_counts(tmp_path, capsys):
    _faces(tmp_path / "ck", classes=("anger", "happy"), per_class=2)
    for i, p in enumerate(sorted((tmp_path / "ck").rglob("*.png"))):
        p.rename(p.with_name(f"S{100 + i % 2:03d}_001_0000000{i}.png"))  # CK+ file names
    assert main(["datasets", "--root", str(tmp_path / "ck")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ckplus at")
    row = out[2].split()
    assert row[0] == "all" and row[-2:] == ["4", "2"]  # 4 images, 2 subjects
    (tmp_path / "empty").mkdir()
    assert main(["datasets", "--root", str(tmp_path / "empty")]) == 2
    _one_line_error(capsys, "cannot tell")
