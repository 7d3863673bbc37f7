"""FER2013 loader: folder and csv layouts, and every malformed input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ferembed.data import FER2013_ORDER, create_dataset
from ferembed.errors import DataError

# Expected values below are read off the fixture tables in conftest.py by hand.


def fer(root, split="train", **kw):
    return create_dataset("fer2013", root=root, split=split, **kw)


# Folders --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "split, n, counts",
    [
        ("train", 6, [2, 0, 0, 3, 0, 0, 1]),
        ("val", 2, [0, 0, 0, 0, 1, 1, 0]),
        ("test", 3, [0, 1, 2, 0, 0, 0, 0]),
    ],
)
def test_folders_counts_per_split(fer2013_dir, split, n, counts):
    ds = fer(fer2013_dir, split)
    assert len(ds) == n
    assert ds.class_names == list(FER2013_ORDER)
    assert ds.class_counts().tolist() == counts
    assert ds.layout == "folders"
    assert {s.split for s in ds.samples} == {split}


def test_folders_samples_are_sorted_with_class_stem_ids_and_relative_paths(fer2013_dir):
    ds = fer(fer2013_dir, "train")
    ids = [s.sample_id for s in ds.samples]
    assert ids == [
        "angry/Training_1",
        "angry/Training_2",
        "happy/Training_3",
        "happy/Training_4",
        "happy/Training_5",
        "neutral/Training_6",
    ]
    assert ds.samples[0].path == "train/angry/Training_1.jpg"
    assert ds.labels.tolist() == [0, 0, 3, 3, 3, 6]
    assert all(s.subject == "" for s in ds.samples)


def test_folders_load_the_right_image(fer2013_dir):
    ds = fer(fer2013_dir, "train")
    image, label = ds[2]  # Training_3.jpg, grey 30, happy
    assert image.shape == (48, 48) and image.dtype == np.uint8
    assert label == 3
    assert abs(int(image.mean()) - 30) <= 2  # JPEG rounding


def test_folders_accept_usage_names_and_class_synonyms(tmp_path, build):
    tree = {
        "Training": {"anger": [("Training_1.jpg", 10)], "happiness": [("Training_2.jpg", 20)]},
        "PublicTest": {"sadness": [("PublicTest_1.jpg", 30)]},
        "PrivateTest": {"Surprise": [("PrivateTest_1.jpg", 40)]},
    }
    root = build.build_fer2013_folders(tmp_path, tree)
    assert fer(root, "train").labels.tolist() == [0, 3]
    assert fer(root, "val").labels.tolist() == [4]
    assert fer(root, "test").labels.tolist() == [5]


def test_same_file_name_in_two_classes_gets_two_ids(tmp_path, build):
    # The real Kaggle train folders hold two such pairs (different images, one name).
    tree = {"train": {"angry": [("Training_7.jpg", 10)], "surprise": [("Training_7.jpg", 20)]}}
    ds = fer(build.build_fer2013_folders(tmp_path, tree))
    assert [s.sample_id for s in ds.samples] == ["angry/Training_7", "surprise/Training_7"]


def test_folders_and_csv_share_class_names(fer2013_dir, fer2013_csv):
    assert fer(fer2013_dir).class_names == fer(fer2013_csv).class_names == list(FER2013_ORDER)


# CSV ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "split, ids, labels",
    [
        ("train", [1, 2, 4, 8], [0, 3, 3, 5]),
        ("val", [3, 6], [6, 4]),
        ("test", [5, 7], [2, 1]),
    ],
)
def test_csv_parses_only_the_split(fer2013_csv, split, ids, labels):
    ds = fer(fer2013_csv, split)
    assert [s.sample_id for s in ds.samples] == [f"fer2013-csv-{i}" for i in ids]
    assert ds.labels.tolist() == labels
    assert ds.layout == "csv"
    assert {s.split for s in ds.samples} == {split}


def test_csv_images_hold_the_pixels(fer2013_csv):
    ds = fer(fer2013_csv, "val")  # rows 3 and 6: grey 30 and 60
    images = ds.load_all()
    assert images.shape == (2, 48, 48) and images.dtype == np.uint8
    assert images[0].min() == images[0].max() == 30
    assert ds[1][0].max() == 60


def test_csv_root_may_be_the_file(fer2013_csv):
    assert len(fer(fer2013_csv / "fer2013.csv", "train")) == 4


def test_csv_accepts_icml_face_data_header(tmp_path, build):
    lines = build.fer2013_csv_lines(header="emotion, Usage, pixels")
    lines = [lines[0]] + [f"{e}, {u},{build.pixel_string(v)}" for e, v, u in build.fer2013_rows]
    build.write_text(tmp_path / "icml_face_data.csv", lines)
    assert fer(tmp_path, "test").labels.tolist() == [2, 1]


def test_csv_resize_is_noted(fer2013_csv, capsys):
    ds = fer(fer2013_csv, "test", image_size=64)
    assert ds.load_all().shape == (2, 64, 64)
    assert ds[0][0].max() == 50
    assert "resizing to 64x64" in capsys.readouterr().err


def test_folders_win_over_csv(fer2013_dir, tmp_path, build):
    root = build.build_fer2013_folders(tmp_path)
    shutil.copy(fer2013_dir / "train" / "angry" / "Training_1.jpg", root / "x.jpg")
    build.write_text(root / "fer2013.csv", build.fer2013_csv_lines())
    assert fer(root).layout == "folders"


# Bad input: layout ----------------------------------------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        fer(tmp_path / "nope")
    assert "nope" in str(err.value)


def test_root_with_neither_layout(tmp_path):
    with pytest.raises(DataError, match="neither split folders") as err:
        fer(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_split_folder(fer2013_dir, fresh):
    root = fresh(fer2013_dir)
    shutil.rmtree(root / "val")
    with pytest.raises(DataError, match="no 'val' folder"):
        fer(root, "val")


def test_empty_split(fer2013_dir, fresh):
    root = fresh(fer2013_dir)
    shutil.rmtree(root / "test")
    (root / "test" / "angry").mkdir(parents=True)
    with pytest.raises(DataError, match="split 'test' is empty"):
        fer(root, "test")


def test_unknown_class_folder(fer2013_dir, fresh, build):
    root = fresh(fer2013_dir)
    build.save_image(root / "train" / "bored" / "Training_9.jpg")
    with pytest.raises(DataError, match="unknown class name 'bored'") as err:
        fer(root)
    assert "bored" in str(err.value).split(":")[0]  # the folder is named first


def test_class_outside_fer2013(fer2013_dir, fresh, build):
    root = fresh(fer2013_dir)
    build.save_image(root / "train" / "contempt" / "Training_9.jpg")
    with pytest.raises(DataError, match="'contempt' is not one of"):
        fer(root)


def test_duplicate_class_folders(fer2013_dir, fresh, build):
    root = fresh(fer2013_dir)
    build.save_image(root / "train" / "anger" / "Training_9.jpg")
    with pytest.raises(DataError, match="'anger' and 'angry' are both class 'angry'"):
        fer(root)


def test_truncated_jpeg_names_the_file(fer2013_dir, fresh):
    root = fresh(fer2013_dir)
    path = root / "train" / "angry" / "Training_1.jpg"
    path.write_bytes(path.read_bytes()[:200])
    ds = fer(root)
    with pytest.raises(DataError, match="corrupt or unreadable") as err:
        ds[0]
    assert "Training_1.jpg" in str(err.value)


def test_fold_is_rejected(fer2013_dir):
    with pytest.raises(DataError, match="fixed splits"):
        fer(fer2013_dir, fold=0)


def test_unknown_option_is_rejected(fer2013_dir):
    with pytest.raises(DataError, match="unknown option 'classes'"):
        fer(fer2013_dir, classes=6)


def test_none_options_are_ignored(fer2013_dir):
    assert len(fer(fer2013_dir, classes=None)) == 6


# Bad input: csv rows --------------------------------------------------------------------------


@pytest.fixture
def bad_csv(tmp_path, build):
    """``bad_csv(row_index, line)``: fer2013.csv with data row ``row_index`` (0-based) replaced."""

    def write(index: int, line: str, header: str | None = None):
        lines = build.fer2013_csv_lines()
        lines[index + 1] = line
        if header is not None:
            lines[0] = header
        return build.write_text(tmp_path / "fer2013.csv", lines)

    return write


@pytest.mark.parametrize(
    "line, message",
    [
        ("3,{px},Training", r"row 2 \(line 3\): pixels has 2303 values, expected 2304"),
        ("3,{px} x,Training", r"row 2 \(line 3\): pixels is not a list of integers"),
        ("3,{px} 300,Training", r"row 2 \(line 3\): pixel values outside 0..255"),
        ("7,{px} 1,Training", r"row 2 \(line 3\): emotion 7 is not a label id 0..6"),
        ("x,{px} 1,Training", r"row 2 \(line 3\): emotion 'x' is not an integer"),
        ("3,{px} 1,Validation", r"row 2 \(line 3\): unknown Usage 'Validation'"),
        ("3,{px} 1", r"row 2 \(line 3\) has 2 fields, expected 3"),
    ],
)
def test_malformed_csv_row_is_named(bad_csv, build, line, message):
    path = bad_csv(1, line.format(px=build.pixel_string(5, 2303)))
    with pytest.raises(DataError, match=message) as err:
        fer(path, "train")
    assert str(path) in str(err.value)


def test_bad_usage_in_another_split_is_still_caught(bad_csv, build):
    path = bad_csv(7, f"5,{build.pixel_string(1)},Nope")  # row 8, not in split test
    with pytest.raises(DataError, match="row 8"):
        fer(path, "test")


def test_csv_missing_column(bad_csv, build):
    path = bad_csv(0, f"0,{build.pixel_string(1)},Training", header="label,pixels,Usage")
    with pytest.raises(DataError, match=r"missing column\(s\) \['emotion'\]"):
        fer(path)


def test_csv_empty_file(tmp_path):
    (tmp_path / "fer2013.csv").write_text("")
    with pytest.raises(DataError, match="empty manifest"):
        fer(tmp_path)


def test_csv_without_rows_of_the_split(tmp_path, build):
    rows = [r for r in build.fer2013_rows if r[2] == "Training"]
    build.write_text(tmp_path / "fer2013.csv", build.fer2013_csv_lines(rows))
    with pytest.raises(DataError, match="no PrivateTest rows"):
        fer(tmp_path, "test")
