"""Generic loaders, ``imagefolder`` and ``csv``, and the folder/manifest helpers all loaders share.

``imagefolder`` reads ``ROOT/<split>/<class>/*`` (or ``ROOT/<class>/*`` as split ``all``); ``csv``
reads a manifest of ``path,label[,subject][,split]`` rows. Class names of both go through
:func:`~ferembed.data.vocab.canonical_name`, and ``class_names`` lists the classes present in
canonical order (:data:`~ferembed.data.vocab.CANONICAL`), the same for every split of one root.

The helpers (:func:`check_root`, :func:`subdirs`, :func:`image_files`, :func:`class_of`,
:func:`scan_class_folders`, :func:`read_manifest`, :func:`check_options`) are used by the named
loaders too; they are not part of the package's re-exported API.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ferembed.data._base import DEFAULT_IMAGE_SIZE, FERDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data.vocab import CANONICAL, canonical_name
from ferembed.errors import DataError

#: File suffixes (lower case) taken as images when listing a folder.
IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
)

#: Split folder names of the ``imagefolder`` layout.
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------------
# Shared helpers


def check_root(root: str | os.PathLike | None, dataset: str) -> Path:
    """Return ``root`` as a Path, or raise DataError when it is missing."""
    if root is None:
        raise DataError(f"{dataset}: no root given")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{dataset}: root {path} does not exist")
    return path


def check_options(dataset: str, kw: dict, *, fold: int | None = None) -> None:
    """Reject options a loader does not take (``None`` values are ignored, as CLI defaults).

    Raises:
        DataError: naming the first unknown option, or ``fold`` for a fixed-split dataset.
    """
    if fold is not None:
        raise DataError(f"{dataset}: has fixed splits; fold={fold} applies only to k-fold datasets")
    unknown = sorted(k for k, v in kw.items() if v is not None)
    if unknown:
        raise DataError(f"{dataset}: unknown option {unknown[0]!r}")


def subdirs(directory: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``directory``."""
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def image_files(directory: Path) -> list[str]:
    """Sorted names of the visible image files (by suffix) directly in ``directory``."""
    with os.scandir(directory) as entries:
        return sorted(
            e.name
            for e in entries
            if not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
            and e.is_file()
        )


def class_of(name: str, where: str | os.PathLike) -> str:
    """:func:`canonical_name` of ``name``, with a DataError that names ``where`` it came from."""
    try:
        return canonical_name(name)
    except DataError:
        raise DataError(
            f"{where}: unknown class name {name!r}; expected one of {', '.join(CANONICAL)} "
            "or a common synonym (anger, sadness, happiness, ...)"
        ) from None


def canonical_order(names: Iterable[str]) -> list[str]:
    """The distinct canonical ``names`` sorted in :data:`CANONICAL` order."""
    return sorted(set(names), key=CANONICAL.index)


def folder_classes(directory: Path) -> dict[str, str]:
    """Map each class folder of ``directory`` to its canonical class name.

    Raises:
        DataError: an unknown class folder, or two folders naming the same class.
    """
    classes: dict[str, str] = {}
    for folder in subdirs(directory):
        cls = class_of(folder, directory / folder)
        if cls in classes.values():
            other = next(f for f, c in classes.items() if c == cls)
            raise DataError(f"{directory}: folders {other!r} and {folder!r} are both class {cls!r}")
        classes[folder] = cls
    return classes


def folder_sample_id(folder: str, name: str) -> str:
    """``<class folder>/<file stem>``: unique in a split even when two classes share a stem."""
    return f"{folder}/{os.path.splitext(name)[0]}"


def scan_class_folders(
    directory: Path,
    root: Path,
    class_names: Sequence[str],
    split: str,
    *,
    sample_id: Callable[[str, str], str],
    subject: Callable[[str, Path], str] | None = None,
) -> list[Sample]:
    """List ``directory/<class>/<image>`` as Samples (folders and files in sorted order).

    Args:
        directory: folder holding one sub-folder per class.
        root: dataset root; ``Sample.path`` is relative to it.
        class_names: the dataset's classes; a folder whose class is not among them is an error.
        split: stored in each Sample.
        sample_id: ``(class folder, file name) -> id``, unique within the split.
        subject: ``(file name, file path) -> subject id``; raises DataError when unparseable.

    Raises:
        DataError: unknown or duplicate class folder, a class outside ``class_names``, or two
            files with one sample id (both named).
    """
    index = {c: i for i, c in enumerate(class_names)}
    samples: list[Sample] = []
    first_path: dict[str, str] = {}
    for folder, cls in folder_classes(directory).items():
        if cls not in index:
            raise DataError(
                f"{directory / folder}: class {cls!r} is not one of this dataset's classes "
                f"{list(class_names)}"
            )
        label = index[cls]
        prefix = (directory / folder).relative_to(root).as_posix()
        for name in image_files(directory / folder):
            sid, path = sample_id(folder, name), f"{prefix}/{name}"
            if sid in first_path:
                raise DataError(
                    f"{root / path}: sample id {sid!r} is also that of {root / first_path[sid]}"
                )
            first_path[sid] = path
            samples.append(
                Sample(
                    sample_id=sid,
                    label=label,
                    path=path,
                    subject=subject(name, directory / folder / name) if subject else "",
                    split=split,
                )
            )
    return samples


def read_manifest(path: Path, required: Sequence[str]) -> tuple[list[str], Iterable[tuple]]:
    """Open a CSV manifest; return its stripped header and an iterator of (row number, line, row).

    Row numbers count data rows from 1 (the header is not a row); ``line`` is the file line. Blank
    lines are skipped. Each row is a dict keyed by the header.

    Raises:
        DataError: unreadable file, empty file, missing required columns, or a row with the wrong
            number of fields (raised while iterating).
    """
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read manifest ({exc.strerror})") from None
    reader = csv.reader(handle)
    try:
        header = [h.strip() for h in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    if not header:
        handle.close()
        raise DataError(f"{path}: empty manifest (no header row)")
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise DataError(f"{path}: missing column(s) {missing}; header is {header}")

    def rows():
        number = 0
        with handle:
            while True:
                try:
                    row = next(reader, None)
                except UnicodeDecodeError as exc:
                    # Decoding runs ahead in blocks, so no row number can be given.
                    raise DataError(f"{path}: not a readable CSV file ({exc})") from None
                except csv.Error as exc:
                    raise DataError(
                        f"{path}: row {number + 1} (line {reader.line_num}) is not readable CSV "
                        f"({exc})"
                    ) from None
                if row is None:
                    return
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                number += 1
                if len(row) != len(header):
                    raise DataError(
                        f"{path}: row {number} (line {reader.line_num}) has {len(row)} fields, "
                        f"expected {len(header)}"
                    )
                yield number, reader.line_num, dict(zip(header, row, strict=True))

    return header, rows()


def check_files_exist(samples: Sequence[Sample], root: Path, manifest: Path, rows: Sequence[int]):
    """Raise DataError naming the first manifest row whose file is missing under ``root``."""
    for sample, number in zip(samples, rows, strict=True):
        if not os.path.isfile(root / sample.path):
            raise DataError(
                f"{manifest}: row {number}: file {sample.path!r} not found under {root}"
            )


# --------------------------------------------------------------------------------------------
# imagefolder


class ImageFolderDataset(FERDataset):
    name = "imagefolder"


@register_dataset(
    "imagefolder",
    splits=("all", *SPLITS),
    layout=(
        "Image files in class folders: ROOT/<split>/<class>/*.{jpg,png,...} with split folders "
        "train, val and/or test, or ROOT/<class>/* without split folders (then the only split is "
        "'all'). Class folders are expression names in any common spelling (anger or angry, "
        "sadness or sad, ...); class_names are the classes found in any split, in canonical order."
    ),
)
def create_imagefolder(
    root, split, *, fold=None, num_folds=10, image_size=DEFAULT_IMAGE_SIZE, **kw
) -> FERDataset:
    """Build an ``imagefolder`` dataset; see the registered layout."""
    check_options("imagefolder", kw, fold=fold)
    root = check_root(root, "imagefolder")
    if not root.is_dir():
        raise DataError(f"imagefolder: root {root} is not a folder")
    split_dirs = [s for s in SPLITS if (root / s).is_dir()]
    if split_dirs:
        if split not in split_dirs:
            raise DataError(
                f"imagefolder: no split folder {split!r} under {root} (found {split_dirs})"
            )
        classes = canonical_order(c for s in split_dirs for c in folder_classes(root / s).values())
        directory = root / split
    else:
        if split != "all":
            raise DataError(
                f"imagefolder: no split folder {split!r} under {root}; it holds class folders "
                "only, so use split 'all'"
            )
        classes = canonical_order(folder_classes(root).values())
        directory = root
    samples = scan_class_folders(directory, root, classes, split, sample_id=folder_sample_id)
    return ImageFolderDataset(samples, classes, root=root, split=split, image_size=image_size)


# --------------------------------------------------------------------------------------------
# csv manifest


class ManifestDataset(FERDataset):
    name = "csv"


@register_dataset(
    "csv",
    splits=("all", *SPLITS),
    layout=(
        "A CSV manifest: ROOT is the .csv file or a folder holding manifest.csv. Columns path and "
        "label, optional subject and split. path is relative to the CSV's folder; label is an "
        "expression name (any common spelling). With a split column, split train/val/test keeps "
        "the matching rows and 'all' keeps every row; without one, the only split is 'all'. "
        "class_names are the labels found in the whole file, in canonical order."
    ),
)
def create_csv(
    root, split, *, fold=None, num_folds=10, image_size=DEFAULT_IMAGE_SIZE, check_files=True, **kw
) -> FERDataset:
    """Build a ``csv`` manifest dataset; see the registered layout.

    Args:
        check_files: check that every listed file exists (one stat per row).
    """
    check_options("csv", kw, fold=fold)
    root = check_root(root, "csv")
    manifest = root / "manifest.csv" if root.is_dir() else root
    if not manifest.is_file():
        raise DataError(f"csv: no manifest.csv in {root}")
    base = manifest.parent
    header, rows = read_manifest(manifest, ("path", "label"))
    has_split = "split" in header
    if split != "all" and not has_split:
        raise DataError(f"csv: {manifest} has no split column; use split 'all'")

    labels: list[str] = []
    kept: list[tuple[int, dict]] = []
    first_row: dict[str, int] = {}
    for number, _line, row in rows:
        path = row["path"].strip()
        if not path:
            raise DataError(f"{manifest}: row {number}: empty path")
        if path in first_row:
            raise DataError(
                f"{manifest}: row {number}: path {path!r} already listed in row {first_row[path]}"
            )
        first_row[path] = number
        labels.append(class_of(row["label"], f"{manifest}: row {number}"))
        row_split = row["split"].strip() if has_split else "all"
        if split == "all" or row_split == split:
            kept.append((number, {**row, "path": path, "label": labels[-1], "split": row_split}))
    if not labels:
        raise DataError(f"csv: {manifest} has no rows")
    classes = canonical_order(labels)
    index = {c: i for i, c in enumerate(classes)}

    samples = [
        Sample(
            sample_id=os.path.splitext(row["path"])[0].replace("\\", "/"),
            label=index[row["label"]],
            path=row["path"],
            subject=row.get("subject", "").strip(),
            split=row["split"],
        )
        for _number, row in kept
    ]
    if check_files:
        check_files_exist(samples, base, manifest, [n for n, _ in kept])
    return ManifestDataset(samples, classes, root=base, split=split, image_size=image_size)
