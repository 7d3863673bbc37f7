"""Click an aggregate, see its faces (issue #13), in AppTest: a click on a confusion cell or a
per-class bar is set as the chart's selection event the way the browser reports it; the faces
listed are those the runs' files say (labels, logits, per_sample.parquet), counted here with
numpy. The real clicks in Chromium are in test_browser_faces.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import VALID
from page_views import chart

from ferembed.runs import load_run


def _click(at, key: str, custom: list[int], curve: int = 1, index: int = 0) -> None:
    """The selection event of a click on the point with this customdata."""
    point = {"curve_number": curve, "point_index": index, "customdata": custom}
    at.session_state[key] = {
        "selection": {"points": [point], "point_indices": [index], "box": [], "lasso": []}
    }


def _faces(at, container: str) -> int:
    """Faces drawn in the container with this key."""
    return sum(
        len(el.value)
        for el in at.main.get("image")
        if any(container in str(k) for k in _keys_above(el))
    )


def _keys_above(el):
    node = el
    while node is not None:
        yield getattr(node, "key", None) or ""
        node = getattr(node, "parent", None)
