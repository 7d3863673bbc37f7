"""The loaders on the real FER2013 and CK+ sets; counts are the tables of datasets/README.md."""

from __future__ import annotations

import pytest

from ferembed.data import create_dataset, detect_layout

pytestmark = pytest.mark.realdata

# datasets/README.md, in FER2013_ORDER (angry disgust fear happy sad surprise neutral).
FER2013_COUNTS = {
    "train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "val": [467, 56, 496, 895, 653, 415, 607],
    "test": [491, 55, 528, 879, 594, 416, 626],
}
# datasets/README.md: anger 135, contempt 54, disgust 177, fear 75, happy 207, sadness 84,
# surprise 249, in CK+ order (angry contempt disgust fear happy sad surprise).
CKPLUS_COUNTS = [135, 54, 177, 75, 207, 84, 249]


@pytest.mark.parametrize("split, total", [("train", 28709), ("val", 3589), ("test", 3589)])
def test_fer2013_counts(fer2013_root, split, total):
    ds = create_dataset("fer2013", root=fer2013_root, split=split)
    assert len(ds) == total
    assert ds.class_counts().tolist() == FER2013_COUNTS[split]
    assert len({s.sample_id for s in ds.samples}) == total


def test_fer2013_first_image(fer2013_root):
    image, _label = create_dataset("fer2013", root=fer2013_root, split="test")[0]
    assert image.shape == (48, 48)


def test_ckplus_seven_classes(ckplus_root):
    ds = create_dataset("ckplus", root=ckplus_root, split="all")
    assert len(ds) == 981
    assert ds.class_counts().tolist() == CKPLUS_COUNTS
    assert len({s.subject for s in ds.samples}) == 118
    assert ds[0][0].shape == (48, 48)


def test_ckplus_six_classes(ckplus_root):
    assert len(create_dataset("ckplus", root=ckplus_root, split="all", classes=6)) == 927


def test_ckplus_ten_folds_are_subject_disjoint_and_cover_all(ckplus_root):
    all_subjects = {
        s.subject for s in create_dataset("ckplus", root=ckplus_root, split="all").samples
    }
    test_subjects: list[set[str]] = []
    for fold in range(10):
        train = create_dataset("ckplus", root=ckplus_root, split="train", fold=fold)
        test = create_dataset("ckplus", root=ckplus_root, split="test", fold=fold)
        assert len(train) + len(test) == 981
        train_s, test_s = {s.subject for s in train.samples}, {s.subject for s in test.samples}
        assert not train_s & test_s
        assert train_s | test_s == all_subjects
        test_subjects.append(test_s)
    assert sum(len(s) for s in test_subjects) == len(set().union(*test_subjects)) == 118


def test_detect_real_layouts(fer2013_root, ckplus_root):
    assert detect_layout(fer2013_root) == "fer2013"
    assert detect_layout(ckplus_root) == "ckplus"
