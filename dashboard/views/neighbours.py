"""Neighbours: one face and its k nearest faces in each selected run, side by side (FAISS)."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import _data, _samples, _suspects, _ui
from dashboard._safe import markdown_text as md

#: Entries per page of the most-likely-mislabelled list.
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
    try:
        with st.spinner(f"Ranking the samples of {md(ref.name)} (once; cached)..."):
            ranked = _suspects.ranked_suspects(ref)
    except Exception as exc:  # e.g. non-finite embeddings: pick by id instead
        _ui.skipped(ref, exc)
        ranked = None
    if ranked is not None and len(ranked):
        names = ref.class_names
        f1, f2 = st.columns([2, 1])
        cls = f1.selectbox(
            "Labelled as",
            [None, *names],
            format_func=lambda c: "All classes" if c is None else md(c),
            key="nb_class",
        )
        labels = np.asarray(ref.labels)[ranked["row"].to_numpy()]
        if cls is not None:
            ranked = ranked[labels == names.index(cls)]
        pages = max(1, -(-len(ranked) // SUSPECTS))
        page = int(f2.number_input(f"Page (of {pages})", 1, pages, 1, key=f"nb_page_{cls}"))
        part = ranked.iloc[(page - 1) * SUSPECTS : page * SUSPECTS]
        order = part["row"].to_numpy()
        sus = ann_ref.iloc[order].assign(
            score=part["weighted_disagreement"].to_numpy(),
            margin=part["margin"].to_numpy(),
            voted=[names[v] for v in part["voted"]],
        )
        st.caption(
            f"Samples of **{md(ref.name)}**"
            + (f" labelled {md(cls)}" if cls is not None else "")
            + f", ranked by how strongly their {_suspects.K} nearest neighbours vote for another "
            "label (share of the distance-weighted vote on other labels; ties by the vote "
            f"margin): likely label noise or hard cases. Page {page} of {pages}. Captions: "
            "label → the neighbours' label (score)."
        )
        _ui.face_grid(
            ref,
            order,
            [f"{a.label} → {a.voted} ({a.score:.2f})" for a in sus.itertuples()],
            width=64,
        )
        info = sus.set_index("sample_id")
        query_id = st.selectbox(
            "Query sample",
            sus["sample_id"].tolist(),
            format_func=lambda sid: (
                f"{sid} · labelled {info.at[sid, 'label']} · neighbours say "
                f"{info.at[sid, 'voted']} · score {info.at[sid, 'score']:.3f}"
            ),
            key="nb_suspect",
        )
    elif ranked is not None:
        st.info(f"{md(ref.name)} has a single sample: pick a sample by id.")
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
        f"· distance: {run.distance} · {md(_data.searcher(run).describe())}"
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
