"""Checks of a run's class list and class-index columns, used by ``load_run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ferembed.errors import RunFormatError


def check_class_list(names: list, mpath: Path) -> None:
    """class_names: a list of distinct, non-empty strings (a duplicate would merge two classes)."""
    if not all(isinstance(x, str) and x.strip() for x in names):
        raise RunFormatError(f"{mpath}: class_names must be non-empty strings, got {names!r}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RunFormatError(f"{mpath}: duplicate class name {name!r} in class_names")
        seen.add(name)


def check_index_column(
    samples: pd.DataFrame, col: str, spath: Path, c: int, *, allow_none: bool
) -> None:
    """A class-index column: integers in ``0..c-1`` (``-1`` = none, for ``pred``), no NaN.

    Raises:
        RunFormatError: naming the file, the column and the first bad row.
    """
    values = samples[col]
    if not (pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values)):
        raise RunFormatError(f"{spath}: column {col!r} must hold integers, got {values.dtype}")
    missing = values.isna().to_numpy()
    if missing.any():
        r = int(np.flatnonzero(missing)[0])
        raise RunFormatError(f"{spath}: row {r}: {col} is missing (NaN)")
    v = values.to_numpy(dtype=np.float64)
    lo = -1 if allow_none else 0
    bad = (v != np.round(v)) | (v < lo) | (v >= c)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        valid = f"-1 (none) or 0..{c - 1}" if allow_none else f"0..{c - 1}"
        raise RunFormatError(f"{spath}: row {r}: {col} {v[r]:g} outside {valid}")
