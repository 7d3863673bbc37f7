"""Confusion: head / kNN / nearest-centroid confusion matrices, per-class P/R/F1 and recall, and
the difference between two runs.

Click a cell of either matrix: the faces in that cell (labelled the row's class, predicted the
column's), per selected run, with the nearest neighbours of one of them. Click a bar of the
per-class recall chart: that run's hardest faces of the class (lowest head probability of the
true class, or farthest from the class centroid without a head). See ``dashboard._faces_view``.
"""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _charts, _data, _faces, _faces_view, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import METRICS_FILE

SOURCES = _faces.SOURCES
#: session_state key of the picked cell or bar.
PICK = "conf_pick"

st.title("Confusion")
runs = _ui.require_runs(what="the confusion page")
have = _ui.metrics_for(runs, key="confusion")
runs = [r for r in runs if _data.run_key(r) in have]
if not runs:
    st.stop()


def matrix(m: dict, source: str, normalized: bool) -> np.ndarray | None:
    conf = (m.get("confusion") or {}).get(source) or {}
    raw = conf.get("normalized" if normalized else "counts")
    if raw is None:
        return None
    a = np.asarray(raw, dtype=float)
    return a if a.ndim == 2 and a.shape[0] == a.shape[1] else None


def per_class_table(m: dict, source: str, classes: list[str]) -> pd.DataFrame | None:
    cls = (m.get("classification") or {}).get(source) or {}
    pc = cls.get("per_class")
    if not pc:
        return None
    if all(isinstance(pc.get(k), list) for k in ("precision", "recall", "f1")):
        df = pd.DataFrame(
            {"class": classes, **{k: pc[k] for k in pc if len(pc[k]) == len(classes)}}
        )
    else:  # {class: {precision, recall, f1, ...}}
        df = pd.DataFrame([{"class": c, **(pc.get(c) or {})} for c in classes])
    return df


def recall_of(m: dict, source: str, classes: list[str]) -> list[float] | None:
    """Per-class recall of ``source`` in the order of ``classes`` (NaN for a missing class)."""
    table = per_class_table(m, source, classes)
    if table is None or "recall" not in table:
        return None
    return [float(v) if isinstance(v, (int, float)) else np.nan for v in table["recall"]]


names = _ui.display_names(runs)
c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
with c1:
    idx_a = st.selectbox("Run", range(len(runs)), format_func=lambda i: names[i], key="conf_run")
run_a = runs[idx_a]
m_a = have[_data.run_key(run_a)]
available = [s for s in SOURCES if (m_a.get("confusion") or {}).get(s)]
if not available:
    st.warning(f"{md(run_a.name)}: {METRICS_FILE} has no confusion matrices.")
    st.stop()
with c2:
    source = st.radio(
        "Predictions from", available, format_func=SOURCES.get, horizontal=True, key="conf_src"
    )
with c3:
    normalized = st.toggle("Normalised by row", value=True, key="conf_norm")

classes = run_a.class_names
cm = matrix(m_a, source, normalized)
if cm is None:
    what = f"{'normalised ' if normalized else ''}{source}"
    st.warning(f"{md(run_a.name)}: no {what} confusion matrix.")
    st.stop()

# Run A first, then the others: the faces of a cell are listed in this order.
order = [idx_a] + [i for i in range(len(runs)) if i != idx_a]
recalls = {i: recall_of(have[_data.run_key(runs[i])], source, classes) for i in order}
bar_runs = [i for i in order if recalls[i] is not None]

# A click seen for the first time (on a cell of either matrix, or on a recall bar) becomes the
# pick, before anything is drawn: the faces below and the outlined cell follow it.
for chart_key in ("conf_main", "conf_diff"):
    clicked = _faces_view.cell_pick(_faces_view.new_points(chart_key), classes)
    if clicked is not None:
        st.session_state[PICK] = clicked
clicked = _faces_view.bar_pick(
    _faces_view.new_points("conf_recall"), [runs[i] for i in bar_runs], classes
)
if clicked is not None:
    st.session_state[PICK] = clicked
pick = st.session_state.get(PICK) or None


def draw_matrix(fig, key: str) -> None:
    """A clickable matrix, with the picked cell outlined."""
    if pick and pick.get("kind") == "cell" and {pick["true"], pick["pred"]} <= set(classes):
        _charts.outline_cell(fig, classes.index(pick["true"]), classes.index(pick["pred"]))
    st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points")


def picked_bar() -> tuple[int, int] | None:
    """(place in ``bar_runs``, class index) of the picked bar, outlined (a new figure on every
    pick and on Clear, so Plotly's own selection of the bar is reset with it)."""
    if not pick or pick.get("kind") != "class" or pick.get("class") not in classes:
        return None
    keys = [_data.run_key(runs[i]) for i in bar_runs]
    if pick.get("run") not in keys:
        return None
    return keys.index(pick["run"]), classes.index(pick["class"])


cls = (m_a.get("classification") or {}).get(source) or {}
mc = st.columns(3)
for col, (key, title) in zip(
    mc,
    (
        ("accuracy", "Accuracy"),
        ("mean_class_accuracy", "Mean class acc."),
        ("macro_f1", "Macro-F1"),
    ),
    strict=True,
):
    v = cls.get(key)
    col.metric(title, f"{v:.4f}" if isinstance(v, (int, float)) else "-")

how = "row-normalised" if normalized else "counts"
left, right = st.columns([3, 2])
with left:
    draw_matrix(
        _charts.heatmap(
            cm,
            classes,
            title=f"{run_a.name} · {SOURCES[source]} ({how})",
            zmin=0.0,
            zmax=1.0 if normalized else None,
            colorscale="Blues",
            fmt=".2f" if normalized else ".0f",
            xaxis="predicted",
            yaxis="true",
            height=480,
            clickable=True,
            counts=matrix(m_a, source, False),
        ),
        "conf_main",
    )
with right:
    table = per_class_table(m_a, source, classes)
    if table is not None:
        st.caption("Per-class precision / recall / F1")
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                k: st.column_config.NumberColumn(format="%.3f")
                for k in ("precision", "recall", "f1")
            },
            key="conf_table",
        )

if bar_runs:
    colors = _ui.run_colors(runs)
    st.plotly_chart(
        _charts.grouped_bars(
            classes,
            {names[i]: recalls[i] for i in bar_runs},
            title=f"Recall per class · {SOURCES[source]} (click a bar: the class's hardest faces)",
            yaxis="recall",
            colors=[colors[i] for i in bar_runs],
            clickable=True,
            picked=picked_bar(),
        ),
        key="conf_recall",
        on_select="rerun",
        selection_mode="points",
    )

st.subheader("Faces")
if not pick:
    st.caption(
        "Click a cell of a confusion matrix (here or in the difference below) to see the faces "
        "in it, per run; click a bar of the recall chart to see that class's hardest faces."
    )
else:
    _faces_view.clear_button(PICK)
    if pick.get("kind") == "cell":
        _faces_view.show_cell(
            [runs[i] for i in order], [names[i] for i in order], pick, source, key="conf_cell"
        )
    else:
        by_key = {_data.run_key(r): (r, n) for r, n in zip(runs, names, strict=True)}
        if pick.get("run") in by_key:
            run, name = by_key[pick["run"]]
            _faces_view.show_class(
                run, name, pick, key="conf_class", prefer=("probability", "centroid")
            )
        else:
            st.caption("The run of the picked bar is no longer selected.")

st.subheader("Difference between two runs")
others = [i for i in range(len(runs)) if i != idx_a]
if not others:
    st.info("Select a second run in the sidebar to see the difference matrix.")
    st.stop()
idx_b = st.selectbox("Compared with (B)", others, format_func=lambda i: names[i], key="conf_run_b")
run_b = runs[idx_b]
_ui.warn_unpaired(run_a, [run_b], what="the difference matrix")
m_b = have[_data.run_key(run_b)]
cm_b = matrix(m_b, source, True)
cm_a = matrix(m_a, source, True)
if run_b.class_names != classes:
    st.warning("The two runs have different class lists; no difference matrix.")
elif cm_b is None or cm_a is None or cm_b.shape != cm_a.shape:
    st.info(f"{md(run_b.name)} has no {SOURCES[source]} confusion matrix.")
else:
    diff = cm_b - cm_a
    # Symmetric around 0 with a floor: a +-0.02 change stays pale.
    lim = _charts.delta_limit(diff)
    st.caption(
        f"B - A of the row-normalised matrices, colour scale +-{lim:.2f} centred at 0 (at least "
        f"+-{_charts.DELTA_FLOOR:g}). Diagonal: positive = B recalls the class more often; "
        "off the diagonal: positive = B makes that confusion more often. Click a cell: its "
        "faces (above)."
    )
    draw_matrix(
        _charts.heatmap(
            diff,
            classes,
            title=f"{run_b.name} - {run_a.name} (row-normalised; diagonal up = better recall)",
            zmin=-lim,
            zmax=lim,
            zmid=0.0,
            colorscale=_charts.DIVERGING,
            fmt="+.2f",
            xaxis="predicted",
            yaxis="true",
            height=480,
            clickable=True,
        ),
        "conf_diff",
    )
