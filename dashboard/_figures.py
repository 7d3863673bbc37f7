"""The "Download figure" of a page: its's figure of the selected runs as SVG, PDF and PNG files.

The files are drawn by :func:`ferembed.export.figures.plot_runs` (matplotlib: no browser, no
network), the same as ``ferembed plot RUN... --what FIGURE --format svg,pdf,png``, so a figure
downloaded here is the one the command writes. Drawing is asked for (a toggle), then cached per
runs, their files' stamps and the figure's parameters; the downloads need no rerun.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from dashboard import _data, _ui
from dashboard._safe import markdown_text
from ferembed.export.figures import IMAGE_FORMATS, plot_runs
from ferembed.runs import Run

#: MIME type of each figure file format.
MIME = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}


def figure_files(runs: Sequence[Run], figure: str, **params) -> dict[str, bytes]:
    """``{format: file bytes}`` of ``figure`` (one of ``ferembed.export.figures.FIGURES``) of the
    runs, in every :data:`ferembed.export.figures.IMAGE_FORMATS` (cached).

    Raises:
        FerembedError: a run without an up-to-date metrics.json, or lacking what the figure needs.
    """
    key = tuple((_data.run_key(r), _data.manifest_stamp(r), _data.metrics_stamp(r)) for r in runs)
    return _figure_files(key, figure, tuple(sorted(params.items())), [str(r.path) for r in runs])


@st.cache_data(max_entries=16, show_spinner=False)
def _figure_files(key: tuple, figure: str, params: tuple, paths: list[str]) -> dict[str, bytes]:
    del key
    with tempfile.TemporaryDirectory(prefix="ferembed-fig-") as tmp:
        written = plot_runs(
            paths, out=Path(tmp) / "figures", what=(figure,), formats=IMAGE_FORMATS, **dict(params)
        )
        return {p.suffix[1:]: p.read_bytes() for p in written}


def download_buttons(runs: Sequence[Run], figure: str, *, key: str, **params) -> None:
    """A "Download figure" toggle; when on, one download button per format of ``figure``."""
    if not st.toggle(
        "Download figure (SVG, PDF, PNG)",
        key=key,
        help="Drawn with matplotlib by `ferembed plot` (the same files), for the selected runs.",
    ):
        return
    try:
        with st.spinner(f"Drawing the {figure} figure..."):
            files = figure_files(runs, figure, **params)
    except Exception as exc:  # one line (a run without metrics.json, ...), never a traceback
        st.error(f"{figure} figure: {markdown_text(_ui.error_line(exc))}")
        return
    cols = st.columns(len(files))
    for col, (fmt, data) in zip(cols, files.items(), strict=True):
        col.download_button(
            f"{figure}.{fmt} ({len(data) / 1024:,.0f} KiB)",
            data=data,
            file_name=f"{figure}.{fmt}",
            mime=MIME[fmt],
            key=f"{key}_{fmt}",
            on_click="ignore",  # a download needs no rerun
        )
