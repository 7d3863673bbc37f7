"""Dynamics: how a series of runs logged over training (``ferembed.log_run(..., step=)``) moves.

For each selected series: compactness, separation, Fisher ratio, P@1, MAP@R and accuracy against
step with their 95% intervals, and the projection at a chosen step, aligned onto the series' last
step so the frames of one series are comparable as the step changes.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import _charts, _data, _samples, _ui
from dashboard._safe import markdown_text as md
from dashboard._safe import plotly_text
from ferembed.errors import FerembedError
from ferembed.metrics.catalog import metric_info
from ferembed.runs.log import (
    DYNAMICS_METRICS,
    SERIES_FILE,
    find_series,
    load_series,
    series_table,
)

#: Series selected when the page opens.
DEFAULT_SERIES = 4


@st.cache_data(ttl=10, show_spinner=False)
def _find(root: str) -> list[str]:
    return [_data.relative(Path(root), p) for p in find_series(root)]


@st.cache_data(max_entries=64, show_spinner=False)
def _series(path: str, stamp: int) -> dict:
    del stamp
    return load_series(path)


def step_runs(root: Path, rel: str) -> tuple[dict, list[int], list, list[str]]:
    """The series at ``rel``, its loadable step runs (root-confined, cached) and why the others
    are left out.

    Raises:
        FerembedError: the series.json is unreadable, malformed or a symlink out of the root.
    """
    path = _data.resolve_inside(root, rel)
    file = _data.resolve_inside(root, path / SERIES_FILE)  # a series.json linked out is refused
    series = _series(str(path), file.stat().st_mtime_ns)
    steps, runs, left_out = [], [], []
    for s in series["steps"]:
        try:  # a step's run may be named by a path that leaves the root: refused, like any other
            entry = _data.load_entry(root, s["path"])
        except _data.OutsideRootError as exc:
            left_out.append(f"step {s['step']}: {exc}")
            continue
        if entry.run is None:
            left_out.append(f"step {s['step']}: {entry.error}")
            continue
        steps.append(s["step"])
        runs.append(entry.run)
    return series, steps, runs, left_out


def metric_figure(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """One subplot per metric; one line per series with its 95% interval as error bars."""
    titles = [f"{metric_info(k).title} {metric_info(k).arrow}" for k in DYNAMICS_METRICS]
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.06)
    for i, (name, table) in enumerate(tables.items()):
        for j, key in enumerate(DYNAMICS_METRICS):
            t = table[table["metric"] == key]
            fig.add_trace(
                go.Scatter(
                    x=t["step"], y=t["value"], mode="lines+markers", name=plotly_text(name),
                    legendgroup=name, showlegend=j == 0,
                    line={"color": _charts.run_color(i)},
                    error_y={"type": "data", "symmetric": False, "thickness": 1,
                             "array": (t["hi"] - t["value"]).to_numpy(),
                             "arrayminus": (t["value"] - t["lo"]).to_numpy()},
                ),
                row=j // 3 + 1, col=j % 3 + 1,
            )  # fmt: skip
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=620, margin={"t": 60, "l": 40, "r": 20, "b": 40})
    return fig


st.title("Dynamics")
root = _ui.root()
available = _find(str(root))
if not available:
    st.info(
        "No series under the runs root. Log one from your training loop with "
        "`ferembed.log_run(OUT, embeddings, labels, step=epoch)` (see docs/byom.md)."
    )
    st.stop()
chosen = st.multiselect(
    "Series", available, default=available[:DEFAULT_SERIES], key="dyn_series",
    help="Directories holding a series.json (one run per logged step).",
)  # fmt: skip
if not chosen:
    st.info("Select at least one series.")
    st.stop()

loaded = {}
for rel in chosen:
    try:
        series, steps, runs, left_out = step_runs(root, rel)
    except (FerembedError, OSError) as exc:  # this series only; the others are drawn
        st.warning(f"Series {md(rel)} skipped: {md(_ui.error_line(exc))}")
        continue
    if left_out:
        st.warning(f"Series {md(rel)}: {len(left_out)} step(s) left out: {md('; '.join(left_out))}")
    loaded[rel] = (series, steps, runs)
# Steps whose per-sample annotations do not load are named once and left out of every chart.
good = {_data.run_key(r) for r in _ui.usable([r for _, _, rs in loaded.values() for r in rs])}
for rel, (series, steps, runs) in loaded.items():
    kept = [(s, r) for s, r in zip(steps, runs, strict=True) if _data.run_key(r) in good]
    loaded[rel] = (series, [s for s, _ in kept], [r for _, r in kept])
every_run = [r for _, _, runs in loaded.values() for r in runs]
have = _ui.metrics_for(every_run, key="dyn")
tables = {}
for rel, (series, steps, runs) in loaded.items():
    if not runs:
        st.warning(f"{md(rel)}: no loadable step run.")
        continue
    tables[series["name"]] = series_table(steps, [have.get(_data.run_key(r)) for r in runs])
if tables:
    st.plotly_chart(metric_figure(tables), key="dyn_metrics")
    st.caption("Error bars: the 95% bootstrap intervals of metrics.json (where computed).")

st.subheader("Projection at a step")
all_steps = sorted({s for _, steps, _ in loaded.values() for s in steps})
if not all_steps:
    st.stop()
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
step = c1.select_slider("Step", all_steps, value=all_steps[-1], key="dyn_step")
method = c2.selectbox(
    "Method", ("pca", "umap"), format_func={"umap": "UMAP", "pca": "PCA"}.get, key="dyn_method"
)
params = {"dim": 2, "method": method}
panels, classes = [], None
for series, steps, runs in loaded.values():
    if not runs:
        continue
    # The step shown is the latest at or before the chosen one (series log different steps).
    at = int(np.searchsorted(steps, step, side="right")) - 1
    run, last = runs[max(at, 0)], runs[-1]
    try:
        with st.spinner(f"Projecting {md(run.name)}..."):
            projs = [_data.projection_for(last, **params), _data.projection_for(run, **params)]
    except Exception as exc:  # this series' frame only
        _ui.skipped(run, exc)
        continue
    shown = _data.align([last, run], projs)[1] if run is not last else projs[0]
    panel = _samples.projection_panel(run, shown, "label", len(panels))
    panels.append({**panel, "title": f"{series['name']}: step {steps[max(at, 0)]}"})
    classes = classes or run.class_names
if panels:
    fig = _charts.projection_chart(panels, color_kind="category", categories=[*classes, "-"])
    st.plotly_chart(fig, key="dyn_projection")
    st.caption(
        "Each series' frames are aligned (Procrustes on shared samples) onto its last step, so a "
        "face keeps a comparable place as the step moves."
    )
