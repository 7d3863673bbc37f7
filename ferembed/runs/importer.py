"""Make a run from embeddings produced by any other codebase (bring your own model)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ferembed.data.vocab import _ALIASES, CANONICAL
from ferembed.errors import DataError
from ferembed.runs._outputs import check_output
from ferembed.runs.format import SAMPLE_COLUMNS, make_samples, write_run

#: CSV columns that may hold each row's image path (the first present is used).
PATH_COLUMNS = ("path", "image")
#: Side of the thumbnails attached to imported runs.
THUMB_SIZE = 48


def _load_array(path: Path, what: str) -> np.ndarray:
    """An ``(N, D)`` real array from a ``.npy`` file as float32, checked after the cast.

    Refuses what would silently change the numbers: complex values (the imaginary part would be
    dropped), non-numeric or boolean dtypes, zero rows or zero width, and values that are or
    become NaN/Inf in float32 (float64 1e300 overflows to Inf).
    """
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for .npz archives
        arr.close()
        raise DataError(f"{path}: a .npz archive, expected one .npy array (np.save, not savez)")
    if arr.ndim != 2:
        raise DataError(f"{path}: {what} must be 2-D (N, D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: {what} is empty (shape {arr.shape}); need N >= 1 rows, D >= 1")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{path}: {what} is complex ({arr.dtype}); expected real numbers")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{path}: {what} must be numeric, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = np.asarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{path}: {what} has NaN/Inf in {rows.size} row(s) (as float32), first at row {rows[0]}"
        )
    return arr


#: Label cells that mean "missing" (pandas' NA spellings): refused, never taken as a class name.
_MISSING = frozenset({"nan", "na", "n/a", "<na>", "null", "none", "-nan", "#n/a"})


def _check_labels(raw: pd.Series, lab_path: Path) -> bool:
    """Refuse empty, missing (NaN) and mixed integer/name labels; True when all are integers."""
    empty = np.flatnonzero((raw == "").to_numpy())
    if empty.size:
        raise DataError(f"{lab_path}: row {empty[0] + 2}: empty label")  # +2: header, 1-based
    missing = np.flatnonzero(raw.str.lower().isin(_MISSING).to_numpy())
    if missing.size:
        r = missing[0]
        raise DataError(f"{lab_path}: row {r + 2}: missing label {raw.iloc[r]!r}")
    numeric = raw.str.fullmatch(r"-?\d+").to_numpy()
    if numeric.any() and not numeric.all():
        minority = numeric if numeric.sum() <= (~numeric).sum() else ~numeric
        r = int(np.flatnonzero(minority)[0])
        raise DataError(
            f"{lab_path}: row {r + 2}: label {raw.iloc[r]!r} mixes class indices and class "
            "names in one column; use one kind"
        )
    return bool(numeric.all())


def _check_class_names(names: list[str], where: str) -> None:
    """Refuse empty or duplicate class names (a duplicate would merge or drop classes)."""
    seen: set[str] = set()
    for name in names:
        if not str(name).strip():
            raise DataError(f"{where}: empty class name in {names}")
        if name in seen:
            raise DataError(f"{where}: duplicate class name {name!r} in {names}")
        seen.add(name)


def class_order(names: list[str]) -> list[str]:
    """Canonical expression names keep the canonical order; anything else is sorted."""
    uniq = sorted(set(names))
    if all(n.strip().lower() in _ALIASES for n in uniq):
        canon = {n: _ALIASES[n.strip().lower()] for n in uniq}
        if len(set(canon.values())) == len(uniq):
            return sorted(uniq, key=lambda n: CANONICAL.index(canon[n]))
    return uniq


def import_embeddings(
    embeddings: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike,
    *,
    class_names: list[str] | None = None,
    logits: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    distance: str = "cosine",
    name: str | None = None,
    overwrite: bool = False,
    command: str = "",
) -> Path:
    """Write a run from an ``(N, D)`` .npy file and a labels CSV.

    The CSV has one row per embedding row, in the same order, with a ``label`` column (a class
    name, or an integer index into ``class_names``) and optional ``sample_id``, ``subject``,
    ``split``, ``path`` columns. ``logits`` is an optional ``(N, C)`` .npy with C classes.

    Faces: when the CSV has a ``path`` (or ``image``) column, each row's image is read into a
    48x48 grayscale thumbnail; relative paths are resolved against ``images`` (a folder) or, without
    it, against the CSV's folder (a ``path`` column that does not resolve there is kept, without
    thumbnails, and a note). Any other column (pose, occlusion, ...) is kept as a string
    metadata column of the samples table and listed in run.json ``metadata_columns``.

    Raises:
        DataError: a one-line message naming the file and row that is wrong.
    """
    emb_path, lab_path = Path(embeddings), Path(labels)
    # --out is replaced whole with overwrite: it must hold none of the inputs (checked first).
    inputs = [("--embeddings", embeddings), ("--labels", labels)]
    inputs += [("--logits", logits), ("--images", images)]
    check_output(out, inputs=inputs, overwrite=overwrite, kind="run")
    x = _load_array(emb_path, "embeddings")
    if class_names is not None:
        _check_class_names(list(class_names), "--classes")
    if lab_path.is_dir():
        raise DataError(f"{lab_path}: is a directory, expected a labels CSV")
    try:
        df = pd.read_csv(lab_path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{lab_path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{lab_path}: not a readable CSV ({exc})") from None
    if "label" not in df.columns:
        raise DataError(f"{lab_path}: no 'label' column (columns: {list(df.columns)})")
    if len(df) != x.shape[0]:
        raise DataError(f"{lab_path}: {len(df)} rows but {emb_path} has {x.shape[0]} embeddings")
    raw = df["label"].str.strip()
    if _check_labels(raw, lab_path):
        try:
            idx = raw.astype(np.int64).to_numpy()
        except (OverflowError, ValueError):
            raise DataError(f"{lab_path}: a class index does not fit in 64 bits") from None
        k = int(idx.max()) + 1
        names = class_names or [f"class_{i}" for i in range(k)]
        bad = np.flatnonzero((idx < 0) | (idx >= len(names)))
        if bad.size:
            raise DataError(
                f"{lab_path}: row {bad[0] + 2}: label {idx[bad[0]]} outside 0..{len(names) - 1}"
            )
        y = idx
    else:
        names = class_names or class_order(raw.tolist())
        lookup = {n: i for i, n in enumerate(names)}
        unknown = np.flatnonzero(~raw.isin(lookup).to_numpy())
        if unknown.size:
            r = unknown[0]
            raise DataError(f"{lab_path}: row {r + 2}: unknown class name {raw.iloc[r]!r}")
        y = raw.map(lookup).to_numpy()
    ids = df["sample_id"].tolist() if "sample_id" in df.columns else None
    if ids is not None:
        dup = pd.Series(ids).duplicated()
        if dup.any():
            r = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataError(f"{lab_path}: row {r + 2}: duplicate sample_id {ids[r]!r}")
    lg = None
    preds = None
    if logits is not None:
        lg = _load_array(Path(logits), "logits")
        if lg.shape != (x.shape[0], len(names)):
            raise DataError(
                f"{logits}: shape {lg.shape}, expected ({x.shape[0]}, {len(names)}) for the classes"
            )
        preds = lg.argmax(1)
    path_col = next((c for c in PATH_COLUMNS if c in df.columns), None)
    if images is not None and path_col is None:
        raise DataError(f"{lab_path}: --images needs a 'path' or 'image' column with each file")
    thumbs = None
    root = Path(images) if images is not None else lab_path.parent
    if path_col is not None and (images is not None or path_col == "image" or _resolves(df, root)):
        thumbs = _thumbnails(df[path_col], root, lab_path)
    elif path_col is not None:
        print(
            f"note: {lab_path}: the 'path' column is not relative to the CSV's folder; "
            "pass --images ROOT to attach face thumbnails",
            file=sys.stderr,
        )
    reserved = {"label", *SAMPLE_COLUMNS, *PATH_COLUMNS}
    samples = make_samples(
        y,
        names,
        sample_ids=ids,
        paths=df[path_col].tolist() if path_col else None,
        subjects=df["subject"].tolist() if "subject" in df.columns else None,
        splits=df["split"].tolist() if "split" in df.columns else "",
        preds=preds,
        metadata={c: df[c].tolist() for c in df.columns if c not in reserved},
    )
    extra = {"embeddings": str(emb_path), "labels": str(lab_path)}
    if thumbs is not None:
        extra["images"] = str(images) if images is not None else str(lab_path.parent)
    return write_run(
        out,
        embeddings=x,
        samples=samples,
        class_names=names,
        logits=lg,
        thumbs=thumbs,
        source="import",
        distance=distance,
        command=command,
        name=name,
        extra=extra,
        overwrite=overwrite,
    )


def _resolves(df: pd.DataFrame, root: Path) -> bool:
    """Whether the first row's path names a file under ``root`` (a path column may be relative
    to a dataset root elsewhere: then thumbnails need ``--images``)."""
    return bool(len(df)) and (root / str(df["path"].iloc[0])).is_file()


def _thumbnails(paths: pd.Series, root: Path, lab_path: Path) -> np.ndarray:
    """(N, 48, 48) uint8 faces of the CSV's image paths (relative ones resolved against root)."""
    from ferembed.data._base import read_image

    if not root.is_dir():
        raise DataError(f"--images {root}: not a directory")
    empty = np.flatnonzero((paths.str.strip() == "").to_numpy())
    if empty.size:
        raise DataError(f"{lab_path}: row {empty[0] + 2}: empty image path")
    return np.stack([read_image(root / p, THUMB_SIZE) for p in paths.tolist()])
