"""Embedding runs: the run-directory format and the ways to make runs."""

from ferembed.runs.format import (
    SAMPLE_COLUMNS,
    SCHEMA,
    Run,
    find_runs,
    is_run_dir,
    load_run,
    make_samples,
    write_run,
)

__all__ = [
    "SAMPLE_COLUMNS",
    "SCHEMA",
    "Run",
    "find_runs",
    "is_run_dir",
    "load_run",
    "make_samples",
    "write_run",
]
