"""Confusion: head / kNN / nearest-centroid confusion matrices, per-class P/R/F1, and the
difference between two runs."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _charts, _data, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import METRICS_FILE

SOURCES = {"head": "Classifier head", "knn": "kNN vote", "centroid": "Nearest centroid"}

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
    st.plotly_chart(
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
        ),
        key="conf_main",
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
        "off the diagonal: positive = B makes that confusion more often."
    )
    st.plotly_chart(
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
        ),
        key="conf_diff",
    )
