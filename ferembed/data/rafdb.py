"""RAF-DB basic (Real-world Affective Faces, 7 basic expressions) in its official layout.

Labels keep RAF-DB's own ids: label ``k - 1`` for official id ``k``, so ``class_names`` is
RAF-DB's order (1 surprise ... 7 neutral) in canonical names. Images are 100x100 RGB;
:func:`~ferembed.data._base.read_image` converts them to grayscale and resizes them (noted once).
"""

from __future__ import annotations

import os
from pathlib import Path

from ferembed.data._base import DEFAULT_IMAGE_SIZE, FERDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data.generic import check_options, check_root
from ferembed.errors import DataError

#: Official label ids 1..7 in order.
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")

#: Label file, relative to ROOT (the misspelling is RAF-DB's own).
LABEL_FILE = "EmoLabel/list_patition_label.txt"

LAYOUT = (
    "RAF-DB basic as distributed: ROOT/EmoLabel/list_patition_label.txt with lines "
    "'train_00001.jpg 5' (label ids 1..7 = surprise, fear, disgust, happy, sad, angry, neutral) "
    "and the images in ROOT/Image/aligned/ named train_00001_aligned.jpg, or, when there is no "
    "aligned folder, ROOT/Image/original/train_00001.jpg. The split (train or test) is the file "
    "name's prefix. Images are RGB 100x100, converted to grayscale and resized on load."
)


class RafDbDataset(FERDataset):
    name = "rafdb"


def image_folder(root: Path) -> tuple[Path, bool]:
    """The folder holding the images and whether it is the aligned one."""
    for sub, aligned in (("Image/aligned", True), ("Image/original", False)):
        if (root / sub).is_dir():
            return root / sub, aligned
    raise DataError(f"rafdb: no image folder {root / 'Image/aligned'} (or Image/original)")


@register_dataset("rafdb", splits=("train", "test"), layout=LAYOUT)
def create_rafdb(
    root, split, *, fold=None, num_folds=10, image_size=DEFAULT_IMAGE_SIZE, **kw
) -> RafDbDataset:
    """Build RAF-DB basic ``split``; see the registered layout."""
    check_options("rafdb", kw, fold=fold)
    root = check_root(root, "rafdb")
    label_file = root / LABEL_FILE
    if not label_file.is_file():
        raise DataError(f"rafdb: label file {label_file} not found")
    images, aligned = image_folder(root)
    rel = images.relative_to(root).as_posix()
    with os.scandir(images) as entries:
        present = {e.name for e in entries}

    samples: list[Sample] = []
    with open(label_file, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{label_file}: line {line_no}"
            if len(fields) != 2:
                raise DataError(
                    f"{where}: expected '<image name> <label id>', got {line.strip()!r}"
                )
            name, label_text = fields
            stem = os.path.splitext(name)[0]
            prefix = stem.partition("_")[0]
            if prefix not in ("train", "test"):
                raise DataError(f"{where}: image name {name!r} does not start with train_ or test_")
            try:
                label = int(label_text)
            except ValueError:
                raise DataError(f"{where}: label {label_text!r} is not an integer") from None
            if not 1 <= label <= len(RAFDB_CLASSES):
                raise DataError(f"{where}: label id {label} is not in 1..{len(RAFDB_CLASSES)}")
            if prefix != split:
                continue
            file = f"{stem}_aligned.jpg" if aligned else name
            if file not in present:
                raise DataError(f"{where}: image {rel}/{file} not found under {root}")
            samples.append(Sample(stem, label - 1, f"{rel}/{file}", "", split))
    return RafDbDataset(samples, RAFDB_CLASSES, root=root, split=split, image_size=image_size)
