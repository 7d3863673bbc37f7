"""Evaluate a run directory: ``ferembed.metrics.evaluate`` on its arrays, written back into it as
``metrics.json`` and ``per_sample.parquet`` (schema in docs/metrics.md)."""

from __future__ import annotations

import os
from typing import Any

from ferembed import _io
from ferembed.metrics.evaluate import Reference, evaluate
from ferembed.runs._files import PS_SAMPLE_ID
from ferembed.runs._reference import check_not_self
from ferembed.runs.format import Run, load_run


def as_run(run_or_path: Run | str | os.PathLike) -> Run:
    """``run_or_path`` itself when it is a loaded :class:`Run`, else the run loaded from there."""
    return run_or_path if isinstance(run_or_path, Run) else load_run(os.fspath(run_or_path))


def evaluate_run(
    run_or_path: Run | str | os.PathLike,
    *,
    reference: Run | str | os.PathLike | None = None,
    distance: str | None = None,
    write: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a run directory and write ``metrics.json`` and ``per_sample.parquet`` into it.

    Args:
        run_or_path: a :class:`ferembed.runs.Run` or a run directory path.
        reference: another run (or its path) to search the queries against (e.g. the training
            split), or None for leave-one-out within the run. Its class names must match.
        distance: ``"cosine"`` / ``"euclidean"``; None uses the run's own ``distance``.
        write: write the two files (atomically); False only returns the dictionary.
        **options: passed to :func:`ferembed.metrics.evaluate` (``k``, ``include``,
            ``exclude``, ``max_exact_n``, ``sample_size``, ``seed``, ``n_boot``).

    Returns:
        The metrics dictionary (what ``metrics.json`` holds).
    """
    run = as_run(run_or_path)
    distance = distance or run.distance
    ref = None
    ref_name = None
    if reference is not None:
        rrun = as_run(reference)
        if rrun.class_names != run.class_names:
            raise ValueError(
                f"reference run {rrun.name!r} has classes {rrun.class_names}, "
                f"run {run.name!r} has {run.class_names}"
            )
        check_not_self(run, rrun)
        ref_name = rrun.name
        ref = Reference(rrun.embeddings, rrun.labels, rrun.subjects, ref_name)
    metrics, per_sample = evaluate(
        run.embeddings,
        run.labels,
        class_names=run.class_names,
        logits=run.logits,
        head_weight=run.head_weight,
        subjects=run.subjects,
        distance=distance,
        reference=ref,
        return_per_sample=True,
        **options,
    )
    metrics["run"] = run.name
    metrics["reference"] = ref_name
    if write:
        per_sample.insert(0, PS_SAMPLE_ID, run.sample_ids)
        with _io.atomic_path(run.per_sample_path) as tmp:
            per_sample.to_parquet(tmp, index=False)
        _io.write_json(run.metrics_path, metrics)
    return metrics
