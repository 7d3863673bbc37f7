"""Paper-ready static figures of runs, drawn headlessly (``ferembed plot``).

:func:`plot_runs` writes, for the runs given, any of the :data:`FIGURES`:

* ``projection``: one panel per run (UMAP or PCA from :func:`ferembed.runs.project_runs`,
  Procrustes-aligned onto the first run), points coloured by class with one class palette;
* ``confusion``: the row-normalised confusion matrices of metrics.json (head, kNN, centroid),
  one row of panels per run, cells annotated with counts or percentages;
* ``geometry``: compactness, separation and Fisher ratio with their bootstrap intervals;
* ``recall``: per-class recall of each run's classifier, grouped by class.

as ``OUT/<figure>.<format>`` for each of the :data:`IMAGE_FORMATS` asked. Every number drawn is
read from a run's metrics.json (or, for projections, from the run's embeddings through the
projection cache); nothing is recomputed here. Titles and directions come from
:mod:`ferembed.metrics.catalog`.

Colours: a run's colour depends on its name only (:func:`stable_run_colors`), so it is the same
in every figure whichever runs are plotted with it; two runs of one figure whose names land on the
same colour are told apart by a hatch, given in the order of their sorted names. Classes use
another palette (:data:`CLASS_PALETTE`).
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ferembed.export._draw as _draw
from ferembed import _io
from ferembed.errors import FerembedError
from ferembed.export.tables import RunMetrics, _expand, read_runs
from ferembed.metrics.catalog import metric_info
from ferembed.projection import DEFAULT_MAX_POINTS, projection_params
from ferembed.runs import evaluate_run, is_run_dir, load_run, project_runs
from ferembed.runs._outputs import check_output

__all__ = [
    "CELL_MODES",
    "CLASSIFIERS",
    "CLASS_PALETTE",
    "FIGURES",
    "GEOMETRY_METRICS",
    "IMAGE_FORMATS",
    "RUN_PALETTE",
    "plot_runs",
    "stable_run_colors",
]

FIGURES = ("projection", "confusion", "geometry", "recall")
IMAGE_FORMATS = ("svg", "pdf", "png")
#: What a confusion cell shows: its count, or its share of the true class in percent.
CELL_MODES = ("count", "percent")
#: Whose per-class recall is drawn: each run's primary classifier (head when it has logits,
#: else kNN; metrics.json's ``classification.primary``) or one named classifier.
CLASSIFIERS = ("primary", "head", "knn", "centroid")
#: The geometry panels, metrics.json keys with catalog entries.
GEOMETRY_METRICS = ("compactness", "class_separation", "fisher_ratio")
#: Run colours (Tableau 10), indexed by a hash of the run's name.
RUN_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
#: Class colours (Okabe-Ito, colour-blind safe, then ColorBrewer Dark2), by class position.
CLASS_PALETTE = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000",
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
)  # fmt: skip
_HATCHES = ("//", "..", "xx", "\\\\", "oo", "++", "--", "**")
#: Fonts stay text in SVG and TrueType in PDF (editable in a paper's figure tools); no dates in
#: the files, so the same runs give the same bytes.
_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "ferembed"}
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}


def stable_run_colors(names: Iterable[str]) -> dict[str, str]:
    """Each run's colour, a function of its name alone: ``RUN_PALETTE[crc32(name) % 10]``.

    The same run gets the same colour in every figure and whatever runs it is plotted with.
    """
    return {n: RUN_PALETTE[zlib.crc32(n.encode("utf-8")) % len(RUN_PALETTE)] for n in names}


def _run_styles(names: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """``name -> (colour, hatch)``: the stable colour; runs of this figure sharing a colour get a
    hatch each after the first, in the order of their sorted names."""
    colours = stable_run_colors(names)
    seen: dict[str, int] = {}
    styles = {}
    for name in sorted(names):
        k = seen.get(colours[name], 0)
        seen[colours[name]] = k + 1
        styles[name] = (colours[name], None if k == 0 else _HATCHES[(k - 1) % len(_HATCHES)])
    return styles


def _class_colors(class_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """One colour per class over several runs: the union of their class names, in the order
    they first appear, coloured from :data:`CLASS_PALETTE`."""
    names = list(dict.fromkeys(str(c) for classes in class_lists for c in classes))
    return {c: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, c in enumerate(names)}


def _choices(values: Sequence[str], valid: Sequence[str], what: str) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(values))
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise ValueError(f"{what} must be among {', '.join(valid)}; got {', '.join(bad) or 'none'}")
    return values


def _ensure_metrics(paths: Sequence[Path], *, evaluate: bool) -> None:
    """Evaluate the runs whose metrics.json is missing or stale, or name them all in one line."""
    todo = []
    for path in paths:
        run = load_run(path, check_arrays=False)
        if not run.metrics_path.exists() or run.metrics_status()[0] == "stale":
            todo.append(run.path)
    if todo and not evaluate:
        listed = " ".join(str(p) for p in todo)
        raise FerembedError(
            f"no up-to-date metrics for {len(todo)} run(s): {listed}; run `ferembed evaluate "
            f"{listed}` first, or plot with --evaluate"
        )
    for path in todo:
        evaluate_run(path)


def _source(run: RunMetrics, classifier: str) -> str:
    classification = run.metrics.get("classification") or {}
    return classification.get("primary", "") if classifier == "primary" else classifier


def _check_sources(runs: Sequence[RunMetrics], what: Sequence[str], classifier: str) -> None:
    """Refuse, before drawing, runs whose metrics.json lacks what a figure needs."""
    if "confusion" in what:
        lacking = [r.name for r in runs if not _confusion_blocks(r)]
        if lacking:
            raise FerembedError(
                f"no confusion matrix in the metrics of {', '.join(lacking)} (evaluated without "
                "the classification group)"
            )
    if "recall" in what:
        lacking = [r.name for r in runs if not _has_classifier(r, classifier)]
        if lacking:
            raise FerembedError(
                f"no {classifier} classifier in the metrics of {', '.join(lacking)} "
                "(choose another with --classifier)"
            )


def _has_classifier(run: RunMetrics, classifier: str) -> bool:
    classification = run.metrics.get("classification") or {}
    return isinstance(classification.get(_source(run, classifier)), dict)


def _confusion_blocks(run: RunMetrics) -> dict[str, dict[str, Any]]:
    confusion = run.metrics.get("confusion") or {}
    classification = run.metrics.get("classification") or {}
    out = {}
    for source in _draw.SOURCE_TITLES:
        block = confusion.get(source)
        if isinstance(block, dict) and "counts" in block and "normalized" in block:
            scores = classification.get(source) or {}
            out[source] = {**block, "accuracy": scores.get("accuracy")}
    return out


def _class_names(run: RunMetrics) -> list[str]:
    return [str(c) for c in run.metrics.get("class_names") or []]


def _projection_figure(runs: Sequence[RunMetrics], **params: Any):
    loaded = [load_run(r.path) for r in runs]
    projections = project_runs(loaded, dim=2, **params)
    panels = []
    for i, (r, run, proj) in enumerate(zip(runs, loaded, projections, strict=True)):
        classes = [run.class_names[c] for c in run.labels[proj.indices]]
        title = f"{r.name} ({proj.params['method'].upper()}"
        title += f", {proj.n_shown} of {proj.n_total})" if proj.sampled else ")"
        if i > 0 and proj.aligned_to is None:
            title += f"\nnot aligned: no faces shared with {runs[0].name}"
        panels.append({"title": title, "coords": proj.coords, "classes": classes})
    colours = _class_colors(run.class_names for run in loaded)
    return _draw.draw_projection_panels(panels, colours)


def _confusion_figure(runs: Sequence[RunMetrics], cells: str):
    rows = [
        {"run": r.name, "class_names": _class_names(r), "matrices": _confusion_blocks(r)}
        for r in runs
    ]
    sources = [s for s in _draw.SOURCE_TITLES if any(s in row["matrices"] for row in rows)]
    return _draw.draw_confusion_grid(rows, sources, cells=cells)


def _geometry_figure(runs: Sequence[RunMetrics]):
    names = [r.name for r in runs]
    panels = []
    for key in GEOMETRY_METRICS:
        info = metric_info(key)
        panels.append({
            "key": key,
            "title": f"{info.title} {info.arrow}".strip(),
            "label": info.label,
            "values": {r.name: r.metrics.get(key) for r in runs},
            "cis": {r.name: (r.metrics.get("ci") or {}).get(key) for r in runs},
        })  # fmt: skip
    note = "error bars: 95% bootstrap intervals (metrics.json)"
    distances = sorted({str(r.metrics.get("distance")) for r in runs})
    if len(distances) > 1:
        note += f"; distances differ ({', '.join(distances)}): not comparable across them"
    return _draw.draw_metric_bars(panels, names, _run_styles(names), note=note)


def _recall_figure(runs: Sequence[RunMetrics], classifier: str):
    names = [r.name for r in runs]
    recalls, labels = {}, {}
    for r in runs:
        source = _source(r, classifier)
        per_class = r.metrics["classification"][source].get("per_class") or {}
        recalls[r.name] = {c: (per_class.get(c) or {}).get("recall") for c in _class_names(r)}
        labels[r.name] = f"{r.name} ({_draw.SOURCE_TITLES.get(source, source)})"
    classes = list(dict.fromkeys(c for r in runs for c in _class_names(r)))
    title = "Per-class recall" + (f" ({classifier})" if classifier != "primary" else "")
    return _draw.draw_recall_bars(classes, recalls, labels, _run_styles(names), title=title)


def _render(fig, fmt: str, dpi: int) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buf.getvalue()


def plot_runs(
    run_dirs: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    out: str | os.PathLike,
    what: Sequence[str] = FIGURES,
    formats: Sequence[str] = ("svg", "pdf"),
    evaluate: bool = False,
    overwrite: bool = False,
    method: str = "umap",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    cells: str = "count",
    classifier: str = "primary",
    dpi: int = 200,
) -> list[Path]:
    """Draw figures of runs into the folder ``out``, one file per figure and format.

    Args:
        run_dirs: run directories (a folder that is not a run stands for the runs under it).
        out: the folder to write ``<figure>.<format>`` files in (created if needed; never inside
            a run, never one of ``run_dirs``).
        what: figures among :data:`FIGURES`.
        formats: file formats among :data:`IMAGE_FORMATS`.
        evaluate: compute a missing or stale metrics.json (:func:`ferembed.runs.evaluate_run`)
            instead of failing.
        overwrite: replace existing figure files (atomically).
        method, max_points, seed: the projection (``"umap"`` or ``"pca"``; runs larger than
            ``max_points`` are sampled), as in :func:`ferembed.runs.project_run`.
        cells: confusion cells annotated with a ``"count"`` or a row ``"percent"``.
        classifier: whose per-class recall: one of :data:`CLASSIFIERS`.
        dpi: resolution of PNG files (and of rasterised scatter points in SVG / PDF).

    Returns:
        The written files, in the order figure by figure, format by format.

    Raises:
        ValueError: an unknown figure, format, cell mode, classifier or projection parameter.
        FerembedError: runs without (up-to-date) metrics.json and ``evaluate=False`` (all named
            in one line); a run lacking what a figure needs; an ``out`` inside a run or over an
            input; an existing figure file without ``overwrite``. Nothing is written then.
    """
    what = _choices(what, FIGURES, "figures")
    formats = _choices(formats, IMAGE_FORMATS, "formats")
    _choices([cells], CELL_MODES, "cells")
    _choices([classifier], CLASSIFIERS, "classifier")
    if int(dpi) < 10:
        raise ValueError(f"dpi must be >= 10, got {dpi}")
    proj = projection_params(method=method, max_points=max_points, seed=seed)
    given = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    inputs = [("RUN", d) for d in given if is_run_dir(d)]
    folder = check_output(out, inputs=inputs, overwrite=overwrite, kind="dir")
    targets = {(f, fmt): folder / f"{f}.{fmt}" for f in what for fmt in formats}
    for path in targets.values():
        check_output(path, inputs=inputs, overwrite=overwrite)
    paths = _expand(given)
    _ensure_metrics(paths, evaluate=evaluate)
    runs = read_runs(paths)
    _check_sources(runs, what, classifier)
    rendered = {}
    for figure in what:
        if figure == "projection":
            params = {k: proj[k] for k in ("method", "max_points", "seed")}
            fig = _projection_figure(runs, **params)
        elif figure == "confusion":
            fig = _confusion_figure(runs, cells)
        elif figure == "geometry":
            fig = _geometry_figure(runs)
        else:
            fig = _recall_figure(runs, classifier)
        for fmt in formats:
            rendered[figure, fmt] = _render(fig, fmt, int(dpi))
    # Written only once every figure is drawn: a failure leaves no partial set behind.
    for key, data in rendered.items():
        _io.write_bytes(targets[key], data)
    return list(targets.values())
