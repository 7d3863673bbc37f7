"""Embed then evaluate: a checkpoint plus a dataset split to an evaluated run, in one call.

The one place that chains :func:`ferembed.runs.embed.embed_checkpoint` and
:func:`ferembed.runs.evaluate.evaluate_run` (the model zoo, k-fold testing and the demo use it).
"""

from __future__ import annotations

import os
from typing import Any

from ferembed.runs.evaluate import evaluate_run


def embed_and_evaluate(
    checkpoint: str | os.PathLike,
    *,
    dataset: str,
    root: str | os.PathLike | None,
    split: str,
    out: str | os.PathLike,
    fold: int | None = None,
    num_folds: int = 10,
    dataset_kwargs: dict[str, Any] | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
    **embed_kwargs: Any,
) -> dict[str, Any]:
    """Embed ``dataset``/``split`` with ``checkpoint`` into the run ``out``, evaluate it (writing
    ``metrics.json`` and ``per_sample.parquet``) and return the metrics.

    Args:
        checkpoint: the checkpoint sidecar (``.json``) or weights file.
        dataset, root, split, fold, num_folds, dataset_kwargs: which samples (as for
            ``ferembed embed``).
        out: the run directory to write.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        overwrite: replace an existing run at ``out``.
        progress: show the embedding progress bar.
        command: the command line recorded in ``run.json``.
        **embed_kwargs: further options of ``embed_checkpoint`` (``name``, ``batch_size``,
            ``distance``, ``thumbs``).

    Returns:
        The metrics dictionary (what ``metrics.json`` holds).
    """
    from ferembed.runs.embed import embed_checkpoint  # torch: imported only when embedding

    run_dir = embed_checkpoint(
        checkpoint,
        dataset=dataset,
        root=root,
        split=split,
        out=out,
        fold=fold,
        num_folds=num_folds,
        dataset_kwargs=dataset_kwargs,
        device=device,
        overwrite=overwrite,
        progress=progress,
        command=command,
        **embed_kwargs,
    )
    return evaluate_run(run_dir)
