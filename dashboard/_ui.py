"""Streamlit pieces shared by several pages: the runs root, the run selection, faces, metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dashboard import _charts, _data, _defaults, _samples
from dashboard._safe import markdown_text, metrics_problem
from ferembed import _thumbs
from ferembed.errors import FerembedError
from ferembed.runs import METRICS_FILE, THUMBS_FILE, Run

#: Pixels of a face tile in grids (thumbnails are upscaled by whole pixels to about this size).
FACE_PX = 96


def root() -> Path:
    """The runs root (the app stops earlier with an error when there is none)."""
    r = _data.runs_root()
    if r is None or not r.is_dir():
        st.error("No runs root. Start the dashboard with `ferembed dashboard --runs DIR`.")
        st.stop()
    return r


def require_runs(min_runs: int = 1, *, what: str = "this page") -> list[Run]:
    """The selected runs whose per-sample annotations load; stops the page with a hint when fewer
    than ``min_runs`` are left. A run that fails is named in a warning, the others are drawn."""
    runs = usable(_data.selected_runs(root()))
    if len(runs) < min_runs:
        st.info(
            f"Select at least {min_runs} run{'s' if min_runs > 1 else ''} in the sidebar "
            f"to use {what}."
        )
        st.stop()
    return runs


def usable(runs: Sequence[Run]) -> list[Run]:
    """The runs whose annotations (labels, predictions, scores) load; a warning names each other
    one, so one bad run costs its own entry and never the page."""
    good = []
    for r in runs:
        try:
            _samples.annotations(r)
        except Exception as exc:  # a run the loader let through but a page cannot draw
            skipped(r, exc)
            continue
        good.append(r)
    return good


def skipped(run: Run, exc: BaseException) -> None:
    """A one-line warning that ``run`` is left out of this page, and why."""
    st.warning(f"Run {markdown_text(run.name)} skipped: {markdown_text(error_line(exc))}")


def error_line(exc: BaseException) -> str:
    """An exception as one line: the message of a user error, else its type and message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, FerembedError) else f"{type(exc).__name__}: {text}"


def _unique_names(runs: Sequence[Run]) -> list[str]:
    """Display names, disambiguated by path when two runs share a name."""
    names = [r.name for r in runs]
    return [
        n if names.count(n) == 1 else f"{n} ({r.path.parent.name}/{r.path.name})"
        for n, r in zip(names, runs, strict=True)
    ]


def display_names(runs: Sequence[Run]) -> list[str]:
    return _unique_names(runs)


def run_colors(runs: Sequence[Run]) -> list[str]:
    """The colour of each run: fixed by the run's place among ALL runs under the root (sorted
    by path), so a run keeps its colour on every page whatever else is selected."""
    r = root()
    every = sorted(e.rel for e in _data.scan_runs(r) if e.run is not None)
    place = {rel: i for i, rel in enumerate(every)}
    rels = []
    for run in runs:
        try:
            rels.append(_data.relative(r, run.path))
        except ValueError:  # not under the root (cannot happen for a selected run)
            rels.append(str(run.path))
    # Runs opened by path outside the scan come after the scanned ones, by path.
    for rel in sorted(set(rels) - set(place)):
        place[rel] = len(place)
    return [_charts.run_color(place[rel]) for rel in rels]


def warn_unpaired(ref: Run, others: Sequence[Run], *, what: str) -> list[Run]:
    """Warn about each run of ``others`` that shares under half of its samples with ``ref``
    (a different dataset or split: pairing them compares different faces); returns those."""
    bad = []
    ids_ref = _data.sample_ids(ref)
    for run in others:
        if run is ref:
            continue
        frac = _defaults.shared_fraction(ids_ref, _data.sample_ids(run))
        if frac < _defaults.MIN_SHARED:
            bad.append(run)
            st.warning(
                f"{markdown_text(run.name)} and {markdown_text(ref.name)} share only "
                f"{frac:.0%} of their samples ({markdown_text(_defaults.group_of(run.manifest))} "
                f"vs {markdown_text(_defaults.group_of(ref.manifest))}): {what} compares "
                "different faces. Select runs of one dataset / split in the sidebar."
            )
    return bad


def metrics_for(runs: Sequence[Run], *, key: str) -> dict[str, dict[str, Any]]:
    """``{run key: metrics}`` for the runs that have them; offers to compute the others."""
    have = {}
    missing = []
    for r in runs:
        m = _data.metrics(r)
        if m and checked_metrics(r) is None:
            continue  # named in a warning
        if m:
            have[_data.run_key(r)] = m
        else:
            missing.append(r)
    if missing:
        names = ", ".join(markdown_text(r.name) for r in missing)
        st.info(f"No metrics yet for: {names}.")
        if st.button(f"Compute metrics for {len(missing)} run(s)", key=f"{key}_compute"):
            compute_metrics(missing)
            st.rerun()
    return have


def checked_metrics(run: Run) -> dict[str, Any] | None:
    """The run's metrics.json when the pages can draw it; None (and a warning naming the run and
    the problem) when it is malformed, or None when there is none."""
    m = _data.metrics(run)
    problem = metrics_problem(m) if m else None
    if problem:  # `ferembed evaluate` rewrites the file
        name = markdown_text(run.name)
        st.warning(f"Run {name} skipped: {METRICS_FILE}: {markdown_text(problem)}")
        return None
    return m


def compute_metrics(runs: Sequence[Run]) -> list[str]:
    """Run ferembed.runs.evaluate_run on each run with a progress bar; returns error lines (plain
    text: show them through ``markdown_text``)."""
    errors = []
    bar = st.progress(0.0, text="Computing metrics...")
    for i, r in enumerate(runs):
        name = markdown_text(r.name)
        bar.progress(i / len(runs), text=f"Computing metrics for {name} ({i + 1}/{len(runs)})")
        try:
            _data.evaluate_now(r)
        except Exception as exc:  # one failing run must not stop the others
            errors.append(f"{r.name}: {error_line(exc)}")
    bar.progress(1.0, text=f"Computed metrics for {len(runs) - len(errors)} run(s)")
    return errors


def face_tile(thumb: np.ndarray | None) -> np.ndarray:
    """A thumbnail upscaled by whole pixels to about FACE_PX (grey tile when None)."""
    t = _thumbs.placeholder() if thumb is None else np.asarray(thumb)
    scale = max(1, FACE_PX // max(t.shape))
    return np.repeat(np.repeat(t, scale, axis=0), scale, axis=1)


def face_grid(
    run: Run, rows: Sequence[int], captions: Sequence[str], *, width: int = FACE_PX
) -> None:
    """Faces of ``run`` at ``rows`` in a wrapping grid with captions."""
    if len(rows) == 0:
        return
    thumbs = run.thumbs
    if thumbs is None:
        st.caption(
            f"{markdown_text(run.name)} has no thumbnails ({THUMBS_FILE}); showing ids only."
        )
        st.caption(markdown_text(", ".join(captions)))
        return
    # Image captions are Markdown too: escaped, so a label cannot be an image or a link.
    st.image(
        [face_tile(thumbs[int(r)]) for r in rows],
        caption=[markdown_text(c) for c in captions],
        width=width,
    )


def face_uris(run: Run, rows: Sequence[int]) -> list[str]:
    """Data URIs of faces (for st.column_config.ImageColumn); empty strings without thumbs."""
    if run.thumbs is None:
        return [""] * len(rows)
    return _thumbs.data_uris(run.thumbs, rows, scale=1)
