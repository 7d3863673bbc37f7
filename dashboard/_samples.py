"""Per-sample annotations of a run for plots and face captions (cached).

Labels, predictions, correctness, subject, label-noise score and any metadata column an imported
run carries. Predictions and scores come from ``Run.predictions`` and ``Run.load_per_sample``
(``ferembed.runs`` owns their column names); nothing here reads a file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard._data import manifest_stamp, per_sample, per_sample_stamp, run_key
from dashboard._safe import check_values, plotly_text
from ferembed import projection as _projection
from ferembed.runs import Run
from ferembed.runs._files import PS_KNN_PRED, PS_LABEL_DISAGREEMENT

#: The colourings every run has: annotation column -> menu label.
COLOR_BY = {
    "label": "Label",
    "pred": "Prediction",
    "correct": "Correctness",
    "subject": "Subject",
    "noise": "Label-noise score",
}
#: Prefix of the annotation columns that hold a run's extra metadata (imported runs).
META_PREFIX = "meta:"


def color_choices(runs: list[Run]) -> dict[str, str]:
    """:data:`COLOR_BY` plus one category per metadata column of the runs' samples tables
    (every column beyond the run schema, e.g. an imported run's ``age`` or ``source``)."""
    choices = dict(COLOR_BY)
    for run in runs:
        for col in run.metadata_columns:
            choices.setdefault(f"{META_PREFIX}{col}", str(col))
    return choices


def predictions(run: Run) -> tuple[np.ndarray, str]:
    """(N,) predicted class per sample and its source: ``"head"``, ``"kNN"`` or ``"none"``.

    The head's argmax when the run has one; otherwise the kNN vote ``ferembed evaluate`` wrote.
    -1 where there is no prediction.
    """
    pred = run.predictions("head")
    if (pred >= 0).any():
        return pred, "head"
    ps = per_sample(run)
    if ps is not None and PS_KNN_PRED in ps.columns:
        return run.predictions("knn", per_sample=ps), "kNN"
    return pred, "none"


def noise_score(run: Run) -> np.ndarray | None:
    """(N,) label-noise score (the kNN label disagreement of ``ferembed evaluate``), or None."""
    ps = per_sample(run)
    if ps is None or PS_LABEL_DISAGREEMENT not in ps.columns:
        return None
    return ps[PS_LABEL_DISAGREEMENT].to_numpy(dtype=float)


def annotations(run: Run) -> pd.DataFrame:
    """Per-sample table for plots and face captions: sample_id, label, pred, correct, subject,
    noise, and ``meta:<column>`` per metadata column (N rows, the run's order)."""
    key = (run_key(run), manifest_stamp(run), per_sample_stamp(run))
    return _annotations(key, run)


@st.cache_data(max_entries=64, show_spinner=False)
def _annotations(key: tuple, _run: Run) -> pd.DataFrame:
    del key
    names = np.asarray(_run.class_names + ["-"], dtype=object)  # index -1 -> "-"
    pred, source = predictions(_run)
    labels = _run.labels
    # The kNN votes come from per_sample.parquet, read after the run was loaded: checked too.
    check_values(labels, pred, len(_run.class_names), what=f"{_run.path} ({source} predictions)")
    noise = noise_score(_run)
    s = _run.samples
    table = pd.DataFrame(
        {
            "sample_id": _run.sample_ids,
            "label": names[labels],
            "pred": names[pred],
            "pred_source": source,
            "correct": np.where(
                pred < 0, "no prediction", np.where(pred == labels, "correct", "wrong")
            ),
            "subject": s["subject"].astype(str).replace("", "-").to_numpy(),
            "noise": noise if noise is not None else np.full(len(s), np.nan),
        }
    )
    for col in _run.metadata_columns:  # categories; a missing value is "-"
        values = s[col].astype(object).where(s[col].notna(), "-").astype(str)
        table[f"{META_PREFIX}{col}"] = values.replace("", "-").to_numpy()
    return table


def projection_panel(run: Run, proj: _projection.Projection, color_by: str, i: int) -> dict:
    """The data of one run's subplot for ``_charts.projection_chart`` (cached; see there)."""
    key = (
        run_key(run),
        manifest_stamp(run),
        per_sample_stamp(run),
        tuple(sorted(proj.params.items())),
        proj.aligned_to,
    )
    return _projection_panel(key, color_by, i, run, proj)


@st.cache_data(max_entries=64, show_spinner=False)
def _projection_panel(
    key: tuple, color_by: str, i: int, _run: Run, _proj: _projection.Projection
) -> dict:
    del key
    ann = annotations(_run).iloc[_proj.indices]

    def text(col: pd.Series) -> pd.Series:  # user text shown as text in Plotly's HTML labels
        return col.astype(str).map(plotly_text)

    # Hover text is most of the figure's bytes: keep it short, with subject / score / metadata
    # only when they are what the points are coloured by.
    hover = text(ann["sample_id"]) + "<br>" + text(ann["label"]) + " → " + text(ann["pred"])
    if color_by == "subject":
        hover = hover + "<br>subject " + text(ann["subject"])
    if color_by == "noise":
        hover = hover + "<br>noise " + ann["noise"].round(2).astype(str)
    if color_by.startswith(META_PREFIX):
        name = color_by[len(META_PREFIX) :]
        values = ann[color_by] if color_by in ann else pd.Series("-", index=ann.index)
        hover = hover + f"<br>{plotly_text(name)} " + text(values)
        color = values.to_numpy()
    else:
        color = ann["noise"].to_numpy() if color_by == "noise" else ann[color_by].to_numpy()
    return {
        "title": _run.name,
        "coords": _proj.coords,
        "color": color,
        "hover": hover.to_numpy(),
        "customdata": np.stack([np.full(_proj.n_shown, i), _proj.indices], axis=1),
    }
