"""RAF-DB basic loader: official label file, aligned/original images, RGB->gray, bad input."""

from __future__ import annotations

import shutil

import pytest

from ferembed.data import create_dataset
from ferembed.errors import DataError

RAFDB_ORDER = ["surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"]
LABELS = "EmoLabel/list_patition_label.txt"


def raf(root, split="train", **kw):
    return create_dataset("rafdb", root=root, split=split, **kw)


def test_train_split(rafdb_dir):
    ds = raf(rafdb_dir)
    assert ds.class_names == RAFDB_ORDER
    assert [s.sample_id for s in ds.samples] == [f"train_0000{i}" for i in range(1, 5)]
    assert ds.labels.tolist() == [0, 3, 3, 6]  # official ids 1, 4, 4, 7
    assert ds.samples[0].path == "Image/aligned/train_00001_aligned.jpg"
    assert {s.split for s in ds.samples} == {"train"}


def test_test_split(rafdb_dir):
    ds = raf(rafdb_dir, "test")
    assert [s.sample_id for s in ds.samples] == ["test_0001", "test_0002"]
    assert ds.labels.tolist() == [5, 4]  # angry, sad


def test_rgb_100px_is_gray_48px_and_noted_once(rafdb_dir, capsys):
    ds = raf(rafdb_dir)
    first, second = ds[0][0], ds[1][0]
    assert first.shape == second.shape == (48, 48)
    assert abs(int(first.mean()) - 200) <= 2 and abs(int(second.mean()) - 120) <= 2
    err = capsys.readouterr().err
    assert err.count("note: rafdb: images are 100x100, resizing to 48x48") == 1


def test_original_images_when_no_aligned(rafdb_dir, fresh, build):
    root = fresh(rafdb_dir)
    shutil.rmtree(root / "Image" / "aligned")
    for name in ("test_0001.jpg", "test_0002.jpg"):
        build.save_image(root / "Image" / "original" / name, 50, 100, "RGB")
    ds = raf(root, "test")
    assert [s.path for s in ds.samples] == [
        "Image/original/test_0001.jpg",
        "Image/original/test_0002.jpg",
    ]


def test_missing_label_file(rafdb_dir, fresh):
    root = fresh(rafdb_dir)
    (root / LABELS).unlink()
    with pytest.raises(DataError, match="list_patition_label.txt not found"):
        raf(root)


def test_missing_image_folder(rafdb_dir, fresh):
    root = fresh(rafdb_dir)
    shutil.rmtree(root / "Image")
    with pytest.raises(DataError, match="no image folder"):
        raf(root)


@pytest.fixture
def bad_line(rafdb_dir, fresh):
    """``bad_line(text)``: a copy whose label file has line 3 replaced by ``text``."""

    def write(text: str):
        root = fresh(rafdb_dir)
        path = root / LABELS
        lines = path.read_text().splitlines()
        lines[2] = text
        path.write_text("\n".join(lines) + "\n")
        return root

    return write


@pytest.mark.parametrize(
    "text, message",
    [
        ("train_00003.jpg 4 extra", "line 3: expected '<image name> <label id>'"),
        ("train_00003.jpg four", "line 3: label 'four' is not an integer"),
        ("train_00003.jpg 0", r"line 3: label id 0 is not in 1..7"),
        ("train_00003.jpg 8", r"line 3: label id 8 is not in 1..7"),
        ("val_00003.jpg 4", "line 3: image name 'val_00003.jpg' does not start with train_"),
        ("train_00009.jpg 4", "line 3: image Image/aligned/train_00009_aligned.jpg not found"),
    ],
)
def test_bad_label_line_is_named(bad_line, text, message):
    root = bad_line(text)
    with pytest.raises(DataError, match=message) as err:
        raf(root)
    assert "list_patition_label.txt" in str(err.value)


def test_blank_lines_are_skipped(bad_line):
    assert len(raf(bad_line(""))) == 3


def test_empty_split(rafdb_dir, fresh):
    root = fresh(rafdb_dir)
    path = root / LABELS
    path.write_text("".join(ln for ln in path.read_text().splitlines(True) if "train" in ln))
    with pytest.raises(DataError, match="split 'test' is empty"):
        raf(root, "test")
