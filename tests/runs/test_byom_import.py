"""``ferembed import`` with faces and metadata: thumbnails from an image column (resolved against
--images or the CSV's folder) and every extra CSV column kept as a sample metadata column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferembed.cli import main
from ferembed.runs import load_run


@pytest.fixture
def faces(tmp_path):
    """6 embeddings, 6 faces (64x64, RGB) under tmp/faces/, a CSV beside the embeddings."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (6, 64, 64), dtype=np.uint8)
    (tmp_path / "faces" / "a").mkdir(parents=True)
    for i, p in enumerate(pixels):
        Image.fromarray(np.repeat(p[..., None], 3, -1), "RGB").save(tmp_path / f"faces/a/{i}.png")
    np.save(tmp_path / "emb.npy", rng.normal(size=(6, 4)).astype(np.float32))
    rows = {
        "label": ["sad", "happy", "angry"] * 2,
        "path": [f"a/{i}.png" for i in range(6)],
        "subject": list("xxyyzz"),
        "pose": ["frontal", "left", "right"] * 2,
        "occlusion": ["none", "glasses", "none", "mask", "none", "none"],
    }
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    expected = np.stack(
        [np.asarray(Image.fromarray(p).resize((48, 48), Image.BILINEAR)) for p in pixels]
    )
    return tmp_path, expected


def _import(tmp, *extra):
    argv = ["import", "--embeddings", str(tmp / "emb.npy"), "--labels", str(tmp / "labels.csv")]
    return main(argv + ["--out", str(tmp / "run"), *extra])


def test_images_root_gives_thumbnails_and_metadata(faces):
    tmp, expected = faces
    assert _import(tmp, "--images", str(tmp / "faces")) == 0
    run = load_run(tmp / "run")
    np.testing.assert_array_equal(run.thumbs, expected)
    assert run.manifest["metadata_columns"] == ["pose", "occlusion"]
    assert run.samples["pose"].tolist() == ["frontal", "left", "right"] * 2
    assert run.samples["occlusion"].iloc[3] == "mask"
    assert run.samples["subject"].tolist() == list("xxyyzz")  # a schema column, not metadata
    assert run.samples["path"].iloc[0] == "a/0.png"


def test_image_column_relative_to_the_csv_folder(faces):
    tmp, expected = faces
    df = pd.read_csv(tmp / "labels.csv")
    df["image"] = "faces/" + df.pop("path")
    df.to_csv(tmp / "labels.csv", index=False)
    assert _import(tmp) == 0
    run = load_run(tmp / "run")
    np.testing.assert_array_equal(run.thumbs, expected)
    assert run.samples["path"].iloc[5] == "faces/a/5.png"


def test_path_column_elsewhere_is_kept_without_thumbnails(faces, capsys):
    tmp, _ = faces
    assert _import(tmp) == 0  # paths are relative to faces/, not to the CSV's folder
    run = load_run(tmp / "run")
    assert run.thumbs is None and run.samples["path"].iloc[0] == "a/0.png"
    assert "pass --images ROOT" in capsys.readouterr().err


def test_missing_image_is_named_and_no_run_is_left(faces, capsys):
    tmp, _ = faces
    (tmp / "faces" / "a" / "4.png").unlink()
    assert _import(tmp, "--images", str(tmp / "faces")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a/4.png: file not found" in err[0]
    assert not (tmp / "run").exists()


def test_images_without_a_path_column(faces, capsys):
    tmp, _ = faces
    pd.read_csv(tmp / "labels.csv").drop(columns="path").to_csv(tmp / "labels.csv", index=False)
    assert _import(tmp, "--images", str(tmp / "faces")) == 2
    assert "--images needs a 'path' or 'image' column" in capsys.readouterr().err


def test_metadata_run_evaluates_and_exports(faces, tmp_path):
    from ferembed.export import export
    from ferembed.runs import evaluate_run

    tmp, _ = faces
    assert _import(tmp, "--images", str(tmp / "faces")) == 0
    metrics = evaluate_run(tmp / "run", n_boot=0)
    assert metrics["n"] == 6
    out = export([tmp / "run"], format="html", out=tmp_path / "report.html")
    assert out.stat().st_size > 0
