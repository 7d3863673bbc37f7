"""A short human-readable summary of a ``metrics.json`` dict (what ``ferembed evaluate`` prints)."""

from __future__ import annotations

from typing import Any

#: (key, label, is_fraction) in print order.
_ROWS = (
    ("head_accuracy", "head accuracy", True),
    ("mean_class_accuracy", "mean class accuracy", True),
    ("macro_f1", "macro F1", True),
    ("knn_accuracy", "kNN accuracy", True),
    ("centroid_accuracy", "nearest-centroid accuracy", True),
    ("precision_at_1", "precision@1", True),
    ("r_precision", "R-precision", True),
    ("map_at_r", "MAP@R", True),
    ("nmi", "NMI", False),
    ("ami", "AMI", False),
    ("silhouette", "silhouette", False),
    ("compactness", "compactness (to own centroid)", False),
    ("class_separation", "separation (to nearest centroid)", False),
    ("fisher_ratio", "Fisher ratio", False),
    ("davies_bouldin", "Davies-Bouldin", False),
    ("calinski_harabasz", "Calinski-Harabasz", False),
    ("nc1", "NC1", False),
)


def _fmt(value: float, fraction: bool) -> str:
    return f"{100 * value:6.2f}%" if fraction else f"{value:8.4g}"


def format_summary(metrics: dict[str, Any]) -> str:
    """Headline metrics with their bootstrap CIs, one per line."""
    ci = metrics.get("ci") or {}
    head = (
        f"{metrics.get('run', '?')}: N={metrics.get('n')} D={metrics.get('dim')} "
        f"classes={metrics.get('num_classes')} distance={metrics.get('distance')}"
    )
    lines = [head]
    for key, label, fraction in _ROWS:
        value = metrics.get(key)
        if value is None:
            continue
        text = f"  {label:26s} {_fmt(value, fraction)}"
        if key in ci and ci[key] is not None:
            lo, hi = ci[key]
            text += f"  [{_fmt(lo, fraction).strip()}, {_fmt(hi, fraction).strip()}]"
        lines.append(text)
    total = (metrics.get("timings_s") or {}).get("total")
    if total is not None:
        lines.append(f"  ({total:.1f} s; modes: {metrics.get('modes')})")
    return "\n".join(lines)
