"""The matplotlib drawings behind ``ferembed plot`` (:mod:`ferembed.export.figures`).

Each function takes what was read from the runs (metrics.json, projections) and returns a
``matplotlib.figure.Figure``; it computes no metric. Figures are built without pyplot, so no
window backend is involved (headless, thread-safe). Every panel axes gets a ``gid``
(``panel_<i>``) and every bar a ``gid`` naming its run, so a saved SVG can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferembed._format import is_number, number

#: Points per panel above which the scatter is rasterised (vector text, light files).
RASTER_ABOVE = 1500
#: Classes above which confusion cells are not annotated (the numbers no longer fit).
MAX_ANNOTATED_CLASSES = 16
#: Names of the classifiers in metrics.json's ``confusion`` / ``classification``, as shown.
SOURCE_TITLES = {"head": "head", "knn": "kNN", "centroid": "centroid"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def draw_projection_panels(
    panels: Sequence[dict[str, Any]],
    class_colors: Mapping[str, str],
):
    """One scatter panel per run, coloured by class, one legend for the figure.

    Each panel is scaled to its own points: the alignment makes the orientations comparable,
    but a UMAP layout's scale means nothing, so axes are not shared.

    Args:
        panels: per run ``{"title", "coords": (M, 2), "classes": (M,) class names}``.
        class_colors: class name -> colour (one palette for every panel).
    """
    rows, cols = _grid(len(panels))
    fig = _figure(3.2 * cols, 3.2 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.set_axis_off()
            continue
        panel = panels[i]
        coords, classes = panel["coords"], np.asarray(panel["classes"], dtype=str)
        size = float(np.clip(4000.0 / max(len(coords), 1), 1.0, 16.0))
        for name, colour in class_colors.items():
            mask = classes == name
            if mask.any():
                ax.scatter(
                    coords[mask, 0],
                    coords[mask, 1],
                    s=size,
                    color=colour,
                    linewidths=0,
                    alpha=0.8,
                    rasterized=len(coords) > RASTER_ABOVE,
                )
        ax.set_title(panel["title"], fontsize=9)
        ax.set_gid(f"panel_{i}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    _class_legend(fig, class_colors)
    return fig


def _class_legend(fig, class_colors: Mapping[str, str]) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color=c, label=name, markersize=6)
        for name, c in class_colors.items()
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 8),
        frameon=False,
        fontsize=8,
    )


def draw_confusion_grid(
    rows: Sequence[dict[str, Any]], sources: Sequence[str], *, cells: str = "count"
):
    """Row-normalised confusion matrices: one row of panels per run, one column per classifier.

    Args:
        rows: per run ``{"run", "class_names", "matrices": {source: {"counts", "normalized",
            "accuracy"}}}`` (as in metrics.json; a source the run lacks is left blank).
        sources: the classifier columns, in order.
        cells: annotate each cell with its ``"count"`` or its row ``"percent"``.
    """
    n_classes = max(len(r["class_names"]) for r in rows)
    side = max(2.8, 0.32 * n_classes + 1.2)
    fig = _figure(side * len(sources) + 0.8, side * len(rows))
    axes = fig.subplots(len(rows), len(sources), squeeze=False)
    image, panel = None, 0
    for r, row in enumerate(rows):
        names = row["class_names"]
        for c, source in enumerate(sources):
            ax = axes[r, c]
            block = row["matrices"].get(source)
            if block is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"no {SOURCE_TITLES.get(source, source)} classifier",
                        ha="center", va="center", fontsize=8, color="0.5",
                        transform=ax.transAxes)  # fmt: skip
                continue
            counts = np.asarray(block["counts"], dtype=np.int64)
            rates = np.asarray(block["normalized"], dtype=np.float64)
            image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
            if len(names) <= MAX_ANNOTATED_CLASSES:
                _annotate_cells(ax, counts, rates, cells)
            ticks = np.arange(len(names))
            ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(ticks, names, fontsize=7)
            ax.set_xlabel("predicted", fontsize=8)
            ax.set_ylabel("true", fontsize=8)
            acc = number(block.get("accuracy"), ".1f", percent=True, percent_sign=True)
            title = f"{row['run']} · {SOURCE_TITLES.get(source, source)} (acc {acc})"
            ax.set_title(title, fontsize=9)
            ax.set_gid(f"panel_{panel}")
            panel += 1
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.6)
        bar.set_label("fraction of the true class (row-normalised)", fontsize=8)
    return fig


def _annotate_cells(ax, counts: np.ndarray, rates: np.ndarray, cells: str) -> None:
    for (i, j), rate in np.ndenumerate(rates):
        text = str(counts[i, j]) if cells == "count" else number(rate, ".0f", percent=True)
        ax.text(j, i, text, ha="center", va="center", fontsize=6,
                color="white" if rate > 0.6 else "black")  # fmt: skip


def _bar_style(style: tuple[str, str | None]) -> dict[str, Any]:
    colour, hatch = style
    return {"color": colour, "hatch": hatch, "edgecolor": "white" if hatch else colour}


def draw_metric_bars(
    metrics: Sequence[dict[str, Any]],
    runs: Sequence[str],
    styles: Mapping[str, tuple[str, str | None]],
    *,
    note: str | None = None,
):
    """One panel per metric, one bar per run with its bootstrap interval.

    Args:
        metrics: per panel ``{"key", "title", "label", "values": {run: v}, "cis": {run: [lo, hi]
            or None}}`` (from metrics.json and the metric catalog).
        runs: the runs, in the order of the bars.
        styles: run -> (colour, hatch or None), the run's stable style.
        note: a line under the figure (e.g. that the runs use different distances).
    """
    fig = _figure(max(2.2, 0.55 * len(runs) + 1.0) * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = np.arange(len(runs))
    for i, (ax, entry) in enumerate(zip(axes, metrics, strict=True)):
        for j, run in enumerate(runs):
            v = entry["values"].get(run)
            if not is_number(v):
                ax.text(j, 0, "n/a", ha="center", va="bottom", fontsize=7, color="0.4")
                continue
            ci = entry["cis"].get(run)
            err = None
            if ci is not None and all(is_number(b) for b in ci):
                err = [[max(float(v) - float(ci[0]), 0.0)], [max(float(ci[1]) - float(v), 0.0)]]
            bars = ax.bar(j, float(v), width=0.7, yerr=err, capsize=3,
                          error_kw={"linewidth": 0.8}, **_bar_style(styles[run]))  # fmt: skip
            bars.patches[0].set_gid(f"bar_{run}_{entry['key']}")
        ax.set_xticks(x, runs, rotation=30 if len(runs) > 2 else 0, ha="right", fontsize=8)
        ax.set_title(entry["title"], fontsize=10)
        ax.set_ylabel(entry["label"], fontsize=8)
        ax.set_gid(f"panel_{i}")
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
    if note:
        fig.supxlabel(note, fontsize=7, color="0.35")
    return fig


def draw_recall_bars(
    class_names: Sequence[str],
    recalls: Mapping[str, Mapping[str, float | None]],
    labels: Mapping[str, str],
    styles: Mapping[str, tuple[str, str | None]],
    *,
    title: str,
):
    """Grouped bars: one group per class, one bar per run.

    Args:
        class_names: the classes (x axis), in order.
        recalls: run -> class -> recall (None where the run lacks the class).
        labels: run -> legend label.
        styles: run -> (colour, hatch or None).
        title: the panel title.
    """
    runs = list(recalls)
    fig = _figure(max(4.0, 0.25 * len(class_names) * max(len(runs), 2) + 1.5), 3.6)
    ax = fig.subplots()
    width = 0.8 / max(len(runs), 1)
    x = np.arange(len(class_names))
    for j, run in enumerate(runs):
        offset = (j - (len(runs) - 1) / 2) * width
        label = labels[run]  # on the run's first bar only: one legend entry per run
        for i, name in enumerate(class_names):
            v = recalls[run].get(name)
            if not is_number(v):
                continue
            bars = ax.bar(x[i] + offset, float(v), width=width * 0.95, label=label,
                          **_bar_style(styles[run]))  # fmt: skip
            bars.patches[0].set_gid(f"bar_{run}_{name}")
            label = None
    ax.set_xticks(x, class_names, fontsize=8)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("recall", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_gid("panel_0")
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(runs), 5),
               frameon=False, fontsize=8)  # fmt: skip
    return fig
