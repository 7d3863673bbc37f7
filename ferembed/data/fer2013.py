"""FER2013 (ICML 2013 challenge): image folders or the original ``fer2013.csv``, auto-detected.

Both layouts give ``class_names == FER2013_ORDER`` (the csv's emotion ids 0..6), so a run on the
folders and a run on the csv are comparable label for label. Splits follow the csv's ``Usage``:
Training -> train, PublicTest -> val, PrivateTest -> test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ferembed.data._base import DEFAULT_IMAGE_SIZE, ArrayDataset, FERDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data.generic import (
    check_options,
    check_root,
    folder_sample_id,
    read_manifest,
    scan_class_folders,
    subdirs,
)
from ferembed.data.vocab import FER2013_ORDER
from ferembed.errors import DataError

#: Folder names accepted for each split, first match wins (the Kaggle/README names, then the
#: csv's Usage values).
SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {
    "train": ("train", "Training", "training"),
    "val": ("val", "PublicTest", "publictest", "valid", "validation"),
    "test": ("test", "PrivateTest", "privatetest"),
}

#: csv Usage value -> split.
USAGE: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

#: File names looked for when ROOT is a folder holding the csv (Kaggle's two releases).
CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")

PIXELS = 48 * 48

LAYOUT = (
    "Either image folders ROOT/<split>/<class>/*.jpg with split folders train, val, test (also "
    "named Training, PublicTest, PrivateTest) and class folders angry, disgust, fear, happy, sad, "
    "surprise, neutral (any common spelling); or the original fer2013.csv (columns emotion, "
    "pixels, Usage; emotion 0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral; pixels "
    "2304 space-separated 0..255 values of a 48x48 face; Usage Training/PublicTest/PrivateTest = "
    "train/val/test), given as ROOT itself or inside the ROOT folder. Folders win when both exist."
)


class Fer2013Dataset(FERDataset):
    """FER2013 from image folders; ``layout == "folders"``."""

    name = "fer2013"
    layout = "folders"


class Fer2013CsvDataset(ArrayDataset):
    """FER2013 parsed from ``fer2013.csv`` into memory; ``layout == "csv"``."""

    name = "fer2013"
    layout = "csv"


def find_split_folder(root: Path, split: str) -> Path | None:
    """The folder holding ``split`` under ``root`` (by :data:`SPLIT_FOLDERS`), or None."""
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def find_csv(root: Path) -> Path | None:
    """``root`` itself when it is a file, else the first of :data:`CSV_NAMES` inside it."""
    if root.is_file():
        return root
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    return None


@register_dataset("fer2013", splits=("train", "val", "test"), layout=LAYOUT)
def create_fer2013(
    root, split, *, fold=None, num_folds=10, image_size=DEFAULT_IMAGE_SIZE, **kw
) -> FERDataset:
    """Build FER2013 ``split`` from folders or from the csv, whichever ROOT holds."""
    check_options("fer2013", kw, fold=fold)
    root = check_root(root, "fer2013")
    has_folders = root.is_dir() and any(
        find_split_folder(root, s) is not None for s in SPLIT_FOLDERS
    )
    if has_folders:
        return _from_folders(root, split, image_size)
    csv_path = find_csv(root)
    if csv_path is not None:
        return _from_csv(csv_path, split, image_size)
    raise DataError(
        f"fer2013: {root} holds neither split folders ({', '.join(SPLIT_FOLDERS)}) nor "
        f"{' / '.join(CSV_NAMES)}"
    )


def _from_folders(root: Path, split: str, image_size: int) -> Fer2013Dataset:
    directory = find_split_folder(root, split)
    if directory is None:
        found = subdirs(root)
        raise DataError(
            f"fer2013: no {split!r} folder under {root} (looked for "
            f"{', '.join(SPLIT_FOLDERS[split])}; found {found})"
        )
    # Ids are <class>/<stem>, not the bare stem: the Kaggle folders hold two train stems twice,
    # in different classes and with different pixels (Training_52789098, Training_8475486).
    samples = scan_class_folders(directory, root, FER2013_ORDER, split, sample_id=folder_sample_id)
    return Fer2013Dataset(samples, FER2013_ORDER, root=root, split=split, image_size=image_size)


def _from_csv(path: Path, split: str, image_size: int) -> Fer2013CsvDataset:
    """Parse the rows of ``split`` only; every row's Usage is still checked."""
    # icml_face_data.csv spells its header " Usage", " pixels"; read_manifest strips names.
    _header, rows = read_manifest(path, ("emotion", "pixels", "Usage"))
    want = next(usage for usage, s in USAGE.items() if s == split)
    samples: list[Sample] = []
    images: list[np.ndarray] = []
    for number, line, row in rows:
        where = f"{path}: row {number} (line {line})"
        usage = row["Usage"].strip()
        if usage not in USAGE:
            raise DataError(
                f"{where}: unknown Usage {usage!r}; expected Training, PublicTest or PrivateTest"
            )
        if usage != want:
            continue
        try:
            label = int(row["emotion"])
        except ValueError:
            raise DataError(f"{where}: emotion {row['emotion']!r} is not an integer") from None
        if not 0 <= label < len(FER2013_ORDER):
            raise DataError(f"{where}: emotion {label} is not a label id 0..6")
        try:
            pixels = np.fromstring(row["pixels"], dtype=np.int32, sep=" ")
        except ValueError:
            raise DataError(f"{where}: pixels is not a list of integers") from None
        if pixels.size != PIXELS:
            raise DataError(f"{where}: pixels has {pixels.size} values, expected {PIXELS} (48x48)")
        if pixels.min() < 0 or pixels.max() > 255:
            raise DataError(f"{where}: pixel values outside 0..255")
        # Row numbers are over the whole file, so ids are stable whichever split is loaded.
        samples.append(Sample(f"fer2013-csv-{number}", label, "", "", split))
        images.append(pixels.astype(np.uint8).reshape(48, 48))
    if not samples:
        raise DataError(f"fer2013: no {want} rows (split {split!r}) in {path}")
    stack = np.stack(images)
    dataset = Fer2013CsvDataset(
        stack, samples, FER2013_ORDER, root=path.parent, split=split, image_size=image_size
    )
    if image_size != 48:
        dataset.images = _resize(stack, image_size, path)
    return dataset


def _resize(images: np.ndarray, size: int, path: Path) -> np.ndarray:
    """(N, 48, 48) -> (N, size, size) uint8, bilinear, with the same note read_image prints."""
    from PIL import Image

    print(f"note: fer2013: images are 48x48, resizing to {size}x{size} ({path})", file=sys.stderr)
    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
    )
