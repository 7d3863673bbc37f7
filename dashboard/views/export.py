"""Export: the selected runs' metrics as CSV / JSON / Parquet, the HTML report, and their
figures (``ferembed plot``) as SVG / PDF / PNG."""

import streamlit as st

from dashboard import _data, _export, _figures, _ui
from dashboard._safe import code_text, markdown_text
from ferembed.export.figures import FIGURES

st.title("Export")
runs = _ui.require_runs(what="exports")
have = _ui.metrics_for(runs, key="export")
runs = [r for r in runs if _data.run_key(r) in have]
if not runs:
    st.stop()

st.caption(
    f"{len(runs)} run(s): " + ", ".join(code_text(r.name) for r in runs) + ". Files are built by "
    "`ferembed.export` (the same as `ferembed export ... --format F`)."
)
long_df, wide_df = _export.collected_metrics(runs)
st.subheader("Summary (one row per run)")
st.dataframe(wide_df, hide_index=True, key="export_wide")
with st.expander(f"Long table ({len(long_df):,} rows: run, metric, class, value, CI)"):
    st.dataframe(long_df, hide_index=True, key="export_long")

st.subheader("Download")
labels = {
    "csv": "Metrics (CSV, long table)",
    "json": "Metrics (JSON)",
    "parquet": "Metrics (Parquet, long table)",
    "html": "HTML report",
}
cols = st.columns(len(labels))
for col, (fmt, label) in zip(cols, labels.items(), strict=True):
    filename, mime = _export.EXPORT_FORMATS[fmt]
    with col:
        try:
            data = _export.export_bytes(runs, fmt)
        except Exception as exc:  # one failing format must not hide the others
            st.error(f"{fmt}: {markdown_text(_ui.error_line(exc))}")
            continue
        st.download_button(
            label, data=data, file_name=filename, mime=mime, key=f"export_{fmt}", width="stretch",
            on_click="ignore",  # a download needs no rerun (one would swap the file being fetched)
        )  # fmt: skip
        st.caption(f"{filename} · {len(data) / 1024:,.1f} KiB")

st.subheader("Figures")
figure = st.selectbox(
    "Figure",
    [f for f in FIGURES if f != "projection"],  # the projection's is on the Projection page
    key="export_figure",
    help="The figures of `ferembed plot`, for the selected runs.",
)
_figures.download_buttons(runs, figure, key="export_figure_files")
