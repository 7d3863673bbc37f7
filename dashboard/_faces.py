"""The faces behind an aggregate: the samples of a confusion cell and a class's hardest samples.

A confusion cell (true class, predicted class) of a prediction source holds the samples labelled
with the one class and predicted as the other by that source, the same samples ``ferembed
evaluate`` counted: the head's argmax (``Run.predictions("head")``), the kNN vote (queries only)
and the nearest centroid, both from ``per_sample.parquet`` (``Run.load_per_sample``). A class's
hardest samples are ranked by what the run has (:data:`HARDNESS`). Nothing here draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dashboard._data import per_sample
from ferembed.runs import Run
from ferembed.runs._files import (
    PS_CENTROID_PRED,
    PS_DISTANCE_TO_CENTROID,
    PS_LABEL_DISAGREEMENT,
)

#: Prediction sources of the confusion matrices (metrics.json ``confusion``) -> menu label.
SOURCES = {"head": "Classifier head", "knn": "kNN vote", "centroid": "Nearest centroid"}
#: How a class's hardest faces are ranked, in order of preference when the run has the input.
HARDNESS = {
    "probability": "lowest probability of the true class under the classifier head",
    "centroid": "farthest from the class centroid (distance_to_centroid)",
    "disagreement": "most of the k nearest neighbours voting for another label",
    "order": "file order (the run has no logits and no per-sample metrics)",
}


def predicted_by(run: Run, source: str) -> np.ndarray:
    """(N,) int64 class predicted for each sample by ``source`` (a key of :data:`SOURCES`);
    -1 where that source made no prediction (a kNN non-query, no metrics, no head)."""
    if source == "head":
        return run.predictions("head")
    ps = per_sample(run)
    if source == "knn":
        return run.predictions("knn", per_sample=ps) if ps is not None else _none(run)
    if source != "centroid":
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
    if ps is None or PS_CENTROID_PRED not in ps.columns:
        return _none(run)
    return ps[PS_CENTROID_PRED].fillna(-1).to_numpy(dtype=np.int64)


def _none(run: Run) -> np.ndarray:
    return np.full(run.n, -1, np.int64)


def cell_rows(run: Run, source: str, true_class: str, pred_class: str) -> np.ndarray:
    """Rows of ``run`` labelled ``true_class`` and predicted ``pred_class`` by ``source`` (in
    file order); empty when the run lacks either class."""
    names = list(run.class_names)
    if true_class not in names or pred_class not in names:
        return np.zeros(0, np.int64)
    pred = predicted_by(run, source)
    hit = (np.asarray(run.labels) == names.index(true_class)) & (pred == names.index(pred_class))
    return np.flatnonzero(hit)


def hardness_kinds(run: Run) -> list[str]:
    """The keys of :data:`HARDNESS` this run can be ranked by (``"order"`` always last)."""
    kinds = ["probability"] if run.logits is not None else []
    ps = per_sample(run)
    for kind, col in (
        ("centroid", PS_DISTANCE_TO_CENTROID),
        ("disagreement", PS_LABEL_DISAGREEMENT),
    ):
        if ps is not None and col in ps.columns and ps[col].notna().any():
            kinds.append(kind)
    return [*kinds, "order"]


def hardest_rows(
    run: Run, class_name: str, *, prefer: Sequence[str] = ("probability", "centroid")
) -> tuple[np.ndarray, np.ndarray, str]:
    """The samples labelled ``class_name``, hardest first.

    Ranked by the first kind of :data:`HARDNESS` in ``prefer`` the run has, else the first it
    has at all: ``"probability"`` (softmax of the logits at the true class, ascending),
    ``"centroid"`` (distance to the class centroid, descending), ``"disagreement"`` (kNN label
    disagreement, descending), ``"order"``. Ties keep file order.

    Returns:
        (M,) rows, (M,) scores (NaN for ``"order"``) and the kind used.
    """
    names = list(run.class_names)
    if class_name not in names:
        return np.zeros(0, np.int64), np.zeros(0), "order"
    c = names.index(class_name)
    rows = np.flatnonzero(np.asarray(run.labels) == c)
    have = hardness_kinds(run)
    kind = next((k for k in prefer if k in have), have[0])
    if kind == "probability":
        score = _true_class_probability(np.asarray(run.logits, dtype=np.float64)[rows], c)
        key = score
    elif kind in ("centroid", "disagreement"):
        col = PS_DISTANCE_TO_CENTROID if kind == "centroid" else PS_LABEL_DISAGREEMENT
        score = per_sample(run)[col].to_numpy(dtype=float)[rows]
        key = -np.nan_to_num(score, nan=-np.inf)  # largest first, missing last
    else:
        return rows, np.full(len(rows), np.nan), kind
    order = np.argsort(key, kind="stable")
    return rows[order], score[order], kind


def _true_class_probability(logits: np.ndarray, c: int) -> np.ndarray:
    """(M,) softmax probability of class ``c`` for (M, K) logits (max-shifted, stable)."""
    if not len(logits):
        return np.zeros(0)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e[:, c] / e.sum(axis=1)


def point_custom(point: dict, fig=None) -> list | None:
    """The ``customdata`` of a point of a Plotly selection event as a list of ints: the event's
    own (Streamlit passes a typed array as ``{"0": v0, "1": v1}``), else looked up in ``fig``
    (the figure drawn) by curve and point index; None when neither has it."""
    custom = point.get("customdata")
    if custom is None and fig is not None:
        try:
            curve = int(point["curve_number"])
            index = int(point.get("point_index", point.get("point_number")))
            custom = fig.data[curve].customdata[index]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    if isinstance(custom, dict):  # a typed array arrives as {"0": v0, "1": v1, ...}
        try:
            custom = [custom[k] for k in sorted(custom, key=int)]
        except (TypeError, ValueError):
            return None
    if custom is None or isinstance(custom, (str, bytes)):
        return None
    try:
        return [int(v) for v in custom]
    except (TypeError, ValueError):
        return None
