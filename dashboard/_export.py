"""The Export page's files: the selected runs' metrics as ``ferembed.export`` writes them (cached).

Nothing is written into the runs root: each file is built in a private temporary folder and read
back as bytes for a download button.
"""

from __future__ import annotations

import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard._data import confined, metrics_stamp, run_key
from ferembed.runs import Run


def _metric_keys(runs: list[Run]) -> tuple:
    return tuple((run_key(confined(r)), metrics_stamp(r)) for r in runs)


@st.cache_data(max_entries=16, show_spinner=False)
def _collect(keys: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ferembed.export import collect_metrics

    return collect_metrics([k[0] for k in keys])


def collected_metrics(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ferembed.export.collect_metrics`` of the runs: (long, wide) tables."""
    return _collect(_metric_keys(runs))


EXPORT_FORMATS = {
    "csv": ("ferembed-metrics.csv", "text/csv"),
    "json": ("ferembed-metrics.json", "application/json"),  # not a run's metrics.json
    "parquet": ("ferembed-metrics.parquet", "application/octet-stream"),
    "html": ("report.html", "text/html"),
}


_TEMPLATE_LOCK = threading.Lock()


@contextmanager
def _plotly_template(name: str = "plotly"):
    """Plotly's default template set to ``name`` for the block (one block at a time).

    Streamlit makes its own theme Plotly's default template; its colours are placeholders
    (#000001, #000002, ...) that only Streamlit's frontend replaces, so a figure written to a
    file under it draws every series in black. The HTML report must look as ``ferembed export``
    writes it (Plotly's own default) and is built under this.
    """
    import plotly.io as pio

    with _TEMPLATE_LOCK:
        before = pio.templates.default
        pio.templates.default = name
        try:
            yield
        finally:
            pio.templates.default = before


@st.cache_data(max_entries=32, show_spinner=False)
def _export(keys: tuple, fmt: str) -> bytes:
    from ferembed.export import export

    filename = EXPORT_FORMATS[fmt][0]
    # Written to a private temporary directory (never into the runs root) and read back.
    with tempfile.TemporaryDirectory(prefix="ferembed-export-") as tmp, _plotly_template():
        out = Path(tmp) / filename
        export([k[0] for k in keys], format=fmt, out=out)
        return out.read_bytes()


def export_bytes(runs: list[Run], fmt: str) -> bytes:
    """The runs' metrics exported by ``ferembed.export.export`` as ``fmt``, as bytes."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {sorted(EXPORT_FORMATS)}, got {fmt!r}")
    return _export(_metric_keys(runs), fmt)
