"""What the page tests read off an AppTest: charts, texts, tables, a run's metrics.json."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd


def metrics_of(root, name) -> dict:
    return json.loads((root / name / "metrics.json").read_text())


def _decode(obj):
    """Plotly's JSON with its typed arrays (``{"dtype", "bdata", "shape"}``) decoded to lists."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            a = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            if "shape" in obj:
                a = a.reshape([int(v) for v in str(obj["shape"]).split(",")])
            return a.tolist()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def chart(at, key) -> dict:
    """The Plotly figure (as plain JSON) of the chart with this key."""
    for el in at.main.get("plotly_chart"):
        if el.key == key:
            return _decode(json.loads(el.proto.spec))
    raise AssertionError(f"no chart {key!r}; have {[e.key for e in at.main.get('plotly_chart')]}")


def texts(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def tables_with(at, *columns: str) -> list[pd.DataFrame]:
    """The page's tables (in page order) that have all these columns."""
    frames = [d.value for d in at.dataframe]
    found = [f for f in frames if set(columns) <= set(f.columns)]
    assert found, f"no table with {columns}; have {[list(f.columns) for f in frames]}"
    return found


def pca(at) -> None:
    """AppTest setup: PCA projections (fast and deterministic)."""
    at.session_state["proj_method"] = "pca"
