"""CK+ loader: classes, subjects, subject-independent folds, and bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from ferembed.data import create_dataset
from ferembed.errors import DataError

# Fixture (conftest.py): 12 sequences x 3 frames = 36 images of 7 subjects.
SEVEN = ["angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]
SUBJECTS = {"S005", "S010", "S022", "S050", "S070", "S100", "S120"}


def ck(root, split="all", **kw):
    return create_dataset("ckplus", root=root, split=split, **kw)


def test_all_seven_classes(ckplus_dir):
    ds = ck(ckplus_dir)
    assert len(ds) == 36
    assert ds.class_names == SEVEN
    assert ds.class_counts().tolist() == [6, 6, 3, 3, 6, 6, 6]
    assert {s.subject for s in ds.samples} == SUBJECTS
    assert ds.fold is None


def test_sample_fields(ckplus_dir):
    first = ck(ckplus_dir).samples[0]
    assert first.sample_id == "S005_001_00000011"
    assert first.path == "anger/S005_001_00000011.png"
    assert first.subject == "S005"
    assert first.label == 0
    assert first.split == "all"


def test_load_png(ckplus_dir):
    image, label = ck(ckplus_dir)[1]  # frame 12 -> grey 120
    assert image.shape == (48, 48) and image.min() == image.max() == 120
    assert label == 0


def test_six_classes_drop_contempt(ckplus_dir):
    ds = ck(ckplus_dir, classes=6, num_folds=3)
    assert len(ds) == 30
    assert ds.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise"]
    assert ds.class_counts().tolist() == [6, 3, 3, 6, 6, 6]
    sad = [s for s in ds.samples if s.path.startswith("sadness/")]
    assert {s.label for s in sad} == {4}
    assert {s.subject for s in ds.samples} == SUBJECTS - {"S120"}
    assert "S120" not in sum(ds.folds["folds"], [])


@pytest.mark.parametrize("fold", [0, 1, 2])
def test_folds_are_subject_disjoint_and_complete(ckplus_dir, fold):
    train = ck(ckplus_dir, "train", fold=fold, num_folds=3)
    test = ck(ckplus_dir, "test", fold=fold, num_folds=3)
    assert train.folds == test.folds
    assert train.fold == test.fold == fold
    train_subjects = {s.subject for s in train.samples}
    test_subjects = {s.subject for s in test.samples}
    assert not train_subjects & test_subjects
    assert test_subjects == set(train.folds["folds"][fold])
    assert len(train) + len(test) == 36
    assert {s.split for s in train.samples} == {"train"}
    assert {s.split for s in test.samples} == {"test"}


def test_folds_record(ckplus_dir):
    folds = ck(ckplus_dir, num_folds=3, seed=0).folds
    assert folds["num_folds"] == 3 and folds["seed"] == 0
    assert sorted(sum(folds["folds"], [])) == sorted(SUBJECTS)
    assert json.loads(json.dumps(folds)) == folds  # savable as folds.json
    # Sizes 9 (S010), 6 (S005, S050, S100), 3 (S022, S070, S120), greedy by hand:
    # S010->0, S005->1, S050->2, S100->1|2 tie->1, then S022->2, S070->0, S120->2.
    assert folds["folds"] == [["S010", "S070"], ["S005", "S100"], ["S022", "S050", "S120"]]


def test_folds_are_deterministic(ckplus_dir):
    a = ck(ckplus_dir, "test", fold=1, num_folds=3, seed=5)
    b = ck(ckplus_dir, "test", fold=1, num_folds=3, seed=5)
    assert a.folds == b.folds
    assert [s.sample_id for s in a.samples] == [s.sample_id for s in b.samples]


def test_all_without_enough_subjects_has_no_folds(ckplus_dir):
    assert ck(ckplus_dir).folds is None  # 7 subjects < default 10 folds


# Bad input ------------------------------------------------------------------------------------


def test_train_needs_fold(ckplus_dir):
    with pytest.raises(DataError, match=r"split 'train' needs fold \(0..9\)"):
        ck(ckplus_dir, "train")


@pytest.mark.parametrize("fold", [3, -1, "1"])
def test_fold_out_of_range(ckplus_dir, fold):
    with pytest.raises(DataError, match=r"fold must be in \[0, 2\]"):
        ck(ckplus_dir, "test", fold=fold, num_folds=3)


def test_fold_with_split_all(ckplus_dir):
    with pytest.raises(DataError, match="split 'all'"):
        ck(ckplus_dir, fold=0)


def test_more_folds_than_subjects(ckplus_dir):
    with pytest.raises(DataError, match="num_folds=8 is more than the 7 subjects"):
        ck(ckplus_dir, "train", fold=0, num_folds=8)


def test_num_folds_too_small(ckplus_dir):
    with pytest.raises(DataError, match="num_folds must be an integer >= 2"):
        ck(ckplus_dir, "train", fold=0, num_folds=1)


def test_bad_classes(ckplus_dir):
    with pytest.raises(DataError, match="classes must be 7"):
        ck(ckplus_dir, classes=8)


def test_negative_seed(ckplus_dir):
    with pytest.raises(DataError, match="seed must be an integer >= 0"):
        ck(ckplus_dir, seed=-1)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ck(tmp_path / "ck")


def test_root_without_images(tmp_path):
    (tmp_path / "anger").mkdir()
    with pytest.raises(DataError, match="no images under"):
        ck(tmp_path)


def test_file_name_without_subject(ckplus_dir, fresh, build):
    root = fresh(ckplus_dir)
    build.save_image(root / "fear" / "face.png")
    with pytest.raises(DataError, match="no subject id") as err:
        ck(root)
    assert "face.png" in str(err.value)


def test_one_frame_in_two_classes(ckplus_dir, fresh, build):
    root = fresh(ckplus_dir)
    build.save_image(root / "surprise" / "S005_001_00000011.png")
    with pytest.raises(DataError, match="sample id 'S005_001_00000011' is also that of") as err:
        ck(root)
    assert "anger/S005_001_00000011.png" in str(err.value)


def test_unknown_class_folder(ckplus_dir, fresh):
    root = fresh(ckplus_dir)
    shutil.copytree(root / "fear", root / "boredom")
    with pytest.raises(DataError, match="unknown class name 'boredom'") as err:
        ck(root)
    assert str(root / "boredom") in str(err.value)
