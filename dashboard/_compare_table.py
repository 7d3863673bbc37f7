"""The Compare page's tables: the complete headline-metric table (catalog titles, direction
arrows, CIs) and per-class recall deltas with paired intervals (greyed when not significant)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ferembed import _format
from ferembed.metrics.bootstrap import bootstrap_ci
from ferembed.metrics.catalog import HEADLINE, metric_info

#: Text colour of a per-class delta whose interval contains 0.
GREY = "color: #9a9a9a"


def shared_metrics(metrics: Sequence[dict[str, Any] | None]) -> list[str]:
    """The headline metrics (catalog order) that every run with a metrics.json has as a number."""
    have = [m for m in metrics if m]
    if not have:
        return []
    return [k for k in HEADLINE if all(_format.is_number(m.get(k)) for m in have)]


def headline_table(names: Sequence[str], metrics: Sequence[dict[str, Any] | None]) -> pd.DataFrame:
    """One row per :func:`shared_metrics` key: its catalog title, its direction arrow ("better")
    and per run ``value [low, high]`` (the run's 95% bootstrap CI)."""
    rows = []
    for key in shared_metrics(metrics):
        info = metric_info(key)
        row = {"metric": info.title, "better": info.arrow}
        for name, m in zip(names, metrics, strict=True):
            m = m or {}
            lo_hi = (m.get("ci") or {}).get(key) or (None, None)
            row[name] = _format.with_ci(m.get(key), lo_hi, ".4f", missing="-")
        rows.append(row)
    return pd.DataFrame(rows, columns=["metric", "better", *names])


def recall_delta_ci(
    n: int, to_correct: int, to_wrong: int, *, alpha: float = 0.05, n_boot: int = 1000
) -> tuple[float, float]:
    """Paired bootstrap interval of a class's recall delta (B - A) from its ``n`` samples, of
    which ``to_correct`` flip wrong → correct and ``to_wrong`` correct → wrong."""
    d = np.zeros(n)
    d[:to_correct] = 1.0
    d[to_correct : to_correct + to_wrong] = -1.0
    lo, hi = bootstrap_ci(d, n_boot=n_boot, alpha=alpha, seed=0)[:2]
    return float(lo), float(hi)


def per_class_deltas(
    res: dict[str, Any], labels_of_flips: dict[str, Sequence[str]]
) -> pd.DataFrame:
    """Per class: n, recall A / B / delta with its paired interval and whether it excludes 0,
    and the F1 and compactness deltas. ``labels_of_flips``: the class of each flipped sample,
    per direction (``to_correct``, ``to_wrong``)."""
    alpha = float(res.get("alpha", 0.05))
    up = pd.Series(list(labels_of_flips.get("to_correct", []))).value_counts()
    down = pd.Series(list(labels_of_flips.get("to_wrong", []))).value_counts()
    rows = []
    for cls, r in res["per_class"].items():
        lo, hi = recall_delta_ci(
            int(r["n"]), int(up.get(cls, 0)), int(down.get(cls, 0)), alpha=alpha
        )
        rows.append(
            {
                "class": cls,
                "n": int(r["n"]),
                "recall A": r["recall_a"],
                "recall B": r["recall_b"],
                "recall B - A": r["recall_delta"],
                "CI": f"[{lo:+.4f}, {hi:+.4f}]",
                "significant": bool(lo > 0 or hi < 0),
                "F1 B - A": r["f1_delta"],
                "compactness B - A": r["compactness_delta"],
            }
        )
    return pd.DataFrame(rows)


def grey_insignificant(table: pd.DataFrame):
    """A Styler greying the recall-delta cells whose interval contains 0."""
    sig = table["significant"].to_numpy()

    def colour(col: pd.Series) -> list[str]:
        return ["" if s else GREY for s in sig]

    return table.style.apply(colour, subset=["recall B - A", "CI"]).format(
        {c: "{:+.4f}" for c in ("recall B - A", "F1 B - A", "compactness B - A")}
        | {c: "{:.4f}" for c in ("recall A", "recall B")}
    )
