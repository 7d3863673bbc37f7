"""AffectNet loader: manifests, 7/8 classes, skipped ids, the test alias, bad input."""

from __future__ import annotations

import shutil

import pytest

from ferembed.data import create_dataset
from ferembed.errors import DataError

EIGHT = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"]


def aff(root, split="train", **kw):
    return create_dataset("affectnet", root=root, split=split, **kw)


def test_train_seven_classes(affectnet_dir):
    ds = aff(affectnet_dir)
    assert ds.class_names == EIGHT[:7]
    # rows 1 2 3 7 8 kept; 4 contempt, 5 none, 6 no-face skipped
    assert [s.sample_id for s in ds.samples] == ["aaa", "bbb", "ccc", "ggg", "hhh"]
    assert ds.labels.tolist() == [0, 1, 1, 6, 2]
    assert ds.samples[0].path == "Manually_Annotated_Images/1/aaa.jpg"


def test_train_eight_classes_keep_contempt(affectnet_dir):
    ds = aff(affectnet_dir, classes=8)
    assert ds.class_names == EIGHT
    assert ds.class_counts().tolist() == [1, 2, 1, 0, 0, 0, 1, 1]


@pytest.mark.parametrize("split", ["val", "test"])
def test_val_and_its_test_alias(affectnet_dir, split):
    ds = aff(affectnet_dir, split)
    assert ds.split == "val"
    assert ds.labels.tolist() == [3, 4, 5]
    assert {s.split for s in ds.samples} == {"val"}


def test_loads_rgb_64px(affectnet_dir):
    image, label = aff(affectnet_dir)[0]
    assert image.shape == (48, 48) and label == 0


def test_missing_manifest(affectnet_dir, fresh):
    root = fresh(affectnet_dir)
    (root / "validation.csv").unlink()
    with pytest.raises(DataError, match="validation.csv not found"):
        aff(root, "val")


def test_missing_image_folder(affectnet_dir, fresh):
    root = fresh(affectnet_dir)
    shutil.rmtree(root / "Manually_Annotated_Images")
    with pytest.raises(DataError, match="Manually_Annotated_Images not found"):
        aff(root)


@pytest.fixture
def bad_row(affectnet_dir, fresh, build):
    """``bad_row(line)``: a copy whose training.csv row 2 is ``line``."""

    def write(line: str, header: str | None = None):
        root = fresh(affectnet_dir)
        path = root / "training.csv"
        lines = path.read_text().splitlines()
        lines[2] = line
        if header is not None:
            lines[0] = header
        build.write_text(path, lines)
        return root

    return write


@pytest.mark.parametrize(
    "expression, message",
    [("happy", "row 2: expression 'happy' is not an integer"), ("-1", "row 2: expression -1")],
)
def test_bad_expression_is_named(bad_row, build, expression, message):
    root = bad_row(build.affectnet_line("1/bbb.jpg", expression))
    with pytest.raises(DataError, match=message) as err:
        aff(root)
    assert "training.csv" in str(err.value)


def test_missing_image_file_names_row_and_path(bad_row, build):
    root = bad_row(build.affectnet_line("9/zzz.jpg", 1))
    with pytest.raises(
        DataError, match="training.csv: row 2: file 'Manually_Annotated_Images/9/zzz.jpg' not found"
    ):
        aff(root)


def test_missing_file_unchecked_when_asked(bad_row, build):
    root = bad_row(build.affectnet_line("9/zzz.jpg", 1))
    assert len(aff(root, check_files=False)) == 5


def test_skipped_rows_need_no_file(bad_row, build):
    root = bad_row(build.affectnet_line("9/zzz.jpg", 9))
    assert len(aff(root)) == 4


def test_wrong_field_count(bad_row):
    root = bad_row("1/bbb.jpg,1")
    with pytest.raises(DataError, match="row 2 .* has 2 fields, expected 9"):
        aff(root)


def test_missing_column(bad_row, build):
    header = build.affectnet_header.replace("expression", "emotion")
    with pytest.raises(DataError, match=r"missing column\(s\) \['expression'\]"):
        aff(bad_row(build.affectnet_line("1/bbb.jpg", 1), header=header))


def test_bad_classes(affectnet_dir):
    with pytest.raises(DataError, match="classes must be 7"):
        aff(affectnet_dir, classes=6)


def test_unknown_split(affectnet_dir):
    with pytest.raises(DataError, match="has no split 'all'"):
        aff(affectnet_dir, "all")
