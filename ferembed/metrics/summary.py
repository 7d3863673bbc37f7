"""A short human-readable summary of a ``metrics.json`` dict (what ``ferembed evaluate`` prints).

Labels and whether a metric is a fraction come from the metric catalog; numbers become text in
``ferembed._format``.
"""

from __future__ import annotations

from typing import Any

from ferembed import _format
from ferembed.metrics.catalog import CATALOG

#: The metrics printed, in print order.
SUMMARY_KEYS = (
    "head_accuracy",
    "mean_class_accuracy",
    "macro_f1",
    "knn_accuracy",
    "centroid_accuracy",
    "precision_at_1",
    "r_precision",
    "map_at_r",
    "precision_at_1_balanced",
    "r_precision_balanced",
    "map_at_r_balanced",
    "nmi",
    "ami",
    "silhouette",
    "compactness",
    "class_separation",
    "fisher_ratio",
    "davies_bouldin",
    "calinski_harabasz",
    "nc1",
)


def _value(value: float, fraction: bool) -> str:
    if fraction:
        return _format.number(value, "6.2f", percent=True, percent_sign=True)
    return _format.number(value, "8.4g")


def format_summary(metrics: dict[str, Any]) -> str:
    """Headline metrics with their bootstrap CIs, one per line."""
    ci = metrics.get("ci") or {}
    head = (
        f"{metrics.get('run', '?')}: N={metrics.get('n')} D={metrics.get('dim')} "
        f"classes={metrics.get('num_classes')} distance={metrics.get('distance')}"
    )
    lines = [head]
    for key in SUMMARY_KEYS:
        value = metrics.get(key)
        if value is None:
            continue
        info = CATALOG[key]
        text = f"  {info.label:26s} {_value(value, info.fraction)}"
        if key in ci and ci[key] is not None:
            lo, hi = ci[key]
            text += f"  [{_value(lo, info.fraction).strip()}, {_value(hi, info.fraction).strip()}]"
        lines.append(text)
    total = (metrics.get("timings_s") or {}).get("total")
    if total is not None:
        lines.append(f"  ({total:.1f} s; modes: {metrics.get('modes')})")
    return "\n".join(lines)
