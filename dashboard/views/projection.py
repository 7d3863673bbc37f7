"""Projection: UMAP (or PCA) of each selected run, Procrustes-aligned onto the first run.

Hovering a point shows its sample id, label and prediction (and subject / noise score when
coloured by them); clicking it or drawing a box / lasso around points lists those faces below
the chart (Plotly cannot draw images inside a hover label, so the faces come with a selection).
"""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _charts, _data, _samples, _ui
from dashboard._safe import markdown_text as md
from ferembed.projection import DEFAULT_MAX_POINTS
from ferembed.runs import PER_SAMPLE_FILE

#: 3-D scenes are one WebGL context each: cap them.
MAX_3D_RUNS = 4
#: Faces listed per run for a selection.
MAX_FACES = 60

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
        max_value=50_000,
        value=DEFAULT_MAX_POINTS,
        step=100,
        key="proj_max",
        help="Larger runs show a stratified sample (classes keep their proportions).",
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
            projs.append(_data.projection_for(r, **params))
        else:
            with st.spinner(f"Computing the {method.upper()} of {md(r.name)} (once; cached)..."):
                projs.append(_data.projection_for(r, **params))
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
        + "), so the same face sits in a comparable place."
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
    fig = _charts.projection_chart(
        panels,
        color_kind="continuous",
        dim=dim,
        cmin=0.0,
        cmax=1.0,
        color_title="noise",
    )
else:
    order = {
        "label": runs[0].class_names + ["-"],
        "pred": runs[0].class_names + ["-"],
        "correct": ["correct", "wrong", "no prediction"],
    }.get(color_by)
    fig = _charts.projection_chart(panels, color_kind="category", dim=dim, categories=order)

if dim == 2:
    event = st.plotly_chart(
        fig, key="proj_chart", on_select="rerun", selection_mode=("points", "box", "lasso")
    )
    points = (event or {}).get("selection", {}).get("points", []) if event else []
else:
    st.plotly_chart(fig, key="proj_chart3d")
    points = []
    st.caption("Drag to rotate, scroll to zoom. Selecting faces works in 2-D.")

st.subheader("Selected faces")
picked: dict[int, list[int]] = {}
for pt in points:
    # Map each selected point back through the figure we just drew (trace, index in trace):
    # its customdata is [panel, run row]. (The selection's own customdata echo is not a plain
    # list for typed arrays.)
    try:
        trace = fig.data[int(pt["curve_number"])]
        panel, row = trace.customdata[int(pt.get("point_index", pt.get("point_number")))]
    except (KeyError, IndexError, TypeError, ValueError):
        continue
    picked.setdefault(int(panel), []).append(int(row))
if not picked:
    st.caption("Click a point, or draw a box / lasso (toolbar) on a 2-D chart, to list its faces.")
for i, rows in sorted(picked.items()):
    run = runs[i]
    ann = _samples.annotations(run)
    rows = np.asarray(list(dict.fromkeys(rows)), dtype=np.int64)
    # Mistakes first: they are what one usually looks for in a cluster.
    rows = rows[np.argsort(ann["correct"].to_numpy()[rows] != "wrong", kind="stable")]
    sel = ann.iloc[rows]
    more = f", first {MAX_FACES} shown (mistakes first)" if len(rows) > MAX_FACES else ""
    st.markdown(f"**{md(run.name)}**: {len(rows)} selected{more}")
    shown = sel.iloc[:MAX_FACES]
    _ui.face_grid(
        run,
        rows[:MAX_FACES],
        [
            a.label if a.pred in (a.label, "-") else f"{a.label}→{a.pred}"
            for a in shown.itertuples()
        ],
        width=80,
    )
    st.dataframe(
        pd.DataFrame(sel[["sample_id", "label", "pred", "correct", "subject", "noise"]]),
        hide_index=True,
        key=f"proj_sel_{i}",
    )
