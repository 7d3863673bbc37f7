"""What a dataset root holds: per-split class counts, and a guess at which loader reads it.

Backs ``ferembed datasets --root DIR``: :func:`detect_layout` picks the loader, :func:`summarize`
counts its splits.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from ferembed.data._registry import create_dataset, get_dataset_info
from ferembed.data.vocab import FER2013_ORDER, canonical_name
from ferembed.errors import DataError

#: Splits worth counting where not every registered split is (k-fold parts, aliases).
SUMMARY_SPLITS: dict[str, tuple[str, ...]] = {
    "ckplus": ("all",),
    "affectnet": ("train", "val"),
}

_FER2013_PREFIXES = ("Training_", "PublicTest_", "PrivateTest_")
_CKPLUS_NAME = re.compile(r"^S\d+_\d+_\d+\.\w+$")
_SPLIT_NAMES = ("train", "val", "test", "Training", "PublicTest", "PrivateTest")


def summarize(name: str, root=None, **kw) -> dict:
    """Class counts of every split of dataset ``name`` under ``root``.

    Args:
        name: a registered dataset name.
        root: its root (None for datasets that need none).
        **kw: loader options (``classes=6``, ...).

    Returns:
        ``{"dataset", "root", "class_names", "splits": {split: {"n", "counts": {class: n},
        "subjects"}}, "skipped": {split: reason}}``. ``subjects`` is the number of distinct subject
        ids (0 when unknown); ``skipped`` lists splits that did not load, with the error message.

    Raises:
        DataError: unknown dataset, or no split loads (the first split's error).
    """
    info = get_dataset_info(name)
    splits: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    class_names: list[str] = []
    first_error: DataError | None = None
    for split in SUMMARY_SPLITS.get(name, info.splits):
        try:
            dataset = create_dataset(name, root=root, split=split, **kw)
        except DataError as exc:
            first_error = first_error or exc
            skipped[split] = str(exc)
            continue
        class_names = list(dataset.class_names)
        counts = dataset.class_counts()
        splits[split] = {
            "n": len(dataset),
            "counts": {c: int(k) for c, k in zip(dataset.class_names, counts, strict=True)},
            "subjects": len({s.subject for s in dataset.samples if s.subject}),
        }
    if not splits:
        assert first_error is not None
        raise first_error
    return {
        "dataset": name,
        "root": None if root is None else str(root),
        "class_names": class_names,
        "splits": splits,
        "skipped": skipped,
    }


def detect_layout(root) -> str | None:
    """Guess which registered loader reads ``root``; None when nothing fits.

    Looks only at names (folders, a csv header, one file name per folder), never decodes images.
    """
    path = Path(root).expanduser()
    if path.is_file():
        return _detect_csv(path)
    if not path.is_dir():
        return None
    if (path / "EmoLabel" / "list_patition_label.txt").is_file():
        return "rafdb"
    if (path / "training.csv").is_file() or (path / "validation.csv").is_file():
        return "affectnet"
    for csv_name in ("fer2013.csv", "icml_face_data.csv"):
        if (path / csv_name).is_file():
            return "fer2013"
    if (path / "manifest.csv").is_file():
        return "csv"
    folders = _subdirs(path)
    split_folders = [f for f in folders if f in _SPLIT_NAMES]
    if split_folders:
        if any(f in ("Training", "PublicTest", "PrivateTest") for f in split_folders):
            return "fer2013"
        classes = _classes(path / split_folders[0])
        if classes is None:
            return None
        first = _first_file(path / split_folders[0])
        if set(classes) <= set(FER2013_ORDER) and first and first.startswith(_FER2013_PREFIXES):
            return "fer2013"
        return "imagefolder"
    if _classes(path) is None:
        return None
    first = _first_file(path)
    if first and _CKPLUS_NAME.match(first):
        return "ckplus"
    return "imagefolder"


def _detect_csv(path: Path) -> str | None:
    if path.suffix.lower() != ".csv":
        return None
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = {h.strip() for h in next(csv.reader(handle), [])}
    except (OSError, UnicodeDecodeError):
        return None
    if {"emotion", "pixels"} <= header:
        return "fer2013"
    if {"path", "label"} <= header:
        return "csv"
    return None


def _subdirs(path: Path) -> list[str]:
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _classes(path: Path) -> list[str] | None:
    """Canonical classes of the sub-folders, or None unless every one is an expression name."""
    folders = _subdirs(path)
    if not folders:
        return None
    try:
        return [canonical_name(f) for f in folders]
    except DataError:
        return None


def _first_file(path: Path) -> str | None:
    """Name of the first file (sorted) in the first class folder of ``path``."""
    for folder in _subdirs(path):
        with os.scandir(path / folder) as entries:
            names = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
        if names:
            return names[0]
    return None
