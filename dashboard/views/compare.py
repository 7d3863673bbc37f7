"""Compare: a baseline run A against one or more runs B: metric table with CIs and paired
significance, per-class deltas, and the samples that flip between correct and wrong."""

import pandas as pd
import streamlit as st

from dashboard import _charts, _compare_table, _data, _defaults, _samples, _ui
from dashboard._safe import markdown_text as md
from ferembed.runs import METRICS_FILE

#: Faces shown per flip direction.
MAX_FLIPS = 40

st.title("Compare")
runs = _ui.require_runs(2, what="comparisons")
names = _ui.display_names(runs)

c1, c2 = st.columns([1, 2])
# The reference the user marked, else the softmax run: the natural baseline of a loss comparison.
rels = [_data.relative(_ui.root(), r.path) for r in runs]  # the sidebar's keys
ref_rel = _defaults.pick_reference(
    [(rel, r.name, r.manifest) for rel, r in zip(rels, runs, strict=True)],
    marked=st.session_state.get(_data.MARKED_KEY),
)
default_a = rels.index(ref_rel)
ia = c1.selectbox(
    "Baseline (A)", range(len(runs)), index=default_a, format_func=lambda i: names[i], key="cmp_a"
)
others = [i for i in range(len(runs)) if i != ia]
ibs = c2.multiselect(
    "Compared runs (B)", others, default=others, format_func=lambda i: names[i], key="cmp_b"
)
if not ibs:
    st.info("Choose at least one run B.")
    st.stop()
run_a = runs[ia]


# Headline metrics of every run from metrics.json (unpaired 95% bootstrap CIs).
st.subheader("Metrics")
have = {_data.run_key(r): _ui.checked_metrics(r) for r in [run_a] + [runs[i] for i in ibs]}
shown = [run_a] + [runs[i] for i in ibs]
headline = _compare_table.headline_table(
    [r.name for r in shown], [have[_data.run_key(r)] for r in shown]
)
if any(have.values()):
    st.caption(
        f"Every headline metric each run's {METRICS_FILE} has, value [95% bootstrap CI]; "
        "better: ↑ higher is better, ↓ lower is."
    )
    st.dataframe(headline, hide_index=True, key="cmp_headline")
else:
    st.caption(f"No {METRICS_FILE} yet for these runs (Runs page); paired tests below still work.")


def _flip_page(ids: list, key: str) -> list:
    """One page of flipped sample ids, optionally of one class (A's label)."""
    ann = _samples.annotations(run_a)
    labels = ann["label"].to_numpy()[_data.rows_of(run_a, ids)]
    c1, c2 = st.columns(2)
    present = sorted(set(labels), key=run_a.class_names.index)
    cls = c1.selectbox(
        "Class", [None, *present], format_func=lambda c: "All classes" if c is None else md(c),
        key=f"cmp_cls_{key}",
    )  # fmt: skip
    if cls is not None:
        ids = [s for s, lab in zip(ids, labels, strict=True) if lab == cls]
    pages = max(1, -(-len(ids) // MAX_FLIPS))
    page = int(c2.number_input(
        f"Page (of {pages})", 1, pages, 1, key=f"cmp_page_{key}_{cls}",
    ))  # fmt: skip
    if cls is not None or pages > 1:
        st.caption(
            f"{len(ids)} sample(s)" + (f" labelled {md(cls)}" if cls is not None else "")
            + f"; page {page} of {pages} ({MAX_FLIPS} per page)."
        )  # fmt: skip
    return ids[(page - 1) * MAX_FLIPS : page * MAX_FLIPS]


def draw_pair(run_b, ib: int) -> None:
    """The paired comparison of A with one run B."""
    _ui.warn_unpaired(run_a, [run_b], what="the paired comparison")
    if not _data.compare_ready(run_a, run_b) and not st.session_state.get(f"cmp_go_{ib}"):
        n = max(run_a.n, run_b.n)
        st.info(
            f"The paired comparison searches the exact nearest neighbours of all {n:,} samples "
            "in both runs: several minutes for runs this large (once; the result is cached in "
            f"{md(run_a.name)}'s cache/ folder)."
        )
        st.button("Run the paired comparison", key=f"cmp_go_{ib}")
        return
    try:
        with st.spinner(f"Comparing {md(run_a.name)} and {md(run_b.name)} (paired bootstrap)..."):
            res = _data.compare(run_a, run_b)
    except Exception as exc:  # one pair that cannot be compared must not hide the others
        st.error(f"Cannot compare {md(run_a.name)} and {md(run_b.name)}: {md(_ui.error_line(exc))}")
        return
    level = round(100 * (1 - res.get("alpha", 0.05)))
    st.markdown(
        f"**{res['n']:,} paired samples**, correctness from the **{res['correctness']}**; "
        f"differences are B - A with {level}% paired bootstrap intervals."
    )
    table = []
    # accuracy-type metrics, then the paired geometry (absent from comparisons cached before it)
    for key, m in [*res["metrics"].items(), *(res.get("geometry") or {}).items()]:
        lo, hi = m.get("ci_low"), m.get("ci_high")
        sig = lo is not None and hi is not None and (lo > 0 or hi < 0)
        table.append(
            {
                "metric": key,
                "A": m["a"],
                "B": m["b"],
                "B - A": m["diff"],
                f"{level}% CI": f"[{lo:+.4f}, {hi:+.4f}]" if lo is not None else "-",
                "significant": "yes" if sig else "no",
            }
        )
    st.dataframe(
        pd.DataFrame(table),
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in ("A", "B", "B - A")
        },
        key=f"cmp_table_{ib}",
    )
    mc = res["mcnemar"]
    ko = res["knn_overlap"]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("McNemar p", f"{mc['pvalue']:.3g}", help=f"{mc['method']} test")
    m2.metric("A right, B wrong", mc["b"])
    m3.metric("A wrong, B right", mc["c"])
    m4.metric(
        f"kNN overlap (k={ko['k']})",
        f"{ko['mean_jaccard']:.3f}",
        help="Mean Jaccard index of each sample's neighbour sets in A and B",
    )

    per_class = res["per_class"]
    classes = list(per_class)
    what = st.radio(
        "Per-class delta",
        ("recall", "f1", "compactness"),
        horizontal=True,
        key=f"cmp_what_{ib}",
    )
    st.plotly_chart(
        _charts.delta_bars(
            classes,
            [per_class[c][f"{what}_delta"] for c in classes],
            title=f"{what}: {run_b.name} - {run_a.name}",
            yaxis=f"{what} delta",
        ),
        key=f"cmp_delta_{ib}",
    )
    labels_a = _samples.annotations(run_a)["label"].to_numpy()
    flip_rows = {d: _data.rows_of(run_a, res["flips"][d]) for d in ("to_correct", "to_wrong")}
    flip_labels = {d: labels_a[r[r >= 0]].tolist() for d, r in flip_rows.items()}
    deltas = _compare_table.per_class_deltas(res, flip_labels)
    st.caption(
        f"Per-class deltas; the recall delta with its {level}% paired bootstrap interval, "
        "greyed where the interval contains 0 (not significant)."
    )
    st.dataframe(
        _compare_table.grey_insignificant(deltas), hide_index=True, key=f"cmp_classes_{ib}"
    )

    st.markdown("##### Flipped samples")
    ann_a = _samples.annotations(run_a)
    pred_b = _samples.annotations(run_b).set_index("sample_id")["pred"]
    for direction, title in (
        ("to_correct", f"wrong in {md(run_a.name)} → correct in {md(run_b.name)}"),
        ("to_wrong", f"correct in {md(run_a.name)} → wrong in {md(run_b.name)}"),
    ):
        ids = res["flips"][direction]
        st.markdown(
            f"**{len(ids)} {title}**"
            + (f" (first {MAX_FLIPS})" if len(ids) > MAX_FLIPS else "")
            + (
                " · captions: label→wrong prediction"
                if ids and res["correctness"] == "head"
                else ""
            )
        )
        if not ids:
            continue
        ids = _flip_page(ids, f"{direction}_{ib}")
        if not ids:
            continue
        rows_a = _data.rows_of(run_a, ids)
        sub = ann_a.iloc[rows_a]
        # Predictions are only those compare_runs judged when they come from both heads.
        if res["correctness"] == "head":
            # label → the wrong prediction (A's for samples B fixed, B's for those B broke).
            wrong = (
                sub["pred"].tolist()
                if direction == "to_correct"
                else [pred_b.get(sid, "?") for sid in sub["sample_id"]]
            )
            captions = [f"{lab}→{w}" for lab, w in zip(sub["label"], wrong, strict=True)]
        else:
            captions = [f"{a.label} · {a.sample_id}" for a in sub.itertuples()]
        _ui.face_grid(run_a, rows_a, captions, width=80)
        with st.expander("As a table"):
            table = {
                "face": _ui.face_uris(run_a, rows_a),
                "sample_id": sub["sample_id"].to_numpy(),
                "label": sub["label"].to_numpy(),
            }
            if res["correctness"] == "head":
                table["pred A"] = sub["pred"].to_numpy()
                table["pred B"] = [pred_b.get(s, "?") for s in sub["sample_id"]]
            st.dataframe(
                pd.DataFrame(table),
                hide_index=True,
                column_config={"face": st.column_config.ImageColumn("face", width="small")},
                key=f"cmp_flips_{direction}_{ib}",
            )


# Lazy tabs: only the open pair is compared and drawn.
tabs = st.tabs(
    [f"{md(run_a.name)} vs {md(runs[i].name)}" for i in ibs], key="cmp_tab", on_change="rerun"
)
for tab, ib in zip(tabs, ibs, strict=True):
    if tab.open:
        with tab:
            draw_pair(runs[ib], ib)
