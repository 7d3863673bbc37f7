"""AffectNet (manually annotated part) from its training/validation CSV manifests.

The official test set is not released, so ``val`` (validation.csv) is the de-facto test set and
``test`` is accepted as an alias of it. Labels keep AffectNet's ids: ``class_names`` is its order
(0 neutral ... 7 contempt); ids 8+ (none, uncertain, no face) are skipped, and so is contempt with
``classes=7``.
"""

from __future__ import annotations

import os

from ferembed.data._base import DEFAULT_IMAGE_SIZE, FERDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data.generic import check_files_exist, check_options, check_root, read_manifest
from ferembed.errors import DataError

#: Expression ids 0..7 in order.
AFFECTNET_CLASSES_8 = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "angry",
    "contempt",
)
#: The 7-class protocol: contempt dropped.
AFFECTNET_CLASSES_7 = AFFECTNET_CLASSES_8[:7]

#: Split -> manifest file name.
MANIFESTS = {"train": "training.csv", "val": "validation.csv"}
IMAGE_DIR = "Manually_Annotated_Images"
PATH_COLUMN = "subDirectory_filePath"
LABEL_COLUMN = "expression"

LAYOUT = (
    "AffectNet's manual-annotation release: ROOT/training.csv and ROOT/validation.csv with "
    "columns subDirectory_filePath and expression (others ignored; expression 0 neutral, 1 happy, "
    "2 sad, 3 surprise, 4 fear, 5 disgust, 6 angry, 7 contempt; 8+ none/uncertain/no-face rows "
    "are skipped) and the images under ROOT/Manually_Annotated_Images/<subDirectory_filePath>. "
    "Splits train and val (the de-facto test set; 'test' is an alias). Option classes=7 (drops "
    "contempt, the default) or 8."
)


class AffectNetDataset(FERDataset):
    name = "affectnet"


@register_dataset("affectnet", splits=("train", "val", "test"), layout=LAYOUT)
def create_affectnet(
    root,
    split,
    *,
    fold=None,
    num_folds=10,
    image_size=DEFAULT_IMAGE_SIZE,
    classes=7,
    check_files=True,
    **kw,
) -> AffectNetDataset:
    """Build AffectNet ``split``; see the registered layout.

    Args:
        classes: 7 (without contempt) or 8.
        check_files: check that every kept row's image exists (one stat per row).
    """
    check_options("affectnet", kw, fold=fold)
    if classes not in (7, 8):
        raise DataError(f"affectnet: classes must be 7 (without contempt) or 8, got {classes!r}")
    split = "val" if split == "test" else split
    root = check_root(root, "affectnet")
    manifest = root / MANIFESTS[split]
    if not manifest.is_file():
        raise DataError(f"affectnet: manifest {manifest} not found (split {split!r})")
    if not (root / IMAGE_DIR).is_dir():
        raise DataError(f"affectnet: image folder {root / IMAGE_DIR} not found")

    class_names = AFFECTNET_CLASSES_8 if classes == 8 else AFFECTNET_CLASSES_7
    _header, rows = read_manifest(manifest, (PATH_COLUMN, LABEL_COLUMN))
    samples: list[Sample] = []
    numbers: list[int] = []
    for number, _line, row in rows:
        where = f"{manifest}: row {number}"
        text = row[LABEL_COLUMN].strip()
        try:
            label = int(text)
        except ValueError:
            raise DataError(f"{where}: expression {text!r} is not an integer") from None
        if label < 0:
            raise DataError(f"{where}: expression {label} is not a label id (0..10)")
        if label >= len(class_names):  # 8+ non-expression, or contempt in the 7-class protocol
            continue
        sub = row[PATH_COLUMN].strip().replace("\\", "/")
        if not sub:
            raise DataError(f"{where}: empty {PATH_COLUMN}")
        stem = os.path.splitext(os.path.basename(sub))[0]
        samples.append(Sample(stem, label, f"{IMAGE_DIR}/{sub}", "", split))
        numbers.append(number)
    if check_files:
        check_files_exist(samples, root, manifest, numbers)
    return AffectNetDataset(samples, class_names, root=root, split=split, image_size=image_size)
