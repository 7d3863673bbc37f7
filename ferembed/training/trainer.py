"""The entry point: ``train(config) -> TrainResult``.

``train`` validates the config, builds the data, model and loss
(:mod:`ferembed.training.setup`) and runs the epoch loop (:func:`ferembed.training.loop.fit`),
or, with ``config.method == "pseudo_label"``, the pseudo-label loop
(:func:`ferembed.training.pseudo_label.train_pseudo_label`). What a run writes is described in
:mod:`ferembed.training.loop` and ``docs/training.md``.

Reproducibility: every random choice of epoch ``e`` (batch order, augmentation, dropout) is
seeded from ``(seed, e)`` alone, so two runs with a seed give identical weights on CPU and a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ferembed._device import resolve_device
from ferembed.training.config import TrainConfig
from ferembed.training.loop import TrainResult, check_fresh, fit
from ferembed.training.pseudo_label import train_pseudo_label
from ferembed.training.setup import build_datasets, build_model_and_loss, deterministic_mode


def train(
    config: TrainConfig,
    *,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    callback: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says; write logs, checkpoints and state under ``config.out``.

    With ``config.method == "pseudo_label"`` this runs
    :func:`ferembed.training.pseudo_label.train_pseudo_label` instead.

    Args:
        config: the run's configuration (validated here).
        progress: show a tqdm bar per epoch and one summary line per epoch (stderr).
        resume: continue from ``out/train_state.pt`` when it exists (a fresh start otherwise).
        overwrite: allow starting afresh in a directory that holds a previous run's state.
        command: command line recorded in the checkpoints (default: ``sys.argv``).
        callback: called with each epoch's log row once that epoch is fully saved.

    Returns:
        A :class:`~ferembed.training.loop.TrainResult`.

    Raises:
        ConfigError: bad config, unavailable device, or an existing run in ``out`` (without
            ``resume``/``overwrite``), or a resume state from a different config.
        FerembedError: data, loss or model problems (from their factories); a diverged loss.
    """
    config.validate()
    options = dict(progress=progress, resume=resume, overwrite=overwrite, command=command)
    if config.method == "pseudo_label":
        return train_pseudo_label(config, callback=callback, **options)
    out = Path(config.out)
    check_fresh(out, resume=resume, overwrite=overwrite)
    device = resolve_device(config.device)
    with deterministic_mode(config.deterministic, device):
        torch.manual_seed(config.seed)
        train_ds, val_ds = build_datasets(config)
        model, loss = build_model_and_loss(config, train_ds, progress=progress)
        return fit(
            config,
            model=model,
            loss=loss,
            train_ds=train_ds,
            val_ds=val_ds,
            out=out,
            device=device,
            callback=callback,
            **options,
        )
