"""Evaluate a run directory: ``ferembed.metrics.evaluate`` on its arrays, written back into it as
``metrics.json`` and ``per_sample.parquet`` (schema in docs/metrics.md).

The two files are one unit: ``metrics.json`` (written last) records the stamps of the run files
it was computed from and of its ``per_sample.parquet`` (``runs/_consistency.py``), so a kill
between the two writes, or an input changed afterwards, reads as stale metrics, never as current
ones. Evaluations of one run are serialised by a lock file in the run that names its holder; a
second evaluation with the same request waits, then returns the metrics the first one wrote.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ferembed import _io
from ferembed._lock import hold_lock
from ferembed.metrics.evaluate import Reference, evaluate
from ferembed.runs._consistency import COMPUTED_FROM, FRESH, file_stamp, run_stamps
from ferembed.runs._files import PS_SAMPLE_ID
from ferembed.runs._reference import check_not_self
from ferembed.runs.format import Run, load_run

#: The lock file an evaluation holds in its run (hidden: not one of the run's files).
LOCK_FILE = ".evaluate.lock"


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
        write: write the two files (atomically, under the run's lock); False only returns the
            dictionary.
        **options: passed to :func:`ferembed.metrics.evaluate` (``k``, ``include``,
            ``exclude``, ``max_exact_n``, ``sample_size``, ``seed``, ``n_boot``).

    Returns:
        The metrics dictionary (what ``metrics.json`` holds).
    """
    run = as_run(run_or_path)
    rrun = as_run(reference) if reference is not None else None
    if not write:
        return _compute(run, rrun, distance, options)[0]
    request = _io.to_jsonable(
        {
            "distance": distance or run.distance,
            "reference": str(Path(rrun.path).resolve()) if rrun is not None else None,
            "options": dict(sorted(options.items())),
        }
    )
    with contextlib.ExitStack() as stack:
        if _lock(stack, run):
            # Another evaluation held the run: its metrics are ours when the request was ours.
            done = run.load_metrics()
            if (
                done is not None
                and (done.get(COMPUTED_FROM) or {}).get("request") == request
                and run.metrics_status()[0] == FRESH
            ):
                return done
        return _compute_and_write(run, rrun, distance, options, request)


def _lock(stack: contextlib.ExitStack, run: Run) -> bool:
    """Hold the run's evaluation lock until ``stack`` closes; whether another held it first."""
    lock = hold_lock(
        run.path / LOCK_FILE, what=f"evaluation of {run.path}", command=" ".join(sys.argv)
    )
    try:
        return stack.enter_context(lock)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False  # a read-only run: nothing to serialise; writing below reports it
        raise


def _compute(
    run: Run, rrun: Run | None, distance: str | None, options: dict
) -> tuple[dict[str, Any], pd.DataFrame]:
    distance = distance or run.distance
    ref = None
    ref_name = None
    if rrun is not None:
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
    return metrics, per_sample


def _compute_and_write(
    run: Run, rrun: Run | None, distance: str | None, options: dict, request: dict
) -> dict[str, Any]:
    # Stamp the inputs before reading them: a file replaced while we compute reads as stale.
    record: dict[str, Any] = {"files": run_stamps(run.path), "request": request}
    if rrun is not None:
        ref_dir = Path(rrun.path).resolve()
        record["reference"] = {"path": str(ref_dir), "files": run_stamps(ref_dir)}
    metrics, per_sample = _compute(run, rrun, distance, options)
    per_sample.insert(0, PS_SAMPLE_ID, run.sample_ids)
    with _io.atomic_path(run.per_sample_path) as tmp:
        per_sample.to_parquet(tmp, index=False)
    record["per_sample"] = file_stamp(run.per_sample_path)
    metrics[COMPUTED_FROM] = record
    _io.write_json(run.metrics_path, metrics)
    return metrics
