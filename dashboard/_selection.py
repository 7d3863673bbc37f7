"""Linked selection on the Projection page: the picked samples, kept by sample_id.

A box, lasso or click in one panel picks points of that run; the page keeps the picked sample
ids per run in ``st.session_state`` (not point indices, which change with the colouring), marks
the same sample ids in every panel (Plotly's ``selectedpoints``: the others are dimmed), and
lists a per-class breakdown and the picked faces below the chart.

Streamlit gives the chart a new identity whenever its figure changes (a new colouring, or the
highlight drawn for a new selection), and the new chart starts with no selection: an empty event
therefore keeps the stored selection, which only a new pick or :data:`CLEAR` replaces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _data
from ferembed.runs import Run

#: session_state keys: {run key: [sample ids picked in its panel]} and the last event applied.
STATE = "proj_selection"
LAST_EVENT = "proj_selection_event"
#: The "Clear selection" button's key.
CLEAR = "proj_clear"
#: Faces per page of the selected faces.
FACES_PER_PAGE = 24
#: Opacity of the points outside the selection.
DIMMED = 0.12


def _points_key(points: Sequence[dict]) -> tuple[tuple[int, int], ...]:
    key = []
    for pt in points:
        try:
            index = pt.get("point_index", pt.get("point_number"))
            key.append((int(pt["curve_number"]), int(index)))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(key)


def apply_event(points: Sequence[dict], fig, runs: Sequence[Run]) -> dict[str, list[str]]:
    """Apply a chart selection event to the stored selection and return it.

    ``points`` are the event's points, ``(curve_number, point_index)`` in ``fig`` (the figure
    the page drew, whose traces' customdata are ``[panel, run row]``); ``runs`` the panels' runs.
    An event seen before, or an empty one, leaves the stored selection as it is.
    """
    state = st.session_state
    key = _points_key(points)
    if not key:
        state[LAST_EVENT] = None
        return dict(state.get(STATE, {}))
    if key == state.get(LAST_EVENT):
        return dict(state.get(STATE, {}))
    picked: dict[str, list[str]] = {}
    for curve, index in key:
        try:
            panel, row = fig.data[curve].customdata[index]
            run = runs[int(panel)]
        except (IndexError, TypeError, ValueError):
            continue
        ids = _data.sample_ids(run)
        if 0 <= int(row) < len(ids):
            picked.setdefault(_data.run_key(run), []).append(str(ids[int(row)]))
    picked = {k: list(dict.fromkeys(v)) for k, v in picked.items()}
    state[STATE] = picked
    state[LAST_EVENT] = key
    return picked


def clear_selection() -> None:
    """Forget the selection (the Clear button's callback)."""
    st.session_state[STATE] = {}


def selected_ids(picked: dict[str, list[str]]) -> list[str]:
    """Every picked sample id, once, in the order picked."""
    return list(dict.fromkeys(s for ids in picked.values() for s in ids))


def highlight_selection(fig, runs: Sequence[Run], ids: Sequence[str]) -> None:
    """Mark the samples ``ids`` in every 2-D panel of ``fig`` (in place); no-op without ids."""
    if not ids:
        return
    wanted = pd.Index(list(ids))
    for trace in fig.data:
        custom = np.asarray(trace.customdata)
        if custom.ndim != 2 or not len(custom):
            continue
        run_ids = _data.sample_ids(runs[int(custom[0, 0])])
        inside = wanted.get_indexer(run_ids[custom[:, 1].astype(np.int64)]) >= 0
        trace.update(
            selectedpoints=np.flatnonzero(inside).tolist(),
            unselected={"marker": {"opacity": DIMMED}},
        )


def class_breakdown(runs: Sequence[Run], names: Sequence[str], ids: Sequence[str]) -> pd.DataFrame:
    """Selected samples per class (rows) and run (columns): each run counts, by its own labels,
    the selected sample ids it has; a last row ``total``."""
    classes: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for run, name in zip(runs, names, strict=True):
        rows = _data.rows_of(run, ids)
        labels = run.labels[rows[rows >= 0]]
        per = np.bincount(labels, minlength=len(run.class_names))
        counts[name] = {c: int(n) for c, n in zip(run.class_names, per, strict=True)}
        classes += [c for c in run.class_names if c not in classes]
    table = pd.DataFrame({n: [counts[n].get(c, 0) for c in classes] for n in names})
    table.insert(0, "class", classes)
    total = {"class": "total", **{n: int(table[n].sum()) for n in names}}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def faces_page(rows: np.ndarray, key: str) -> tuple[np.ndarray, str]:
    """The rows on the page chosen with a pager (shown only past one page) and a note."""
    pages = max(1, -(-len(rows) // FACES_PER_PAGE))
    if pages == 1:
        return rows, ""
    page = int(
        st.number_input(
            f"Page (of {pages})", min_value=1, max_value=pages, value=1, key=f"{key}_{pages}"
        )
    )
    start = (page - 1) * FACES_PER_PAGE
    shown = rows[start : start + FACES_PER_PAGE]
    return shown, f", faces {start + 1}-{start + len(shown)} shown (mistakes first)"
