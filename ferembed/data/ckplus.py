"""CK+ (Extended Cohn-Kanade) peak-frame crops, with subject-independent k-fold splits.

Class order is CK+'s own emotion coding (1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy,
6 sadness, 7 surprise) in canonical names; the 6-class variant drops contempt. ``train``/``test``
are the two parts of fold ``fold`` of :func:`~ferembed.data.splits.subject_kfold` over the images of
the chosen classes, and the dataset carries the fold lists in ``folds`` for the run's folds.json.
"""

from __future__ import annotations

import os
from pathlib import Path

from ferembed.data._base import DEFAULT_IMAGE_SIZE, FERDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data.generic import check_options, check_root, scan_class_folders
from ferembed.data.splits import fold_indices, subject_kfold
from ferembed.errors import DataError

#: The 7-class protocol (with contempt), in CK+'s emotion-code order.
CKPLUS_CLASSES_7 = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
#: The 6-class protocol (without contempt).
CKPLUS_CLASSES_6 = ("angry", "disgust", "fear", "happy", "sad", "surprise")

LAYOUT = (
    "One folder per class, ROOT/<class>/S<subject>_<sequence>_<frame>.png, class folders anger, "
    "contempt, disgust, fear, happy, sadness, surprise (any common spelling). The subject id is "
    "the part of the file name before the first underscore. Split 'all' is every image; 'train' "
    "and 'test' are the two parts of fold `fold` (0-based) of a subject-independent k-fold "
    "(num_folds, default 10) balanced by image count. Options: classes=7 (with contempt) or 6 "
    "(without), seed (tie-breaking of the fold assignment, default 0)."
)


class CKPlusDataset(FERDataset):
    """CK+ images of one split.

    Attributes:
        folds: ``{"num_folds", "seed", "folds": [[subject ids] per fold]}`` over the images of the
            chosen classes; None for split ``all`` when there are fewer subjects than folds.
        fold: the held-out fold of ``train``/``test``, None for ``all``.
    """

    name = "ckplus"
    folds: dict | None = None
    fold: int | None = None


def subject_of(name: str, path: Path) -> str:
    """The subject id of a CK+ file name: the part before the first underscore."""
    subject, sep, _rest = name.partition("_")
    if not sep or not subject:
        raise DataError(f"{path}: file name is not S<subject>_<sequence>_<frame>, no subject id")
    return subject


@register_dataset("ckplus", splits=("all", "train", "test"), layout=LAYOUT)
def create_ckplus(
    root,
    split,
    *,
    fold=None,
    num_folds=10,
    image_size=DEFAULT_IMAGE_SIZE,
    classes=7,
    seed=0,
    **kw,
) -> CKPlusDataset:
    """Build CK+ ``split``; see the registered layout."""
    check_options("ckplus", kw)
    if classes not in (6, 7):
        raise DataError(f"ckplus: classes must be 7 (with contempt) or 6, got {classes!r}")
    if split == "all":
        if fold is not None:
            raise DataError(f"ckplus: fold={fold} given for split 'all'; folds apply to train/test")
    elif fold is None:
        raise DataError(f"ckplus: split {split!r} needs fold (0..{num_folds - 1})")
    if not isinstance(num_folds, int) or num_folds < 2:
        raise DataError(f"ckplus: num_folds must be an integer >= 2, got {num_folds!r}")
    if fold is not None and not (isinstance(fold, int) and 0 <= fold < num_folds):
        raise DataError(f"ckplus: fold must be in [0, {num_folds - 1}], got {fold!r}")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"ckplus: seed must be an integer >= 0, got {seed!r}")
    root = check_root(root, "ckplus")
    if not root.is_dir():
        raise DataError(f"ckplus: root {root} is not a folder")

    samples = scan_class_folders(
        root,
        root,
        CKPLUS_CLASSES_7,
        split,
        sample_id=lambda _folder, name: os.path.splitext(name)[0],
        subject=subject_of,
    )
    class_names = CKPLUS_CLASSES_7
    if classes == 6:
        class_names = CKPLUS_CLASSES_6
        relabel = {CKPLUS_CLASSES_7.index(c): i for i, c in enumerate(CKPLUS_CLASSES_6)}
        samples = [
            Sample(s.sample_id, relabel[s.label], s.path, s.subject, s.split)
            for s in samples
            if s.label in relabel
        ]
    if not samples:
        raise DataError(f"ckplus: no images under {root}")

    subjects = [s.subject for s in samples]
    n_subjects = len(set(subjects))
    folds = None
    if num_folds <= n_subjects:
        folds = {
            "num_folds": num_folds,
            "seed": seed,
            "folds": subject_kfold(subjects, num_folds, seed=seed),
        }
    elif split != "all":
        raise DataError(
            f"ckplus: num_folds={num_folds} is more than the {n_subjects} subjects under {root}"
        )
    if split != "all":
        train, test = fold_indices(subjects, folds["folds"], fold)
        samples = [samples[i] for i in (train if split == "train" else test)]

    dataset = CKPlusDataset(samples, class_names, root=root, split=split, image_size=image_size)
    dataset.folds = folds
    dataset.fold = fold
    return dataset
