"""The check that a ``--reference`` run is not the evaluated run itself."""

from __future__ import annotations

import os

import numpy as np

from ferembed.errors import RunFormatError
from ferembed.runs._files import EMBEDDINGS_FILE
from ferembed.runs.format import Run


def check_not_self(run: Run, reference: Run) -> None:
    """Refuse a reference that is the run itself: each face would retrieve itself at distance 0
    (P@1 83.8% -> 100%), which the leave-one-out default (no reference) exists to avoid.

    The same run is the same directory, the same embeddings file (a link), or a copy: the same
    sample ids with the same embeddings.

    Raises:
        RunFormatError: one line naming both paths.
    """
    same = run.path.resolve() == reference.path.resolve()
    mine, theirs = run.file_path(EMBEDDINGS_FILE), reference.file_path(EMBEDDINGS_FILE)
    if not same and mine.exists() and theirs.exists():
        same = os.path.samefile(mine, theirs)
    if not same and run.n == reference.n and run.dim == reference.dim:
        same = np.array_equal(run.sample_ids, reference.sample_ids) and np.array_equal(
            run.embeddings, reference.embeddings
        )
    if same:
        raise RunFormatError(
            f"--reference {reference.path}: is the run {run.path} itself (the same embeddings); "
            "every query would find itself. Omit --reference for leave-one-out, or give another "
            "split's run"
        )
