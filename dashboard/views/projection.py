"""Projection: UMAP (or PCA) of each selected run, Procrustes-aligned onto the first run.

Hovering a point shows its sample id, label and prediction (and subject / noise score when
coloured by them); clicking it or drawing a box / lasso around points selects those samples:
they are marked, by sample_id, in every panel (and stay selected when the colouring changes),
and below the chart come their count per class in each run and their faces, 24 per page
(Plotly cannot draw images inside a hover label, so the faces come with a selection). See
``dashboard._selection``. "Download figure" gives the projection as SVG / PDF / PNG
(``ferembed plot``).

Every point of a run up to 100k is drawn by default (``ferembed project`` computes and caches
the projection of runs up to 200k ahead; the page reads it). The 2-D runs share one WebGL canvas,
a tile each, and the figure is built once per selection of runs and colouring
(``dashboard._projection_fig``): a cached visit only re-sends it.
"""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _charts, _data, _figures, _projection_fig, _samples, _selection, _ui
from dashboard._safe import markdown_text as md
from ferembed.projection import FULL_MAX_POINTS
from ferembed.runs import PER_SAMPLE_FILE

#: 3-D scenes are one WebGL context each: cap them.
MAX_3D_RUNS = 4


def _points(event) -> list:
    """The selected points of a chart event (or of its state), [] without one."""
    try:
        return list(event["selection"]["points"] or [])
    except (KeyError, TypeError):
        return []


st.title("Projection")
runs = _ui.require_runs(what="the projection page")

c1, c2, c3, c4 = st.columns([1, 1, 2, 1], vertical_alignment="bottom")
dim = c1.radio(
    "Dimensions", (2, 3), format_func=lambda d: f"{d}-D", horizontal=True, key="proj_dim"
)
method = c2.selectbox(
    "Method", ("umap", "pca"), format_func={"umap": "UMAP", "pca": "PCA"}.get, key="proj_method"
)
choices = _samples.color_choices(runs)
color_by = c3.selectbox("Colour by", list(choices), format_func=choices.get, key="proj_color")
max_points = int(
    c4.number_input(
        "Max points per run",
        min_value=100,
        max_value=FULL_MAX_POINTS,
        value=_projection_fig.DRAWN_POINTS,
        step=1000,
        key="proj_max",
        help="Larger runs show a stratified sample (classes keep their proportions). "
        "`ferembed project RUN` computes the projection of every point ahead.",
    )
)

if dim == 3 and len(runs) > MAX_3D_RUNS:
    st.info(f"3-D shows the first {MAX_3D_RUNS} selected runs (one WebGL scene each).")
    runs = runs[:MAX_3D_RUNS]

params = {"dim": int(dim), "method": method, "max_points": max_points}
projs, drawn = [], []
for r in runs:
    try:
        if _data.is_projection_cached(r, **params):
            projs.append(_projection_fig.load_projection(r, **params))
        else:
            with st.spinner(
                f"Computing the {method.upper()} of {md(r.name)} (once; cached; "
                "`ferembed project` computes it ahead)..."
            ):
                projs.append(_projection_fig.load_projection(r, **params))
    except Exception as exc:  # one run that cannot be projected is named, the others drawn
        _ui.skipped(r, exc)
        continue
    drawn.append(r)
runs = drawn
if not runs:
    st.stop()
_ui.warn_unpaired(runs[0], runs[1:], what="the alignment")
projs = _data.align(runs, projs)

sampled = [(r, p) for r, p in zip(runs, projs, strict=True) if p.sampled]
if sampled:
    st.info(
        "Large run(s): showing a stratified sample (classes keep their proportions) of "
        + "; ".join(f"{p.n_shown:,} of {p.n_total:,} samples of {md(r.name)}" for r, p in sampled)
        + ".",
    )
aligned = [p for p in projs if p.aligned_to]
if len(projs) > 1:
    st.caption(
        f"Runs are aligned onto **{md(projs[0].run)}** (Procrustes on shared samples: "
        + ", ".join(f"{md(p.run)}: {p.n_common:,}" for p in aligned)
        + "), so the same face sits in a comparable place; each run keeps the first run's "
        "spread, so a tile's size says nothing about the run."
        if aligned
        else "The runs share too few samples to be aligned."
    )

if color_by == "pred":
    sources = {_samples.predictions(r)[1] for r in runs}
    st.caption(f"Predictions from: {', '.join(sorted(sources))}.")
panels = [
    _samples.projection_panel(r, p, color_by, i)
    for i, (r, p) in enumerate(zip(runs, projs, strict=True))
]
if color_by == "noise":
    scores = np.concatenate([np.asarray(p["color"], float) for p in panels])
    if np.isnan(scores).all():
        st.warning(
            f"No label-noise scores yet ({PER_SAMPLE_FILE}): compute metrics on the Runs page."
        )
    kind = {"color_kind": "continuous", "cmin": 0.0, "cmax": 1.0, "color_title": "noise"}
else:
    order = {
        "label": runs[0].class_names + ["-"],
        "pred": runs[0].class_names + ["-"],
        "correct": ["correct", "wrong", "no prediction"],
    }.get(color_by)
    kind = {"color_kind": "category", "categories": order}
if dim == 2:
    figure_key = (
        color_by,
        tuple(
            (_data.run_key(r), _data.manifest_stamp(r), _data.per_sample_stamp(r))
            + (tuple(sorted(p.params.items())), p.aligned_to, p.n_shown)
            for r, p in zip(runs, projs, strict=True)
        ),
    )
    fig = _projection_fig.projection_figure(figure_key, panels, **kind)
    total = sum(p.n_shown for p in projs)
    every = "" if sampled else "; every point of each run"
    st.caption(f"{total:,} points drawn (WebGL, one tile per run{every}).")
else:
    fig = _charts.projection_chart(panels, dim=dim, **kind)

if dim == 2:
    picked = _selection.apply_event(_points(st.session_state.get("proj_chart")), fig, runs)
    _selection.highlight_selection(fig, runs, _selection.selected_ids(picked))
    event = st.plotly_chart(
        fig, key="proj_chart", on_select="rerun", selection_mode=("points", "box", "lasso")
    )
    picked = _selection.apply_event(_points(event), fig, runs)
else:
    st.plotly_chart(fig, key="proj_chart3d")
    picked = dict(st.session_state.get(_selection.STATE, {}))
    st.caption("Drag to rotate, scroll to zoom. Selecting faces works in 2-D.")

_figures.download_buttons(
    runs, "projection", key="proj_figure", method=method, max_points=max_points
)

st.subheader("Selected faces")
ids = _selection.selected_ids(picked)
if not ids:
    st.caption("Click a point, or draw a box / lasso (toolbar) on a 2-D chart, to list its faces.")
    st.stop()
st.button("Clear selection", key=_selection.CLEAR, on_click=_selection.clear_selection)
names = _ui.display_names(runs)
st.markdown(
    f"{len(ids):,} sample(s) selected, marked in every panel. Selected samples per class, "
    "counted in each run by its own labels:"
)
st.dataframe(_selection.class_breakdown(runs, names, ids), hide_index=True, key="proj_breakdown")
for i, run in enumerate(runs):
    if _data.run_key(run) not in picked:
        continue
    ann = _samples.annotations(run)
    rows = _data.rows_of(run, picked[_data.run_key(run)])
    rows = rows[rows >= 0]
    # Mistakes first: they are what one usually looks for in a cluster.
    rows = rows[np.argsort(ann["correct"].to_numpy()[rows] != "wrong", kind="stable")]
    sel = ann.iloc[rows]
    shown, more = _selection.faces_page(rows, f"proj_page_{i}")
    st.markdown(f"**{md(names[i])}**: {len(rows)} selected{more}")
    _ui.face_grid(
        run,
        shown,
        [
            a.label if a.pred in (a.label, "-") else f"{a.label}→{a.pred}"
            for a in ann.iloc[shown].itertuples()
        ],
        width=80,
    )
    st.dataframe(
        pd.DataFrame(sel[["sample_id", "label", "pred", "correct", "subject", "noise"]]),
        hide_index=True,
        key=f"proj_sel_{i}",
    )
