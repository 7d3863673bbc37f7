"""Headless export of many runs' metrics (``ferembed export RUN_DIR... --format F --out FILE``).

Reads each run's ``metrics.json`` (written by ``ferembed evaluate``), never a model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ferembed import _io
from ferembed.export.report import render_html, render_markdown
from ferembed.export.tables import collect_metrics, load_metrics, read_runs, tables
from ferembed.runs._outputs import check_output
from ferembed.runs.format import is_run_dir

__all__ = ["FORMATS", "EXPORT_SCHEMA", "collect_metrics", "export", "load_metrics"]

FORMATS = ("json", "csv", "parquet", "markdown", "html")
EXPORT_SCHEMA = "ferembed.export/1"


def _records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-safe dicts (NaN -> None)."""
    out = []
    for rec in df.astype(object).to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in rec.items()})  # fmt: skip
    return out


def export(
    run_dirs: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    format: str,
    out: str | os.PathLike,
    evaluate: bool = False,
    table: str = "long",
    overwrite: bool = False,
) -> Path:
    """Write a comparison of many runs to one file, atomically.

    Args:
        run_dirs: run directories (a directory that is not a run stands for the runs under it).
        format: one of :data:`FORMATS`:

            * ``json``: ``{schema, runs: [{run, path}], long: [...], wide: [...], metrics:
              {run: metrics.json}}`` (NaN as null);
            * ``csv`` / ``parquet``: the ``table`` (``"long"`` tidy table or ``"wide"`` summary);
            * ``markdown``: summary table (metrics x runs, with intervals) and per-class tables;
            * ``html``: a self-contained offline report with figures (plotly.js inlined once).
        out: output file.
        evaluate: compute a missing metrics.json with ``ferembed.runs.evaluate_run``
            instead of failing.
        table: ``"long"`` or ``"wide"`` for csv/parquet.
        overwrite: replace an existing ``out`` (atomically). ``out`` is never a run's file nor
            one of ``run_dirs``, whatever this says.

    Returns:
        The written path.

    Raises:
        ValueError: unknown format or table.
        FerembedError: a run without (or with a bad) metrics.json; an ``out`` that exists
            (without ``overwrite``), is a directory, or lies inside a run or one of ``run_dirs``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if table not in ("long", "wide"):
        raise ValueError(f"table must be 'long' or 'wide', got {table!r}")
    given = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    # Before reading (or evaluating) anything: the export never lands on an input or in a run
    # (a report inside a folder of runs, beside them, is fine).
    inputs = [("RUN_DIR", d) for d in given if is_run_dir(d)]
    out = check_output(out, inputs=inputs, overwrite=overwrite)
    runs = read_runs(given, evaluate=evaluate)
    long_df, wide_df = tables(runs)
    chosen = long_df if table == "long" else wide_df
    if format == "json":
        doc = {
            "schema": EXPORT_SCHEMA,
            "runs": [{"run": r.name, "path": str(r.path)} for r in runs],
            "long": _records(long_df),
            "wide": _records(wide_df),
            "metrics": {r.name: r.metrics for r in runs},
        }
        _io.write_text(out, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    elif format == "csv":
        _io.write_text(out, chosen.to_csv(index=False))
    elif format == "parquet":
        with _io.atomic_path(out) as tmp:
            chosen.to_parquet(tmp, index=False)
    elif format == "markdown":
        _io.write_text(out, render_markdown(runs, long_df, wide_df))
    else:
        _io.write_text(out, render_html(runs, long_df, wide_df))
    return out
