"""Make a run from embeddings produced by any other codebase (bring your own model)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ferembed.data.vocab import _ALIASES, CANONICAL
from ferembed.errors import DataError
from ferembed.runs.format import make_samples, write_run


def _load_array(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim != 2:
        raise DataError(f"{path}: {what} must be 2-D (N, D), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{path}: {what} must be numeric, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"{path}: {what} has NaN/Inf in {rows.size} row(s), first at row {rows[0]}")
    return arr.astype(np.float32, copy=False)


def _class_order(names: list[str]) -> list[str]:
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
    distance: str = "cosine",
    name: str | None = None,
    overwrite: bool = False,
    command: str = "",
) -> Path:
    """Write a run from an ``(N, D)`` .npy file and a labels CSV.

    The CSV has one row per embedding row, in the same order, with a ``label`` column (a class
    name, or an integer index into ``class_names``) and optional ``sample_id``, ``subject``,
    ``split``, ``path`` columns. ``logits`` is an optional ``(N, C)`` .npy with C classes.

    Raises:
        DataError: a one-line message naming the file and row that is wrong.
    """
    emb_path, lab_path = Path(embeddings), Path(labels)
    x = _load_array(emb_path, "embeddings")
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
    empty = np.flatnonzero((raw == "").to_numpy())
    if empty.size:
        raise DataError(f"{lab_path}: row {empty[0] + 2}: empty label")  # +2: header, 1-based
    if raw.str.fullmatch(r"-?\d+").all():
        idx = raw.astype(int).to_numpy()
        k = int(idx.max()) + 1
        names = class_names or [f"class_{i}" for i in range(k)]
        bad = np.flatnonzero((idx < 0) | (idx >= len(names)))
        if bad.size:
            raise DataError(
                f"{lab_path}: row {bad[0] + 2}: label {idx[bad[0]]} outside 0..{len(names) - 1}"
            )
        y = idx
    else:
        names = class_names or _class_order(raw.tolist())
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
    samples = make_samples(
        y,
        names,
        sample_ids=ids,
        paths=df["path"].tolist() if "path" in df.columns else None,
        subjects=df["subject"].tolist() if "subject" in df.columns else None,
        splits=df["split"].tolist() if "split" in df.columns else "",
        preds=preds,
    )
    return write_run(
        out,
        embeddings=x,
        samples=samples,
        class_names=names,
        logits=lg,
        source="import",
        distance=distance,
        command=command,
        name=name,
        extra={"embeddings": str(emb_path), "labels": str(lab_path)},
        overwrite=overwrite,
    )
