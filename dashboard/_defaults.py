"""Sensible defaults for the sidebar and the pages that pair runs (no Streamlit here).

- Runs are grouped by the dataset and split they embed (``run.json``'s ``dataset.name`` /
  ``dataset.split``): only runs of one group share their samples.
- The reference run (first in the selection: alignments, differences and comparisons are made
  against it) is the one the user marks, else a softmax run (the usual baseline of a loss
  comparison), else the first run.
- The default selection is the reference's group, reference first, plus the runs whose manifest
  names no dataset (imported or logged runs: they may belong to any group, and the pages that
  pair runs warn when they do not share samples).
- Two runs "share samples" when most sample ids of the smaller one are in the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The group of a run whose manifest names neither dataset nor split.
UNKNOWN_GROUP = "?/?"
#: Below this fraction of shared sample ids two runs are flagged as not comparable.
MIN_SHARED = 0.5


def group_of(manifest: dict[str, Any]) -> str:
    """``"dataset/split"`` of a run's manifest (``"?"`` for what it does not say)."""
    data = manifest.get("dataset") if isinstance(manifest.get("dataset"), dict) else {}
    return f"{data.get('name') or '?'}/{data.get('split') or '?'}"


def _is_softmax(name: str, manifest: dict[str, Any]) -> bool:
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    return "softmax" in name.lower() or str(model.get("loss") or "").lower() == "softmax"


def pick_reference(
    runs: Sequence[tuple[str, str, dict[str, Any]]], *, marked: str | None = None
) -> str | None:
    """The key of the reference run.

    Args:
        runs: ``(key, name, manifest)`` per run, in display order.
        marked: the key the user marked as reference, if any (wins when present).

    Returns:
        ``marked`` when it is among ``runs``; else the softmax run (by name, else by loss) of the
        largest group (ties: the name closest to "softmax", then the key); else the first key;
        None when there are no runs.
    """
    keys = [k for k, _, _ in runs]
    if marked is not None and marked in keys:
        return marked
    if not runs:
        return None
    sizes: dict[str, int] = {}
    for _, _, m in runs:
        sizes[group_of(m)] = sizes.get(group_of(m), 0) + 1
    candidates = [(k, n, m) for k, n, m in runs if _is_softmax(n, m)]
    if not candidates:
        return keys[0]
    best = min(
        candidates,
        key=lambda r: (-sizes[group_of(r[2])], "softmax" not in r[1].lower(), len(r[1]), r[0]),
    )
    return best[0]


def default_selection(
    runs: Sequence[tuple[str, str, dict[str, Any]]], *, limit: int, marked: str | None = None
) -> list[str]:
    """The reference's group (and the runs of no known group), reference first then the others
    in display order, at most ``limit`` keys (see :func:`pick_reference` for ``runs`` and
    ``marked``)."""
    ref = pick_reference(runs, marked=marked)
    if ref is None:
        return []
    group = next(group_of(m) for k, _, m in runs if k == ref)
    rest = [k for k, _, m in runs if k != ref and group_of(m) in (group, UNKNOWN_GROUP)]
    return [ref, *rest][:limit]


def order_with_reference(keys: Sequence[str], reference: str) -> list[str]:
    """``keys`` with ``reference`` moved to the front (added when absent)."""
    return [reference, *[k for k in keys if k != reference]]


def shared_fraction(ids_a: np.ndarray, ids_b: np.ndarray) -> float:
    """Fraction of the smaller run's distinct sample ids that the other run holds too."""
    a, b = np.unique(np.asarray(ids_a, str)), np.unique(np.asarray(ids_b, str))
    if min(a.size, b.size) == 0:
        return 0.0
    return float(np.intersect1d(a, b, assume_unique=True).size / min(a.size, b.size))
