"""Many runs' ``metrics.json`` as tables: a tidy long table and a wide summary.

The long table has one row per (run, metric, class) with columns ``run, metric, class, value,
ci_low, ci_high``; ``class`` is ``""`` for overall metrics, ``value`` is NaN for a metric that
does not apply (``null`` in metrics.json), and the interval is NaN where none was computed. It
holds

* the headline scalars at the top level of metrics.json, with their ``ci`` intervals;
* every numeric entry of ``per_class`` (``class`` = the class name);
* the retrieval curves, one metric per k (``precision_at_5``, ``recall_at_10``, ...);
* the accuracy / UAR / macro-F1 of every classifier in ``classification`` (``knn_macro_f1``,
  ``centroid_mean_class_accuracy``, ...) not already at the top level;
* the numeric entries of ``identity`` (``identity_<key>``).

The wide summary has one row per run: ``run, path, n, num_classes, distance`` and one column per
overall metric, plus ``<metric>_ci_low`` / ``<metric>_ci_high`` where an interval exists. It is
exactly the long table's overall rows, pivoted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferembed.errors import FerembedError
from ferembed.metrics.catalog import HEADLINE
from ferembed.runs import METRICS_FILE, evaluate_run, find_runs, is_run_dir, load_run

__all__ = ["HEADLINE", "LONG_COLUMNS", "RunMetrics", "collect_metrics", "load_metrics", "tables"]

METRICS_SCHEMA_PREFIX = "ferembed.metrics/"
LONG_COLUMNS = ["run", "metric", "class", "value", "ci_low", "ci_high"]
_IDENTIFICATION = {
    "schema", "run", "n", "dim", "num_classes", "class_names", "distance", "created",
    "ferembed_version", "reference",
}  # fmt: skip
_INFO_COLUMNS = ["run", "path", "n", "num_classes", "distance"]


@dataclass
class RunMetrics:
    """One run's metrics as read from disk.

    Attributes:
        name: unique display name among the runs being collected.
        path: the run directory.
        metrics: the parsed metrics.json.
    """

    name: str
    path: Path
    metrics: dict[str, Any]


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _num(v) -> float:
    return float(v) if _is_number(v) else math.nan


def _expand(run_dirs: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories; a directory that is not a run stands for the runs found under it."""
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    out: list[Path] = []
    for d in run_dirs:
        p = Path(d)
        if is_run_dir(p):
            out.append(p)
            continue
        found = find_runs(p) if p.is_dir() else []
        if not found:
            raise FerembedError(f"{p}: not a run directory and no runs found under it")
        out.extend(found)
    if not out:
        raise FerembedError("no run directories given")
    return out


def load_metrics(path: str | os.PathLike, *, evaluate: bool = False) -> dict[str, Any]:
    """A run's metrics.json, validated.

    Args:
        path: the run directory.
        evaluate: when metrics.json is missing or stale (a file it was computed from has changed),
            compute it with ``ferembed.runs.evaluate_run`` (all metrics, the run's distance)
            instead of failing.

    Raises:
        FerembedError: missing or stale (telling to run ``ferembed evaluate``), unreadable or of
            another schema.
    """
    run = load_run(path, check_arrays=False)
    mpath = run.metrics_path
    if not mpath.exists():
        if not evaluate:
            raise FerembedError(
                f"{run.path}: no {METRICS_FILE}; run `ferembed evaluate {run.path}` first "
                "(or export with evaluate=True / --evaluate to compute it now)"
            )
        evaluate_run(run.path)
    elif mpath.is_file() and run.metrics_status()[0] == "stale":
        # Metrics of files that have since changed (re-embedded, truncated, edited) are not
        # this run's metrics: recompute them, or say why not.
        if not evaluate:
            raise FerembedError(
                f"{mpath}: stale ({run.metrics_status()[1]}); run `ferembed evaluate "
                f"{run.path}` again (or export with evaluate=True / --evaluate)"
            )
        evaluate_run(run.path)
    try:
        metrics = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FerembedError(f"{mpath}: invalid JSON ({exc})") from None
    schema = metrics.get("schema", "") if isinstance(metrics, dict) else None
    if not isinstance(schema, str) or not schema.startswith(METRICS_SCHEMA_PREFIX):
        raise FerembedError(f"{mpath}: schema {schema!r}, expected {METRICS_SCHEMA_PREFIX}1")
    return metrics


def read_runs(run_dirs, *, evaluate: bool = False) -> list[RunMetrics]:
    """Load the metrics of every run, giving each a unique name (``name``, ``name#2``, ...)."""
    runs, seen = [], {}
    for p in _expand(run_dirs):
        m = load_metrics(p, evaluate=evaluate)
        base = str(m.get("run") or p.name)
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        runs.append(RunMetrics(name=name, path=p, metrics=m))
    return runs


def _long_rows(name: str, m: dict[str, Any]) -> list[tuple]:
    rows: list[tuple] = []
    ci = m.get("ci") or {}

    def add(metric, cls, value, interval=None):
        lo, hi = (
            interval if isinstance(interval, (list, tuple)) and len(interval) == 2 else (None, None)
        )
        rows.append((name, metric, cls, _num(value), _num(lo), _num(hi)))

    top = set()
    for key, value in m.items():
        if key in _IDENTIFICATION or not (value is None or _is_number(value)):
            continue
        add(key, "", value, ci.get(key))
        top.add(key)
    for cls, entry in (m.get("per_class") or {}).items():
        for key, value in (entry or {}).items():
            if _is_number(value) or value is None:
                add(key, str(cls), value)
    retrieval = m.get("retrieval") or {}
    ks = retrieval.get("k_values") or []
    for key, values in retrieval.items():
        if key == "k_values" or not isinstance(values, list) or len(values) != len(ks):
            continue
        stem = key[: -len("_at_k")] if key.endswith("_at_k") else key
        for k, v in zip(ks, values, strict=True):
            metric = f"{stem}_at_{k}"
            if metric not in top and (v is None or _is_number(v)):
                add(metric, "", v, ci.get(metric))
    for source, entry in (m.get("classification") or {}).items():
        if not isinstance(entry, dict):
            continue
        for key in ("accuracy", "mean_class_accuracy", "macro_f1"):
            metric = f"{source}_{key}"
            if key in entry and metric not in top:
                add(metric, "", entry[key], ci.get(metric))
    for key, value in (m.get("identity") or {}).items():
        if _is_number(value) or value is None:
            add(f"identity_{key}", "", value, ci.get(f"identity_{key}"))
    return rows


def _metric_order(metrics: Iterable[str]) -> list[str]:
    metrics = list(dict.fromkeys(metrics))
    head = [k for k in HEADLINE if k in metrics]
    return head + sorted(k for k in metrics if k not in HEADLINE)


def tables(runs: list[RunMetrics]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(long_df, wide_df)`` of already loaded runs (see the module docstring)."""
    rows = [r for run in runs for r in _long_rows(run.name, run.metrics)]
    long_df = pd.DataFrame(rows, columns=LONG_COLUMNS).astype(
        {
            "run": "string",
            "metric": "string",
            "class": "string",
            "value": "float64",
            "ci_low": "float64",
            "ci_high": "float64",
        }
    )
    overall = long_df[long_df["class"] == ""]
    order = _metric_order(overall["metric"].tolist())
    with_ci = [m for m in order if overall.loc[overall["metric"] == m, "ci_low"].notna().any()]
    records = []
    for run in runs:
        m = run.metrics
        rec: dict[str, Any] = {
            "run": run.name,
            "path": str(run.path),
            "n": m.get("n"),
            "num_classes": m.get("num_classes", len(m.get("class_names") or []) or None),
            "distance": m.get("distance"),
        }
        sub = overall[overall["run"] == run.name].set_index("metric")
        for metric in order:
            rec[metric] = sub["value"].get(metric, math.nan)
        for metric in with_ci:
            rec[f"{metric}_ci_low"] = sub["ci_low"].get(metric, math.nan)
            rec[f"{metric}_ci_high"] = sub["ci_high"].get(metric, math.nan)
        records.append(rec)
    columns = _INFO_COLUMNS + order + [f"{m}_ci_{s}" for m in with_ci for s in ("low", "high")]
    wide_df = pd.DataFrame.from_records(records, columns=columns)
    wide_df[order] = wide_df[order].astype("float64")
    return long_df, wide_df


def collect_metrics(
    run_dirs: Iterable[str | os.PathLike] | str | os.PathLike, *, evaluate: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the metrics.json of many runs into a tidy long table and a wide summary.

    Args:
        run_dirs: run directories (a directory that is not a run stands for all runs under it).
        evaluate: compute a missing metrics.json with ``ferembed.runs.evaluate_run`` instead
            of raising.

    Returns:
        ``(long_df, wide_df)``, see the module docstring.

    Raises:
        FerembedError: a run without metrics.json (and ``evaluate=False``), or with an unreadable
            one; a path that holds no run.
    """
    return tables(read_runs(run_dirs, evaluate=evaluate))
