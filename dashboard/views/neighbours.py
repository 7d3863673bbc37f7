"""Neighbours: one face and its k nearest faces in each selected run, side by side (FAISS)."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _data, _samples, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import PER_SAMPLE_FILE

#: Entries of the most-likely-mislabelled list.
SUSPECTS = 24


def _shorten(text: str) -> str:
    """A typed id as shown in a message (a pasted page of text stays one line)."""
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"


st.title("Neighbours")
runs = _ui.require_runs(what="the neighbours page")
ref = runs[0]
ann_ref = _samples.annotations(ref)

c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
mode = c1.radio(
    "Pick the query",
    ("suspects", "id"),
    format_func={"suspects": "Most likely mislabelled", "id": "By sample id"}.get,
    horizontal=True,
    key="nb_mode",
)
k = c2.slider("k", 1, 30, 8, key="nb_k")

query_id = None
if mode == "suspects":
    noise = ann_ref["noise"].to_numpy(dtype=float)
    if np.isnan(noise).all():
        st.info(
            f"No label-noise scores for {ref.name} yet ({PER_SAMPLE_FILE}): compute its "
            "metrics on the Runs page, or pick a sample by id."
        )
    else:
        order = np.argsort(-np.nan_to_num(noise, nan=-1.0), kind="stable")[:SUSPECTS]
        sus = ann_ref.iloc[order]
        st.caption(
            f"The {len(order)} samples of **{md(ref.name)}** whose neighbours most disagree with "
            "their label (kNN label disagreement): likely label noise or hard cases."
        )
        _ui.face_grid(
            ref, order, [f"{a.label} ({a.noise:.2f})" for a in sus.itertuples()], width=64
        )
        query_id = st.selectbox(
            "Query sample",
            sus["sample_id"].tolist(),
            format_func=lambda sid: (
                f"{sid} · labelled {sus.set_index('sample_id').at[sid, 'label']} · noise "
                f"{sus.set_index('sample_id').at[sid, 'noise']:.2f}"
            ),
            key="nb_suspect",
        )
if mode == "id" or query_id is None:
    query_id = st.text_input(
        "Sample id", value=str(ann_ref["sample_id"].iloc[0]), key="nb_id"
    ).strip()

row_ref = _data.row_of(ref, query_id)
if row_ref is None:
    st.error(md(f"No sample {_shorten(query_id)!r} in {ref.name}."))
    st.stop()

q = ann_ref.iloc[row_ref]
st.subheader(f"Query {md(query_id)}")
qc1, qc2 = st.columns([1, 6])
with qc1:
    _ui.face_grid(ref, [row_ref], [f"label: {q.label}"])
with qc2:
    st.markdown(
        f"**label** {md(q.label)} · **subject** {md(q.subject)}"
        + ("" if np.isnan(q.noise) else f" · **noise score** {q.noise:.2f}")
    )

for run in runs:
    row = _data.row_of(run, query_id)
    st.markdown(f"#### {md(run.name)}")
    if row is None:
        st.caption(md(f"{query_id!r} is not in this run."))
        continue
    k_run = min(k, run.n - 1)
    if k_run < 1:
        st.caption("This run has a single sample.")
        continue
    try:
        rows, dists = _data.neighbours(run, row, k_run)
    except Exception as exc:  # e.g. non-finite embeddings: this run only
        _ui.skipped(run, exc)
        continue
    ann = _samples.annotations(run).iloc[rows]
    own = _samples.annotations(run).iloc[row]
    st.caption(
        f"pred: {md(own.pred)} ({own.pred_source}) · "
        f"{int((ann['label'] == own.label).sum())}/{len(rows)} neighbours share the label "
        f"· distance: {run.distance}"
    )
    marks = ["✓" if lab == own.label else "✗" for lab in ann["label"]]
    _ui.face_grid(
        run,
        rows,
        [
            f"{m} {a.label} · {d:.3f}"
            for m, a, d in zip(marks, ann.itertuples(), dists, strict=True)
        ],
        width=72,
    )
    with st.expander("As a table"):
        st.dataframe(
            pd.DataFrame(
                {
                    "rank": np.arange(1, len(rows) + 1),
                    "sample_id": ann["sample_id"].to_numpy(),
                    "label": ann["label"].to_numpy(),
                    "distance": dists,
                    "same label": ann["label"].to_numpy() == own.label,
                }
            ),
            hide_index=True,
            key=f"nb_table_{_data.run_key(run)}",
        )
