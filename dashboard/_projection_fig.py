"""The Projection page's 2-D figure: every run's panel tiled on ONE WebGL canvas, cached.

Why one canvas and not one subplot per run: in a browser without a GPU (software WebGL, as in
headless Chromium and on many remote desktops) drawing cost follows the number of WebGL
subplots and the canvas's pixel area, not the number of points. Measured with plotly.js alone
(``docs/benchmarks.md``): six runs of 1,400 points as six ``Scattergl`` subplots 1,380 px high
take 2.0-2.5 s to draw; the same six panels tiled on one x/y axis 690 px high take 0.6-1.0 s, and
one panel of 8,400 points 0.8 s. So each run's (Procrustes-aligned) coordinates are shifted into
a tile of one shared axis, tiles laid out 3 across, titles as annotations; runs stay comparable
because every tile keeps the common scale of the aligned coordinates.

Each trace holds one run's points of one category (class, prediction, ...), with ``customdata``
``[panel, run row]``, as ``_charts.projection_chart`` does: the linked selection
(``dashboard._selection``) maps a clicked point back to its run and sample.

The figure is built once per (runs, projections, colouring) and kept by ``st.cache_data``: a
cached page switch only re-sends it. Above :data:`HOVER_TEXT_MAX` points, points carry no
per-point hover text (hover names the category; the selection lists the faces): the text is
most of the figure's bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import _data
from dashboard._charts import CLASS_COLORS, MAX_LEGEND_CATEGORIES
from dashboard._safe import plotly_text
from ferembed.projection import FULL_MAX_POINTS, Projection, subsample_projection
from ferembed.runs import Run

#: Points drawn per run by default: every point of runs up to this size.
DRAWN_POINTS = 100_000
#: Tiles per row of the canvas.
TILE_COLUMNS = 3
#: Height in pixels of one row of tiles (the canvas's area is what software WebGL pays for).
ROW_HEIGHT = 340
#: Points of the whole figure above which points carry no hover text.
HOVER_TEXT_MAX = 30_000
#: Room around each tile, as a fraction of its data span (and above it, for its title).
_PAD, _TITLE_ROOM = 0.08, 0.14


def _natural_key(s: str):
    return (0, int(s)) if str(s).lstrip("-").isdigit() else (1, str(s))


def _categories(panels: Sequence[dict], order: Sequence[str] | None) -> list[str]:
    present = sorted({str(c) for p in panels for c in p["color"]}, key=_natural_key)
    if order is None:
        return present
    order = [str(c) for c in order]
    return [c for c in order if c in present] + [c for c in present if c not in order]


def tile_offsets(coords: Sequence[np.ndarray], columns: int = TILE_COLUMNS) -> tuple:
    """Where each panel's points go on the shared axis.

    Every panel gets a tile of the same size (the largest span of any panel, so aligned runs
    keep one scale) in a grid ``columns`` wide, filled row by row from the top.

    Args:
        coords: per panel (M_i, 2) coordinates.

    Returns:
        ``(offsets (P, 2) to add to each panel's coords, (tile width, tile height), centres
        (P, 2) of the panels' own boxes before shifting)``.
    """
    lows = np.array([c.min(axis=0) if len(c) else (0.0, 0.0) for c in coords], dtype=np.float64)
    highs = np.array([c.max(axis=0) if len(c) else (0.0, 0.0) for c in coords], dtype=np.float64)
    span = np.maximum((highs - lows).max(axis=0), 1e-6)
    width = span[0] * (1 + 2 * _PAD)
    height = span[1] * (1 + 2 * _PAD + _TITLE_ROOM)
    centres = (lows + highs) / 2
    offsets = np.zeros((len(coords), 2))
    for i in range(len(coords)):
        row, col = divmod(i, columns)
        tile_centre = np.array([(col + 0.5) * width, -(row + 0.5) * height - span[1] * _TITLE_ROOM])
        offsets[i] = tile_centre - centres[i]
    return offsets, (width, height), centres


def tiled_projection_figure(
    panels: Sequence[dict],
    *,
    color_kind: str,
    categories: Sequence[str] | None = None,
    cmin: float | None = None,
    cmax: float | None = None,
    color_title: str = "",
) -> go.Figure:
    """The 2-D projection of several runs on one WebGL canvas, one tile per run.

    Args:
        panels: per run a dict with ``title``, ``coords`` (M, 2), ``color`` (M,) category names
            (``color_kind="category"``) or floats (``"continuous"``), ``hover`` (M,) str and
            ``customdata`` (M, 2) int ``[panel index, run row]`` (``_samples.projection_panel``).
        color_kind: ``"category"`` or ``"continuous"``.
        categories: legend order of the categories (default: natural sort of those present).
        cmin, cmax, color_title: the continuous colour scale.
    """
    coords = [np.asarray(p["coords"], dtype=np.float32)[:, :2] for p in panels]
    offsets, (width, height), _ = tile_offsets(coords)
    total = sum(len(c) for c in coords)
    hover = total <= HOVER_TEXT_MAX
    cats = _categories(panels, categories) if color_kind == "category" else []
    many = len(cats) > MAX_LEGEND_CATEGORIES
    palette = {c: CLASS_COLORS[i % len(CLASS_COLORS)] for i, c in enumerate(cats)}
    size = 5 if total <= 20_000 else 3 if total <= 100_000 else 2
    fig = go.Figure()
    for i, p in enumerate(panels):
        xy = (coords[i] + offsets[i]).astype(np.float32)
        custom = np.asarray(p["customdata"])
        color = np.asarray(p["color"], dtype=object)
        texts = np.asarray(p["hover"], dtype=object) if hover else None
        if color_kind == "category" and not many:
            groups = [(cat, color.astype(str) == cat) for cat in cats]
        else:
            groups = [(None, np.ones(len(xy), dtype=bool))]
        for cat, mask in groups:
            if not mask.any():
                continue
            if cat is not None:
                marker = {"size": size, "color": palette[cat], "opacity": 0.8}
            elif color_kind == "category":
                marker = {"size": size, "color": [palette[str(v)] for v in color[mask]]}
            else:
                marker = {
                    "size": size,
                    "color": np.asarray(color[mask], dtype=float),
                    "colorscale": "Viridis",
                    "cmin": cmin,
                    "cmax": cmax,
                    "showscale": i == 0,
                    "colorbar": {"title": color_title, "len": 0.6},
                }
            trace = {
                "x": xy[mask, 0],
                "y": xy[mask, 1],
                "mode": "markers",
                "marker": marker,
                "name": plotly_text(cat if cat is not None else p["title"]),
                "legendgroup": plotly_text(cat),
                "showlegend": cat is not None and i == 0,
                "customdata": custom[mask],
            }
            if texts is not None:
                trace.update(hovertext=texts[mask], hovertemplate="%{hovertext}<extra></extra>")
            else:
                trace.update(hovertemplate="%{fullData.name}<extra></extra>")
            fig.add_trace(go.Scattergl(**trace))
    rows = max(1, -(-len(panels) // TILE_COLUMNS))
    columns = min(len(panels), TILE_COLUMNS) or 1
    for i, p in enumerate(panels):
        row, col = divmod(i, TILE_COLUMNS)
        fig.add_annotation(
            x=(col + 0.5) * width,
            y=-row * height,
            text=plotly_text(p["title"]),
            showarrow=False,
            yanchor="top",
            font={"size": 14},
        )
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": None}
    fig.update_xaxes(range=[0, columns * width], **axis)
    fig.update_yaxes(range=[-rows * height, 0], **axis)
    # Tile borders: thin lines between tiles, drawn once as layout shapes (not traces).
    for col in range(1, columns):
        fig.add_vline(x=col * width, line_color="rgba(128,128,128,0.3)", line_width=1)
    for row in range(1, rows):
        fig.add_hline(y=-row * height, line_color="rgba(128,128,128,0.3)", line_width=1)
    fig.update_layout(
        dragmode="select",
        height=ROW_HEIGHT * rows + 60,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={
            "orientation": "h",
            "yanchor": "top",
            "y": -0.02,
            "xanchor": "left",
            "x": 0,
            "itemsizing": "constant",
        },
    )
    return fig


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_figure(key: tuple, _panels: list, kind: dict) -> go.Figure:
    del key
    return tiled_projection_figure(_panels, **kind)


def projection_figure(key: tuple, panels: list, **kind) -> go.Figure:
    """:func:`tiled_projection_figure`, built once per ``key`` (what the panels were made
    from: runs, their stamps, projection parameters, colouring) and copied out of the cache, so
    the page may mark a selection on it.

    A resource, copied with ``go.Figure``: ``st.cache_data`` would pickle the figure, and a
    pickled Plotly figure comes back with its arrays as base64 dicts, not arrays.
    """
    return go.Figure(_cached_figure(key, panels, kind))


def load_projection(run: Run, *, dim: int, method: str, max_points: int) -> Projection:
    """The projection of about ``max_points`` points of ``run`` to draw.

    ``ferembed project`` caches every point of a run up to :data:`FULL_MAX_POINTS`: when that
    entry exists it is read and a stratified sample of ``max_points`` of its points drawn;
    otherwise the projection of ``max_points`` points is computed (and cached) as asked.
    """
    load = max_points
    if max_points < min(run.n, FULL_MAX_POINTS) and _data.is_projection_cached(
        run, dim=dim, method=method, max_points=FULL_MAX_POINTS
    ):
        load = FULL_MAX_POINTS
    proj = _data.projection_for(run, dim=dim, method=method, max_points=load)
    if proj.n_shown <= max_points:
        return proj
    key = (_data.run_key(run), _data.manifest_stamp(run), tuple(sorted(proj.params.items())))
    return _drawn(key, max_points, run, proj)


@st.cache_data(max_entries=32, show_spinner=False)
def _drawn(key: tuple, max_points: int, _run: Run, _proj: Projection) -> Projection:
    del key
    ids = _data.sample_ids(_run)[_proj.indices]
    return subsample_projection(_proj, ids, _run.labels[_proj.indices], max_points)
