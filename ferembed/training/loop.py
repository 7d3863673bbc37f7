"""The epoch loop: ``fit(config, model=..., loss=..., train_ds=..., ...) -> TrainResult``.

One epoch, per batch (the loss contract: ``docs/losses.md``)::

    emb, logits = model(x)                         # x: augmented, normalised faces
    parts = loss(emb, logits, y, indices=idx)      # {"loss": total, "<term>": ...}
    if not loss.uses_head:                         # linear probe: every run has head logits
        parts["probe_ce"] = CE(model.forward_head(emb.detach()), y)
    backward, optimizer.step(), scheduler.step()   # scheduler is per step
    loss.after_step(emb.detach(), y)               # center updates
    ... loss.on_epoch_end(epoch)

After each epoch: validation (accuracy and mean class accuracy), one row appended to
``out/log.csv`` and ``out/log.json``, checkpoints ``out/last`` (every epoch) and ``out/best`` (when
the monitored metric improves; with no validation split, best is the last epoch), and the full
training state ``out/train_state.pt`` (model, loss, optimiser, scheduler, epoch, best score,
RNG state, log). ``fit(..., resume=True)`` continues from it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferembed import _io
from ferembed._format import number
from ferembed.data._base import FERDataset
from ferembed.errors import ConfigError, FerembedError
from ferembed.metrics.classification import confusion_matrix, confusion_scores
from ferembed.models import FERNet, normalize_images, save_checkpoint
from ferembed.models.checkpoint import checkpoint_paths
from ferembed.runs._outputs import check_output
from ferembed.training.augment import Augmenter
from ferembed.training.config import TrainConfig, save_config
from ferembed.training.dynamics import ValidationSeries
from ferembed.training.sampler import BalancedBatchSampler, RandomBatchSampler
from ferembed.training.setup import (
    AUGMENT_STREAM,
    TORCH_STREAM,
    ImageBatches,
    derive_seed,
    embed_batches,
    make_optimizer,
    make_sampler,
    make_scheduler,
)

STATE_FORMAT = "ferembed.train_state/1"
# Config keys that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = (
    "epochs",
    "device",
    "num_workers",
    "out",
    "early_stopping_patience",
    "preload",
    "embed_every",
)


@dataclass
class TrainResult:
    """What :func:`ferembed.training.train` produced."""

    out: Path  # output directory
    best_checkpoint: Path  # sidecar of the best checkpoint (out/best.json)
    last_checkpoint: Path  # sidecar of the last checkpoint (out/last.json)
    best_epoch: int  # 1-based epoch of the best checkpoint
    best_score: float | None  # monitored metric at the best epoch (None without validation)
    epochs_run: int  # epochs completed, resumed ones included
    stopped_early: bool  # early stopping ended the run
    history: list[dict] = field(default_factory=list)  # the rows of log.json
    wall_time_s: float = 0.0  # training wall time, resumed sessions included
    device: str = "cpu"  # device trained on
    pseudo_label: dict | None = None  # the pseudo-label loop's record (pseudo_labels.json)


@dataclass
class _Session:
    """Everything one :func:`fit` call works with, and the progress it has made."""

    config: TrainConfig
    model: FERNet
    loss: nn.Module
    train_ds: FERDataset
    out: Path
    device: torch.device
    epochs: int
    lr: float
    command: str
    log_extra: dict
    sampler: BalancedBatchSampler | RandomBatchSampler | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
    augment: Augmenter | None = None
    train_data: ImageBatches | None = None
    val_data: ImageBatches | None = None
    series: ValidationSeries | None = None  # config.embed_every: the val embeddings over epochs
    # progress (what train_state.pt records)
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best_score: float | None = None
    best_epoch: int = 0
    since_best: int = 0
    stopped_early: bool = False
    prior_wall: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    @property
    def state_path(self) -> Path:
        return self.out / "train_state.pt"

    def wall(self) -> float:
        return self.prior_wall + time.perf_counter() - self.t0


def fit(
    config: TrainConfig,
    *,
    model: FERNet,
    loss: nn.Module,
    train_ds: FERDataset,
    val_ds: FERDataset | None,
    out: Path,
    device: torch.device,
    epochs: int | None = None,
    lr: float | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    callback: Callable[[dict], None] | None = None,
    log_extra: dict | None = None,
) -> TrainResult:
    """Train ``model`` with ``loss`` on ``train_ds`` (the loop behind ``train``).

    ``epochs`` and ``lr`` default to the config's; ``log_extra`` adds constant columns to every
    log row (the pseudo-label loop's round number). The labels trained on are ``train_ds``'s.
    """
    out = Path(out)
    check_fresh(out, resume=resume, overwrite=overwrite, inputs=[("--root", config.root)])
    s = _Session(
        config=config,
        model=model,
        loss=loss,
        train_ds=train_ds,
        out=out,
        device=device,
        epochs=config.epochs if epochs is None else int(epochs),
        lr=config.lr if lr is None else float(lr),
        command=shlex.join(sys.argv) if command is None else command,
        log_extra=log_extra or {},
    )
    _prepare(s, val_ds)
    if resume and s.state_path.exists():
        _restore(s, _load_state(s.state_path, config))
    s.t0 = time.perf_counter()
    for epoch in range(s.start_epoch, s.epochs):
        if s.stopped_early:
            break
        row, seen, epoch_time = _train_epoch(s, epoch, progress)
        if s.val_data is not None:
            row.update(_validate(s, epoch + 1, row))
        row["epoch_time_s"] = epoch_time
        row["images_per_s"] = seen / epoch_time if epoch_time > 0 else float("nan")
        s.history.append(row)
        improved = _update_best(s, row)
        _save_epoch(s, row, improved)
        if progress:
            _print_row(row)
        if callback is not None:
            callback(row)
    if not s.history:
        raise FerembedError(f"{out}: no epoch was trained (epochs={s.epochs})")
    return TrainResult(
        out=out,
        best_checkpoint=out / "best.json",
        last_checkpoint=out / "last.json",
        best_epoch=s.best_epoch,
        best_score=s.best_score,
        epochs_run=int(s.history[-1]["epoch"]),
        stopped_early=s.stopped_early,
        history=s.history,
        wall_time_s=s.wall(),
        device=str(device),
    )


def check_fresh(
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    inputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
    state: str = "train_state.pt",
) -> None:
    """Refuse an output directory that would clobber an input, a run or a previous training.

    Args:
        out: the training's output directory.
        resume: continue from ``out/train_state.pt``.
        overwrite: start afresh over a previous training in ``out``.
        inputs: ``(option, path)`` of what the training reads (the dataset root): ``out`` must
            not be one of them nor lie inside one.
        state: the file a resume continues from (the pseudo-label loop's is its record,
            ``pseudo_labels.json``).

    Raises:
        FerembedError: ``out`` is an input, inside one, a run directory or inside one.
        ConfigError: ``out/STATE`` exists and neither flag is set; or ``out`` holds
            checkpoints but no state to resume (a fresh start would replace them) and
            ``overwrite`` is not set.
    """
    check_output(out, inputs=inputs, kind="dir")
    state_path = out / state
    if state_path.exists():
        if not (resume or overwrite):
            raise ConfigError(
                f"--out {out}: already holds a training run ({state_path.name}); resume it or "
                "choose another output directory (or overwrite)"
            )
        return
    held = [p.name for stem in ("best", "last") for p in checkpoint_paths(out / stem) if p.exists()]
    if held and not overwrite:
        raise ConfigError(
            f"--out {out}: already holds checkpoints ({', '.join(held)}) but no "
            f"{state_path.name} to resume from; choose another output directory (or overwrite)"
        )


# ------------------------------------------------------------------------------------------------
# The steps of fit


def _prepare(s: _Session, val_ds: FERDataset | None) -> None:
    """Output directory and config, devices, loss preparation, sampler, optimiser, batches."""
    config = s.config
    s.out.mkdir(parents=True, exist_ok=True)
    save_config(config, s.out / "config.json")
    s.model.to(s.device)
    s.loss.to(s.device)
    s.loss.prepare(s.train_ds, cache_dir=s.out / "cache")
    s.sampler = make_sampler(config, s.train_ds.labels)
    params = [p for p in s.model.parameters() if p.requires_grad]
    params += [p for p in s.loss.parameters() if p.requires_grad]
    s.optimizer = make_optimizer(config, params, s.lr)
    s.scheduler = make_scheduler(config, s.optimizer, s.epochs, len(s.sampler))
    s.augment = Augmenter(config.augment)
    batches = dict(preload=config.preload, num_workers=config.num_workers)
    s.train_data = ImageBatches(s.train_ds, **batches)
    s.val_data = ImageBatches(val_ds, **batches) if val_ds is not None else None
    if config.embed_every and val_ds is not None:
        images = s.val_data.images
        s.series = ValidationSeries(
            s.out,
            every=config.embed_every,
            dataset=val_ds,
            class_names=s.train_ds.class_names,
            images=images.numpy() if images is not None else val_ds.load_all(),
            name=f"{s.out.name} ({config.val_split})",
        )


def _restore(s: _Session, state: dict) -> None:
    """Continue from a saved training state: weights, optimiser, schedule, RNG and progress."""
    s.model.load_state_dict(state["model"])
    s.loss.load_state_dict(state["loss"])
    s.optimizer.load_state_dict(state["optimizer"])
    s.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    s.start_epoch = int(state["epoch"])
    s.best_score, s.best_epoch = state["best_score"], int(state["best_epoch"])
    s.since_best, s.stopped_early = int(state["epochs_since_best"]), bool(state["stopped_early"])
    s.history, s.prior_wall = list(state["history"]), float(state["wall_time_s"])


def _train_epoch(s: _Session, epoch: int, progress: bool) -> tuple[dict, int, float]:
    """One pass over the sampler's batches.

    Returns:
        ``(row, images seen, seconds)``: the epoch's log row so far (its train columns).
    """
    config, model, loss, device = s.config, s.model, s.loss, s.device
    torch.manual_seed(derive_seed(config.seed, epoch, TORCH_STREAM))
    gen = torch.Generator().manual_seed(derive_seed(config.seed, epoch, AUGMENT_STREAM))
    model.train()
    loss.train()
    uses_head = bool(getattr(loss, "uses_head", True))
    t_epoch = time.perf_counter()
    sums: dict[str, Tensor] = {}
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = step = 0
    batches = s.sampler.batches(epoch)
    lr_now = s.optimizer.param_groups[0]["lr"]
    bar = _progress(
        s.train_data.iterate(batches), len(batches), f"epoch {epoch + 1}/{s.epochs}", progress
    )
    for idx, images, y in bar:
        x = s.augment(normalize_images(images.to(device, non_blocking=True)), gen)
        y = y.to(device)
        emb, logits = model(x)
        parts = loss(emb, logits, y, indices=idx.to(device))
        total = parts["loss"]
        if not uses_head:
            logits = model.forward_head(emb.detach())
            probe = F.cross_entropy(logits, y)
            parts["probe_ce"] = probe.detach()
            total = total + probe
        s.optimizer.zero_grad(set_to_none=True)
        total.backward()
        s.optimizer.step()
        s.scheduler.step()
        loss.after_step(emb.detach(), y)
        b = y.shape[0]
        seen += b
        correct += (logits.detach().argmax(1) == y).sum()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach() * b
        step += 1
        if progress and step % 10 == 1:
            bar.set_postfix(loss=f"{float(sums['loss']) / seen:.4g}", refresh=False)
    loss.on_epoch_end(epoch)
    epoch_time = time.perf_counter() - t_epoch

    row: dict = {"epoch": epoch + 1, **s.log_extra}
    row["lr"] = lr_now
    means = {k: float(v) / max(seen, 1) for k, v in sums.items()}
    if not math.isfinite(means.get("loss", 0.0)):
        raise FerembedError(
            f"training diverged at epoch {epoch + 1} (loss {means['loss']}); lower lr "
            f"(now {s.lr}) or the loss weights"
        )
    row["train_loss"] = means.pop("loss", float("nan"))
    row.update({f"train_{k}": v for k, v in means.items()})
    stats = getattr(loss, "stats", None)
    if callable(stats):
        row.update({f"loss_{k}": float(v) for k, v in stats().items()})
    row["train_acc"] = int(correct) / max(seen, 1)
    return row, seen, epoch_time


def _validate(s: _Session, epoch: int, row: dict) -> dict:
    """Validation accuracy, mean class accuracy and per-class accuracy (None: class absent); the
    embeddings go to the series when ``embed_every`` asks for this epoch."""
    emb, logits = embed_batches(s.model, s.val_data, s.device, s.config.eval_batch_size)
    labels = s.val_data.labels.numpy()
    k = len(s.train_ds.class_names)
    scores = confusion_scores(confusion_matrix(labels, logits.argmax(1), k))
    present = np.bincount(labels, minlength=k) > 0
    if s.series is not None and s.series.due(epoch, s.epochs):
        s.series.log(epoch, emb, logits, labels, {**row, "val_acc": float(scores["accuracy"])})
    return {
        "val_acc": float(scores["accuracy"]),
        "val_mean_class_acc": float(scores["mean_class_accuracy"]),
        "val_per_class_acc": [
            float(r) if p else None for r, p in zip(scores["recall"], present, strict=True)
        ],
    }


def _update_best(s: _Session, row: dict) -> bool:
    """Track the monitored score and early stopping; True when this epoch is the new best."""
    score = row.get(s.config.monitor)
    no_val = s.val_data is None
    improved = no_val or s.best_score is None or (score is not None and score > s.best_score)
    if improved:
        s.best_score, s.best_epoch, s.since_best = score, int(row["epoch"]), 0
    else:
        s.since_best += 1
    patience = s.config.early_stopping_patience
    if not no_val and patience is not None and s.since_best >= patience:
        s.stopped_early = True
    return improved


def _save_epoch(s: _Session, row: dict, improved: bool) -> None:
    """Checkpoints (last, and best when improved), the logs and the resumable state."""
    meta = _checkpoint_meta(s, row)
    save_checkpoint(s.out / "last", s.model, loss=s.loss, meta=meta)
    if improved:
        save_checkpoint(s.out / "best", s.model, loss=s.loss, meta=meta)
    write_logs(s.out, s.history)
    state = {
        "format": STATE_FORMAT,
        "epoch": int(row["epoch"]),
        "model": s.model.state_dict(),
        "loss": s.loss.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "best_score": s.best_score,
        "best_epoch": s.best_epoch,
        "epochs_since_best": s.since_best,
        "stopped_early": s.stopped_early,
        "history": s.history,
        "wall_time_s": s.wall(),
        "config": s.config.to_dict(),
        "rng": {"torch": torch.get_rng_state()},
    }
    with _io.atomic_path(s.state_path) as tmp:
        torch.save(state, tmp)


# ------------------------------------------------------------------------------------------------
# Records


def _checkpoint_meta(s: _Session, row: dict) -> dict:
    config, train_ds = s.config, s.train_ds
    metrics = {
        k: row[k]
        for k in ("epoch", "train_loss", "train_acc", "val_acc", "val_mean_class_acc")
        if k in row
    }
    metrics["best_epoch"] = s.best_epoch
    counts = train_ds.class_counts()
    return {
        "class_names": list(train_ds.class_names),
        "input": {"size": int(train_ds.image_size)},
        "train": config.to_dict(),
        "data": {
            "dataset": config.dataset,
            "root": config.root,
            "split": config.split,
            "val_split": config.val_split,
            "fold": config.fold,
            "num_folds": config.num_folds,
            "n_train": len(train_ds),
            "counts": {c: int(n) for c, n in zip(train_ds.class_names, counts, strict=True)},
        },
        "metrics": metrics,
        "command": s.command,
        "wall_time_s": round(s.wall(), 3),
        "device": str(s.device),
        "epochs": int(row["epoch"]),
    }


def write_logs(out: Path, history: list[dict]) -> None:
    """Write ``out/log.json`` (the rows) and ``out/log.csv`` (scalar columns, 6 digits)."""
    _io.write_json(out / "log.json", history)
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns and not isinstance(row[k], list)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    _io.write_text(out / "log.csv", buf.getvalue())


def _csv_cell(v) -> str:
    if isinstance(v, float):
        return number(v, ".6g", missing=str(v))  # nan and inf as Python prints them
    return "" if v is None else str(v)


def _load_state(path: Path, config: TrainConfig) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable state is reported the same way
        raise ConfigError(f"{path}: unreadable training state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{path}: not a ferembed training state")
    old, new = dict(state["config"]), config.to_dict()
    keys = (set(old) | set(new)) - set(_RESUMABLE_CHANGES)
    diff = sorted(k for k in keys if old.get(k) != new.get(k))
    if diff:
        raise ConfigError(
            f"{path}: cannot resume, the config differs in {diff} (start a new run instead)"
        )
    return state


def _progress(it, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def _print_row(row: dict) -> None:
    keys = ("train_loss", "train_acc", "val_acc", "val_mean_class_acc", "images_per_s")
    parts = [f"{k}={row[k]:.4g}" for k in keys if isinstance(row.get(k), float)]
    head = f"epoch {row['epoch']}" + (f" (round {row['round']})" if "round" in row else "")
    print(f"{head}: " + " ".join(parts), file=sys.stderr)
