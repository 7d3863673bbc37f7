"""Plotly figure builders for the dashboard: plain data in, ``go.Figure`` out (no Streamlit).

Titles, trace names and category labels are user text (run and class names): each builder passes
them through ``plotly_text``, so Plotly shows tags such as ``<a href>`` instead of drawing them.
Hover texts given ready-made (``projection_chart``) are escaped by whoever builds them.

Only the projection uses WebGL (``Scattergl`` / ``Scatter3d``) and it draws every run into one
figure, so a page holds at most one 2-D WebGL canvas (or one 3-D scene per run, capped by the
page); browsers limit the number of live WebGL contexts to a dozen or so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dashboard._safe import plotly_text

#: Colours of runs (fixed per run: ``_ui.run_colors``), starting with Plotly's default colours
#: (those of ``ferembed export``'s HTML report).
RUN_COLORS = qualitative.Plotly + qualitative.Dark24
#: Colours of classes: a separate (colour-blind safe) palette, never confused with runs.
CLASS_COLORS = qualitative.Safe + qualitative.Pastel
#: Differences (B - A): a diverging scale centred at 0 (no red / green).
DIVERGING = "RdBu"
#: The smallest half-range of a difference scale: +-0.02 stays pale instead of filling the scale.
DELTA_FLOOR = 0.1
#: A value axis turns logarithmic when its positive values span more than this many decades.
LOG_DECADES = 2.0
#: Categorical colourings with more categories than this share one trace (no legend).
MAX_LEGEND_CATEGORIES = 20


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def delta_limit(values, *, floor: float = DELTA_FLOOR) -> float:
    """Half-range of a symmetric difference scale: max |value|, but at least ``floor``."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return max(float(v.max()) if v.size else 0.0, floor)


def wants_log_axis(values, *, decades: float = LOG_DECADES) -> bool:
    """Whether values (all >= 0) span more than ``decades`` powers of ten (a linear axis would
    flatten the small ones)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or (v < 0).any():
        return False
    pos = v[v > 0]
    return pos.size > 1 and float(np.log10(pos.max() / pos.min())) > decades


def _layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    # The legend sits below the plot, anchored by its top, with room for it in the margin: it
    # never covers the axes or their titles.
    fig.update_layout(
        title=None if title is None else plotly_text(title),
        height=height,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _colors(colors: Sequence[str] | None, n: int) -> list[str]:
    return list(colors) if colors is not None else [run_color(i) for i in range(n)]


def grouped_bars(
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    yaxis: str,
    height: int = 340,
    colors: Sequence[str] | None = None,
    log_y: bool = False,
    clickable: bool = False,
    picked: tuple[int, int] | None = None,
) -> go.Figure:
    """One bar group per category, one bar per series (run), all on the same axes.

    Args:
        categories: (K,) x-axis labels (class names).
        series: run name -> (K,) values (NaN / None leave a gap).
        colors: one colour per series (default: by position).
        log_y: a logarithmic value axis.
        clickable: each bar carries ``customdata`` ``[series index, category index]`` (what a
            click selection returns) and its hover says that a click shows faces.
        picked: ``(series index, category index)`` of a bar to outline (the picked one).
    """
    fig = go.Figure()
    colors = _colors(colors, len(series))
    hint = "<br>click: this class's hardest faces" if clickable else ""
    for i, (name, values) in enumerate(series.items()):
        fig.add_bar(
            x=_texts(categories),
            y=[None if v is None or not np.isfinite(v) else float(v) for v in values],
            name=plotly_text(name),
            marker_color=colors[i],
            hovertemplate=f"%{{fullData.name}}<br>%{{x}}: %{{y:.4g}}{hint}<extra></extra>",
            customdata=[[i, k] for k in range(len(categories))] if clickable else None,
        )
        if picked is not None and picked[0] == i:
            widths = [3 if k == picked[1] else 0 for k in range(len(categories))]
            fig.data[-1].marker.line = {"color": "black", "width": widths}
    fig.update_layout(barmode="group", yaxis_title=yaxis)
    if log_y:
        fig.update_yaxes(type="log")
    return _layout(fig, title, height)


def heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    *,
    title: str | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    colorscale: str = "Viridis",
    fmt: str = ".2f",
    xaxis: str = "",
    yaxis: str = "",
    height: int = 420,
    showscale: bool = True,
    zmid: float | None = None,
    clickable: bool = False,
    counts: np.ndarray | None = None,
) -> go.Figure:
    """A labelled K x K heatmap with the values written in the cells (rows top to bottom);
    ``zmid`` centres a diverging ``colorscale`` (differences: 0).

    Plotly reports no selection for a click on a heatmap cell, so ``clickable`` lays a second
    trace over it: one invisible square marker per cell (a scatter, which click selection
    supports) with ``customdata`` ``[row, column]`` and the cell's hover text (``counts``, a
    (K, K) matrix, adds "n = ..."). The heatmap itself is ``data[0]`` either way.
    """
    z = np.asarray(matrix, dtype=float)
    text = [[("" if not np.isfinite(v) else format(v, fmt)) for v in row] for row in z]
    names = _texts(labels)
    hover = f"{yaxis or 'row'} %{{y}}<br>{xaxis or 'col'} %{{x}}<br>%{{z:{fmt}}}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            zmin=zmin,
            zmax=zmax,
            zmid=zmid,
            colorscale=colorscale,
            text=text,
            texttemplate="%{text}",
            hovertemplate=hover,
            hoverinfo="skip" if clickable else None,
            showscale=showscale,
        )
    )
    # Category axes: class names such as "1" stay labels, and cell i sits at position i.
    fig.update_yaxes(autorange="reversed", title=yaxis, type="category")
    fig.update_xaxes(title=xaxis, type="category")
    if clickable:
        fig.add_trace(_cell_targets(z, names, text, counts, xaxis, yaxis, height))
        # Fixed ranges: the markers would pad the axes and leave a margin round the cells.
        k = len(names)
        fig.update_xaxes(range=[-0.5, k - 0.5], autorange=False)
        fig.update_yaxes(range=[k - 0.5, -0.5], autorange=False)
    return _layout(fig, title, height)


def outline_cell(fig: go.Figure, row: int, col: int) -> None:
    """Outline the cell (row, col) of a :func:`heatmap` (in place)."""
    fig.add_shape(
        type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5,
        line={"color": "black", "width": 3}, fillcolor="rgba(0,0,0,0)",
    )  # fmt: skip


def _cell_targets(
    z: np.ndarray,
    names: list[str],
    text: list[list[str]],
    counts: np.ndarray | None,
    xaxis: str,
    yaxis: str,
    height: int,
) -> go.Scatter:
    """The invisible click targets of a clickable heatmap: one marker per cell."""
    k = len(names)
    rows, cols = np.divmod(np.arange(k * k), k)
    n = None if counts is None else np.asarray(counts)
    hover = [
        f"{yaxis or 'row'} {names[i]}<br>{xaxis or 'col'} {names[j]}<br>{text[i][j]}"
        + ("" if n is None else f"<br>n = {int(n[i, j]):,}")
        + "<br>click: the faces in this cell"
        for i, j in zip(rows, cols, strict=True)
    ]
    # About half a cell (the plot area is roughly the figure's height less 120 px of titles
    # and labels): a click anywhere in the cell is nearest to its own marker.
    size = float(np.clip(0.5 * (height - 120) / max(k, 1), 6, 40))
    return go.Scatter(
        x=[names[j] for j in cols],
        y=[names[i] for i in rows],
        mode="markers",
        marker={"symbol": "square", "size": size, "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 0}},
        unselected={"marker": {"opacity": 0}},
        customdata=np.stack([rows, cols], axis=1),
        hovertext=hover,
        hovertemplate="%{hovertext}<extra></extra>",
        showlegend=False,
        name="cells",
    )


def histogram_chart(
    hists: dict[str, dict],
    *,
    title: str,
    height: int = 380,
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """Intra-class (solid) and inter-class (dashed) distance distributions of several runs.

    Args:
        hists: run name -> metrics.json ``histograms`` (``bin_edges``, ``intra``, ``inter``).
        colors: one colour per run (default: by position).
    """
    fig = go.Figure()
    colors = _colors(colors, len(hists))
    for i, (name, h) in enumerate(hists.items()):
        edges = np.asarray(h["bin_edges"], dtype=float)
        centres = (edges[:-1] + edges[1:]) / 2
        for part, dash in (("intra", "solid"), ("inter", "dash")):
            fig.add_scatter(
                x=centres,
                y=np.asarray(h[part], dtype=float),
                mode="lines",
                name=f"{plotly_text(name)} · {part}",
                line={"color": colors[i], "dash": dash, "shape": "hvh"},
                hovertemplate="%{fullData.name}<br>d=%{x:.3f}: %{y:.4f}<extra></extra>",
            )
    fig.update_layout(xaxis_title="distance", yaxis_title="fraction of pairs")
    fig = _layout(fig, title, height)
    # One legend entry per run and part: a column right of the plot, outside the axes.
    fig.update_layout(
        legend={"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.02}
    )
    return fig


def metric_bars(
    metrics: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    height: int = 320,
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """Scalar metrics (x) for several runs (bars); a log axis when the values span more than
    :data:`LOG_DECADES` decades (one large value would flatten the others)."""
    log_y = wants_log_axis([v for vals in series.values() for v in vals if v is not None])
    return grouped_bars(
        metrics,
        series,
        title=title,
        yaxis="value (log scale)" if log_y else "value",
        height=height,
        colors=colors,
        log_y=log_y,
    )


def delta_bars(
    categories: Sequence[str],
    deltas: Sequence[float],
    *,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    title: str,
    yaxis: str,
    height: int = 320,
) -> go.Figure:
    """Per-class differences (B - A), coloured on a diverging scale centred at 0, on a symmetric
    axis of at least +-:data:`DELTA_FLOOR`, with optional CI error bars."""
    d = np.asarray([np.nan if v is None else v for v in deltas], dtype=float)
    err = None
    if low is not None and high is not None:
        lo = np.asarray([np.nan if v is None else v for v in low], dtype=float)
        hi = np.asarray([np.nan if v is None else v for v in high], dtype=float)
        err = {"type": "data", "array": hi - d, "arrayminus": d - lo, "visible": True}
        lim = delta_limit(np.concatenate([d, lo, hi]))
    else:
        lim = delta_limit(d)
    fig = go.Figure(
        go.Bar(
            x=_texts(categories),
            y=d,
            error_y=err,
            marker={
                "color": np.nan_to_num(d),
                "colorscale": DIVERGING,
                "cmid": 0.0,
                "cmin": -lim,
                "cmax": lim,
                "line": {"color": "grey", "width": 0.5},
            },
            hovertemplate="%{x}: %{y:+.4f}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_color="grey", line_width=1)
    fig.update_layout(yaxis_title=yaxis)
    fig.update_yaxes(range=[-1.05 * lim, 1.05 * lim], zeroline=True)
    return _layout(fig, title, height)


def projection_chart(
    panels: Sequence[dict],
    *,
    color_kind: str,
    dim: int = 2,
    height_per_row: int = 460,
    cmin: float | None = None,
    cmax: float | None = None,
    color_title: str = "",
    categories: Sequence[str] | None = None,
) -> go.Figure:
    """Scatter of several runs' projections, one subplot (2-D) or 3-D scene per run.

    Args:
        panels: per run a dict with ``title``, ``coords`` (M, dim), ``color`` (M,) category names
            (``color_kind="category"``) or floats (``"continuous"``), ``hover`` (M,) str and
            ``customdata`` (M, 2) int ``[panel index, run row]`` (returned by selections).
        color_kind: ``"category"`` or ``"continuous"``.
        dim: 2 (one shared WebGL canvas) or 3 (a scene per run).
        categories: legend order of the categories (default: natural sort of those present).
    """
    n = len(panels)
    cols = min(n, 2) if n > 1 else 1
    rows = -(-n // cols) if n else 1
    spec_type = "scene" if dim == 3 else "xy"
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[plotly_text(p["title"]) for p in panels],
        specs=[[{"type": spec_type}] * cols for _ in range(rows)],
        horizontal_spacing=0.04,
        vertical_spacing=0.08,
    )
    present: list[str] = []
    if color_kind == "category":
        present = sorted({str(c) for p in panels for c in p["color"]}, key=_natural_key)
        if categories is not None:
            order = [str(c) for c in categories]
            present = [c for c in order if c in present] + [c for c in present if c not in order]
    categories = present
    many = len(categories) > MAX_LEGEND_CATEGORIES
    palette = {c: CLASS_COLORS[i % len(CLASS_COLORS)] for i, c in enumerate(categories)}
    size = 3 if dim == 3 else 5
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        coords = np.asarray(p["coords"], dtype=np.float32)
        hover = np.asarray(p["hover"], dtype=object)
        custom = np.asarray(p["customdata"])
        color = np.asarray(p["color"], dtype=object)
        if color_kind == "category" and not many:
            groups = [(cat, color == cat) for cat in categories]
        else:
            groups = [(None, np.ones(len(coords), dtype=bool))]
        for cat, mask in groups:
            if not mask.any():
                continue
            if cat is not None:
                marker = {"size": size, "color": palette[cat], "opacity": 0.8}
            elif color_kind == "category":
                marker = {"size": size, "color": [palette[v] for v in color[mask]]}
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
            common = {
                "mode": "markers",
                "marker": marker,
                "name": plotly_text(cat if cat is not None else p["title"]),
                "legendgroup": plotly_text(cat),
                "showlegend": cat is not None and i == 0,
                "customdata": custom[mask],
                "hovertext": hover[mask],
                "hovertemplate": "%{hovertext}<extra></extra>",
            }
            if dim == 3:
                trace = go.Scatter3d(
                    x=coords[mask, 0], y=coords[mask, 1], z=coords[mask, 2], **common
                )
            else:
                trace = go.Scattergl(x=coords[mask, 0], y=coords[mask, 1], **common)
            fig.add_trace(trace, row=r + 1, col=c + 1)
    if dim == 2:
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    else:
        axis = {"showticklabels": False, "title": ""}
        fig.update_scenes(xaxis=axis, yaxis=axis, zaxis=axis)
    fig.update_layout(dragmode="select" if dim == 2 else "orbit", legend={"itemsizing": "constant"})
    fig = _layout(fig, None, height_per_row * rows)
    # Room above the subplot titles for Plotly's toolbar.
    fig.update_layout(margin={"t": 60})
    return fig


def _texts(values: Sequence) -> list[str]:
    """Category labels (class names) as Plotly text."""
    return [plotly_text(v) for v in values]


def _natural_key(s: str):
    return (0, int(s)) if str(s).lstrip("-").isdigit() else (1, str(s))
