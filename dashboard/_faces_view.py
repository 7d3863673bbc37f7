"""Click an aggregate, see its faces: the pick kept in ``st.session_state`` and the face grids.

A page draws its charts with ``on_select="rerun"`` and, before drawing, asks :func:`new_points`
for a click it has not seen: a confusion cell (the invisible markers over the heatmap,
``_charts.heatmap(clickable=True)``) or a per-class bar (``_charts.grouped_bars(clickable=
True)``). The page turns it into a *pick*, kept under its own session_state key until another
click or "Clear" replaces it, so it survives reruns, a new normalisation, paging:

- ``{"kind": "cell", "true": class name, "pred": class name}``: :func:`show_cell` lists, per
  run, the faces in that cell;
- ``{"kind": "class", "run": run key, "class": class name}``: :func:`show_class` lists that
  run's hardest faces of the class.

Both show the faces :data:`PAGE_SIZE` at a time, and the nearest neighbours of one face of the
page. Streamlit gives a chart a new identity when its figure changes (the outline of a picked
cell), and the new chart starts with no selection: an empty event keeps the pick.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard import _data, _faces, _samples, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import Run

#: Faces per page.
PAGE_SIZE = 24
#: Nearest neighbours shown for the chosen face.
NEIGHBOURS = 8
#: Suffix of the session_state key that remembers a chart's last event.
_SEEN = "__seen"


def event_points(chart_key: str) -> list[dict]:
    """The points of the selection event stored for the chart ``chart_key`` ([] without)."""
    try:
        return list(st.session_state.get(chart_key)["selection"]["points"] or [])
    except (KeyError, TypeError):
        return []


def new_points(chart_key: str) -> list[dict]:
    """The points of the chart's event when it is one not seen before, else []."""
    points = event_points(chart_key)
    sig = tuple(
        (pt.get("curve_number"), pt.get("point_index", pt.get("point_number"))) for pt in points
    )
    seen = f"{chart_key}{_SEEN}"
    if not sig:
        st.session_state[seen] = None
        return []
    if sig == st.session_state.get(seen):
        return []
    st.session_state[seen] = sig
    return points


def cell_pick(points: Sequence[dict], classes: Sequence[str]) -> dict | None:
    """The pick of a click on a cell (customdata ``[row, column]``), or None."""
    for pt in points:
        custom = _faces.point_custom(pt)
        if custom is not None and len(custom) == 2 and all(0 <= v < len(classes) for v in custom):
            return {"kind": "cell", "true": classes[custom[0]], "pred": classes[custom[1]]}
    return None


def bar_pick(points: Sequence[dict], runs: Sequence[Run], classes: Sequence[str]) -> dict | None:
    """The pick of a click on a bar (customdata ``[run index in runs, class index]``), or None."""
    for pt in points:
        custom = _faces.point_custom(pt)
        if custom is None or len(custom) != 2:
            continue
        i, c = custom
        if 0 <= i < len(runs) and 0 <= c < len(classes):
            return {"kind": "class", "run": _data.run_key(runs[i]), "class": classes[c]}
    return None


def clear_button(state_key: str) -> None:
    """A "Clear" button forgetting the pick under ``state_key``."""

    def forget() -> None:
        st.session_state[state_key] = None

    st.button("Clear the faces", key=f"{state_key}_clear", on_click=forget)


def page_rows(rows: np.ndarray, key: str) -> tuple[np.ndarray, str]:
    """The rows of the page chosen with a pager (shown past one page) and a note."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    if pages == 1:
        return rows, ""
    page = int(
        st.number_input(
            f"Page (of {pages})", min_value=1, max_value=pages, value=1, key=f"{key}_{pages}"
        )
    )
    start = (page - 1) * PAGE_SIZE
    shown = rows[start : start + PAGE_SIZE]
    return shown, f"; faces {start + 1}-{start + len(shown)} shown"


def _neighbours(run: Run, shown: np.ndarray, key: str) -> None:
    """The nearest neighbours (in ``run``) of one face of the page, chosen in a menu."""
    if not len(shown) or run.n < 2:
        return
    ids = _data.sample_ids(run)
    row = st.selectbox(
        "Nearest neighbours of",
        [int(r) for r in shown],
        format_func=lambda r: str(ids[r]),
        key=f"{key}_query",
    )
    try:
        nb, dist = _data.neighbours(run, row, min(NEIGHBOURS, run.n - 1))
    except Exception as exc:  # e.g. non-finite embeddings: this run only
        _ui.skipped(run, exc)
        return
    ann = _samples.annotations(run)
    own = ann["label"].iat[row]
    labels = ann["label"].to_numpy()[nb]
    with st.container(key=f"{key}_nb"):
        _ui.face_grid(
            run,
            nb,
            [
                f"{'✓' if lab == own else '✗'} {lab} · {d:.3f}"
                for lab, d in zip(labels, dist, strict=True)
            ],
            width=80,
        )
    st.caption(
        f"{int((labels == own).sum())}/{len(nb)} neighbours share the label {md(own)} "
        f"(distance: {run.distance})."
    )


def show_cell(
    runs: Sequence[Run], names: Sequence[str], pick: dict, source: str, *, key: str
) -> None:
    """Per run, the faces labelled ``pick["true"]`` and predicted ``pick["pred"]`` by
    ``source``; the first run's cell members are the reference for the overlap notes."""
    t, p = str(pick["true"]), str(pick["pred"])
    what = "correct" if t == p else "confused"
    st.markdown(
        f"**Labelled {md(t)}, predicted {md(p)}** ({what}; {_faces.SOURCES[source]}), per run. "
        "Captions: sample id."
    )
    ref_ids: set[str] | None = None
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        st.markdown(f"##### {md(name)}")
        if t not in run.class_names or p not in run.class_names:
            st.caption(f"{md(name)} has no class {md(t if t not in run.class_names else p)}.")
            continue
        if not (_faces.predicted_by(run, source) >= 0).any():
            st.caption(f"{md(name)} has no {_faces.SOURCES[source]} predictions.")
            continue
        rows = _faces.cell_rows(run, source, t, p)
        ids = _data.sample_ids(run)[rows].astype(str)
        note = ""
        if ref_ids is None:
            ref_ids = set(ids)
        elif len(rows):
            both = len(ref_ids & set(ids))
            note = f"; {both} of them in this cell of {md(names[0])} too"
        shown, more = page_rows(rows, f"{key}_page{i}")
        st.caption(f"{len(rows):,} face(s){note}{more}")
        with st.container(key=f"{key}_faces{i}"):
            _ui.face_grid(run, shown, [str(s) for s in _data.sample_ids(run)[shown]], width=88)
        _neighbours(run, shown, f"{key}_{i}")


def show_class(
    run: Run, name: str, pick: dict, *, key: str, prefer: Sequence[str] = ("probability",)
) -> None:
    """The hardest faces of class ``pick["class"]`` in ``run``, ranked as :func:`_faces.
    hardest_rows` does (``prefer`` first), with the nearest neighbours of one of them."""
    cls = str(pick["class"])
    rows, score, kind = _faces.hardest_rows(run, cls, prefer=prefer)
    st.markdown(f"**{md(name)}: the hardest faces labelled {md(cls)}** ({len(rows):,} in all)")
    if not len(rows):
        st.caption(f"{md(name)} has no faces labelled {md(cls)}.")
        return
    shown, more = page_rows(np.arange(len(rows)), f"{key}_page")
    st.caption(f"Ranked by {_faces.HARDNESS[kind]}{more}. Captions: prediction (score).")
    ann = _samples.annotations(run)
    pred = ann["pred"].to_numpy()
    captions = [
        f"→ {pred[rows[i]]}" + ("" if np.isnan(score[i]) else f" ({score[i]:.2f})") for i in shown
    ]
    with st.container(key=f"{key}_faces"):
        _ui.face_grid(run, rows[shown], captions, width=88)
    _neighbours(run, rows[shown], key)
