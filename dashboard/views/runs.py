"""Runs: every run under the root in a sortable table; malformed runs; compute missing metrics."""

import streamlit as st

from dashboard import _data, _ui
from dashboard._safe import code_text, markdown_text
from ferembed.metrics.catalog import CATALOG
from ferembed.metrics.catalog import title as metric_title
from ferembed.runs import METRICS_FILE

root = _ui.root()
st.title("Runs")

entries = _data.scan_runs(root)
bad = [e for e in entries if e.run is None]
table = _data.runs_table(entries)
st.caption(
    f"{len(table)} run(s) under {code_text(root)}. Click a column header to sort; choose the "
    "runs the other pages show in the sidebar."
)
for e in bad:
    st.warning(f"Malformed run {code_text(e.rel)} skipped: {markdown_text(e.error)}")

if table.empty:
    st.info("No runs found. Create one with `ferembed embed` or `ferembed import`.")
else:
    show_all = st.toggle(
        "All columns",
        value=False,
        key="runs_all_columns",
        help="Every headline metric with its 95% CI, the dataset, the architecture and sizes.",
    )
    compact = ["run", "dataset", "split", "loss", *map(metric_title, _data.COMPACT_METRICS)]
    order = list(table.columns) if show_all else [c for c in compact if c in table.columns]

    def metric_column(key: str):
        info = CATALOG.get(key)
        direction = {True: "higher is better", False: "lower is better"}.get(
            info.higher_is_better if info else None, ""
        )
        label = f"{metric_title(key)} {info.arrow}".strip() if info else key
        help_text = f"{info.label}" + (f" ({direction})" if direction else "") if info else None
        return st.column_config.NumberColumn(label, format="%.3f", help=help_text)

    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_order=order,
        column_config={
            # The run's name stays in view when the table scrolls sideways.
            "run": st.column_config.TextColumn("run", pinned=True),
            "N": st.column_config.NumberColumn(format="%d"),
            "D": st.column_config.NumberColumn(format="%d"),
            **{metric_title(key): metric_column(key) for key in _data.TABLE_METRICS},
        },
        key="runs_table",
    )

    missing = [e.run for e in entries if e.run is not None and _data.metrics(e.run) is None]
    if missing:
        st.subheader("Missing metrics")
        st.write(
            f"{len(missing)} run(s) have no {METRICS_FILE} yet: "
            + ", ".join(code_text(r.name) for r in missing)
        )
        if st.button(f"Compute metrics for {len(missing)} run(s)", key="compute_missing"):
            errors = _ui.compute_metrics(missing)
            for line in errors:
                st.error(markdown_text(line))
            if not errors:
                st.rerun()


def _open_path() -> None:
    """Callback of "Add to selection": validate the typed path, then add it to the sidebar."""
    text = st.session_state.get("open_path", "").strip()
    if not text:
        return
    try:
        entry = _data.load_entry(root, text)
    except _data.OutsideRootError as exc:  # also a path too long, a NUL byte, a symlink loop
        st.session_state["open_msg"] = ("error", markdown_text(exc))
        return
    if entry.run is None:
        shown = text if len(text) <= 80 else f"{text[:60]}..."
        msg = f"Cannot open {code_text(shown)}: {markdown_text(entry.error)}"
        st.session_state["open_msg"] = ("error", msg)
        return
    selected = _data.selected_rels()
    if entry.rel not in selected:
        st.session_state[_data.SELECTED_KEY] = [*selected, entry.rel]
    st.session_state["open_msg"] = ("success", f"Added {code_text(entry.rel)} to the selection.")


st.subheader("Open a run by path")
cols = st.columns([4, 1], vertical_alignment="bottom")
cols[0].text_input("Path relative to the runs root", key="open_path", placeholder="losses/arcface")
cols[1].button("Add to selection", key="open_btn", on_click=_open_path)
msg = st.session_state.pop("open_msg", None)
if msg:
    (st.error if msg[0] == "error" else st.success)(msg[1])
