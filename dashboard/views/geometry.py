"""Geometry: per-class compactness / separation / margins / silhouette, centroid distances,
intra vs inter distance histograms and neural collapse, for the selected runs on shared axes.

Click a bar of a per-class chart: that run's hardest faces of the class (farthest from the class
centroid; see ``dashboard._faces_view``), paged, with the nearest neighbours of one of them.
"""

import numpy as np
import streamlit as st

from dashboard import _charts, _data, _faces_view, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import METRICS_FILE

st.title("Geometry")
runs = _ui.require_runs(what="the geometry page")
have = _ui.metrics_for(runs, key="geometry")
runs = [r for r in runs if _data.run_key(r) in have]
if not runs:
    st.stop()
names = _ui.display_names(runs)
mets = [have[_data.run_key(r)] for r in runs]
colors = _ui.run_colors(runs)  # one colour per run on every page
classes = runs[0].class_names
if any(r.class_names != classes for r in runs):
    st.warning("The selected runs have different class lists; per-class charts use the first's.")
#: session_state key of the picked bar (run, class).
PICK = "geom_pick"
PER_CLASS = (
    ("compactness_mean", "Compactness: mean distance to the class centroid", "distance"),
    ("nearest_class_distance", "Separation: distance to the nearest other centroid", "distance"),
    ("margin", "Nearest-class margin (separation - compactness)", "margin"),
    ("silhouette", "Silhouette per class", "silhouette"),
)


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


def per_class_series(field: str) -> dict[str, list[float]]:
    out = {}
    for name, m in zip(names, mets, strict=True):
        pc = m.get("per_class") or {}
        out[name] = [_num((pc.get(c) or {}).get(field)) for c in classes]
    return out


def take_bar_click() -> dict | None:
    """A new click on a per-class bar becomes the pick; returns the pick."""
    for field, _, _ in PER_CLASS:
        clicked = _faces_view.bar_pick(_faces_view.new_points(f"geom_{field}"), runs, classes)
        if clicked is not None:
            st.session_state[PICK] = clicked
    return st.session_state.get(PICK) or None


def draw_per_class() -> None:
    pick = take_bar_click()
    # The picked bar is outlined in every chart: a new figure on every pick and on Clear, so
    # Plotly's own selection of the bar is reset with it.
    keys = [_data.run_key(r) for r in runs]
    picked = None
    if pick and pick.get("run") in keys and pick.get("class") in classes:
        picked = (keys.index(pick["run"]), classes.index(pick["class"]))
    cols = st.columns(2)
    for i, (field, title, yaxis) in enumerate(PER_CLASS):
        with cols[i % 2]:
            st.plotly_chart(
                _charts.grouped_bars(
                    classes,
                    per_class_series(field),
                    title=title,
                    yaxis=yaxis,
                    colors=colors,
                    clickable=True,
                    picked=picked,
                ),
                key=f"geom_{field}",
                on_select="rerun",
                selection_mode="points",
            )
    nearest = {
        name: [(m.get("per_class") or {}).get(c, {}).get("nearest_class", "") for c in classes]
        for name, m in zip(names, mets, strict=True)
    }
    st.caption("Nearest other class of each class (by centroid distance)")
    st.dataframe({"class": classes, **nearest}, hide_index=True)
    draw_faces(pick)


def draw_faces(pick: dict | None) -> None:
    st.subheader("Faces")
    by_key = {_data.run_key(r): i for i, r in enumerate(runs)}
    if not pick or pick.get("run") not in by_key:
        st.caption(
            "Click a bar of a per-class chart to see that run's hardest faces of the class "
            "(farthest from the class centroid)."
        )
        return
    _faces_view.clear_button(PICK)
    i = by_key[pick["run"]]
    _faces_view.show_class(runs[i], names[i], pick, key="geom_class", prefer=("centroid",))


def draw_centroids() -> None:
    mats = [np.asarray((m.get("separation") or {}).get("centroid_distances"), float) for m in mets]
    ok = [mat.ndim == 2 and mat.shape == (len(classes), len(classes)) for mat in mats]
    finite = [mat[np.isfinite(mat)] for mat, good in zip(mats, ok, strict=True) if good]
    vmax = max((float(f.max()) for f in finite if f.size), default=1.0)
    st.caption("Distances between class centroids; one shared colour scale (0 to the largest).")
    cols = st.columns(min(len(runs), 3))
    for i, (name, mat, good) in enumerate(zip(names, mats, ok, strict=True)):
        with cols[i % len(cols)]:
            if not good:
                st.info(f"{md(name)}: no centroid distances in {METRICS_FILE}")
                continue
            fig = _charts.heatmap(
                mat, classes, title=name, zmin=0.0, zmax=vmax, colorscale="Blues",
                showscale=i == len(runs) - 1,
            )  # fmt: skip
            st.plotly_chart(fig, key=f"geom_centroids_{i}")


def draw_histograms() -> None:
    has = [isinstance(m.get("histograms"), dict) and "bin_edges" in m["histograms"] for m in mets]
    hists = {name: m["histograms"] for name, m, ok in zip(names, mets, has, strict=True) if ok}
    hist_colors = [c for c, ok in zip(colors, has, strict=True) if ok]
    if not hists:
        st.info("No distance histograms in the metrics.")
        return
    st.plotly_chart(
        _charts.histogram_chart(
            hists, title="Intra-class (solid) vs inter-class (dashed)", colors=hist_colors
        ),
        key="geom_hist",
    )
    st.dataframe(
        {
            "run": list(hists),
            "overlap": [_num(h.get("overlap")) for h in hists.values()],
            "pairs (intra)": [h.get("n_intra") for h in hists.values()],
            "pairs (inter)": [h.get("n_inter") for h in hists.values()],
        },
        hide_index=True,
    )


def draw_collapse() -> None:
    keys = ["nc1", "nc2_equinorm", "nc2_equiangularity", "nc3"]
    series = {name: [_num(m.get(k)) for k in keys] for name, m in zip(names, mets, strict=True)}
    st.plotly_chart(
        _charts.metric_bars(
            keys, series, title="Neural collapse (lower = more collapsed)", colors=colors
        ),
        key="geom_nc",
    )
    st.caption(
        "NC1: within-class variability relative to between-class; NC2: class means equinorm / "
        "equiangular (simplex ETF); NC3: alignment of class means with the head's weights "
        "(empty for runs without a head). The axis turns logarithmic when the values span "
        f"more than {_charts.LOG_DECADES:g} decades."
    )


st.caption(
    f"{len(runs)} run(s), distance: "
    + md(", ".join(sorted({str(m.get("distance", "?")) for m in mets})))
    + ". "
    "Bars of one colour are one run; every chart shares its axes across runs."
)
# Lazy tabs: only the open tab's charts are built and sent, which keeps page switches fast.
tabs = st.tabs(
    ["Per class", "Centroid distances", "Distance histograms", "Neural collapse"],
    key="geom_tab",
    on_change="rerun",
)
for tab, draw in zip(
    tabs, (draw_per_class, draw_centroids, draw_histograms, draw_collapse), strict=True
):
    if tab.open:
        with tab:
            draw()
