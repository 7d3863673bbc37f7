"""The training loop: ``train(config) -> TrainResult``.

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
RNG state, log). ``train(config, resume=True)`` continues from it.

Reproducibility: every random choice of epoch ``e`` (batch order, augmentation, dropout) is
seeded from ``(seed, e)`` alone, so two runs with a seed give identical weights on CPU and a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferembed import _io
from ferembed.data._base import FERDataset
from ferembed.errors import FerembedError
from ferembed.models import FERNet, create_model, normalize_images, save_checkpoint
from ferembed.training.augment import Augmenter
from ferembed.training.config import ConfigError, TrainConfig, save_config
from ferembed.training.sampler import BalancedBatchSampler, RandomBatchSampler

STATE_FORMAT = "ferembed.train_state/1"
# Config keys that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = (
    "epochs",
    "device",
    "num_workers",
    "out",
    "early_stopping_patience",
    "preload",
)
# Independent seed streams derived from (seed, epoch).
_TORCH_STREAM = 0x70C
_AUGMENT_STREAM = 0xA06
_SUBSET_STREAM = 0x5B5


@dataclass
class TrainResult:
    """What :func:`train` produced."""

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


# ------------------------------------------------------------------------------------------------
# Building blocks (also used by the pseudo-label loop)


class SubsetDataset(FERDataset):
    """A view of ``base`` restricted to ``indices``, optionally with replaced labels.

    Args:
        base: the dataset viewed.
        indices: (M,) positions in ``base``.
        labels: (M,) labels to use instead of the base's (pseudo-labels), or None.
    """

    def __init__(self, base: FERDataset, indices, labels=None) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        samples = [base.samples[int(i)] for i in self.indices]
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != self.indices.shape:
                raise ValueError(f"{labels.shape[0]} labels for {self.indices.shape[0]} indices")
            samples = [replace(s, label=int(y)) for s, y in zip(samples, labels, strict=True)]
        super().__init__(
            samples, base.class_names, root=base.root, split=base.split, image_size=base.image_size
        )
        self.name = base.name
        # Images come from the innermost dataset (views of views read it directly).
        self._source, self._source_idx = base, self.indices
        if isinstance(base, SubsetDataset):
            self._source, self._source_idx = base._source, base._source_idx[self.indices]

    def load_image(self, i: int) -> np.ndarray:
        return self._source.load_image(int(self._source_idx[i]))

    def load_all(self) -> np.ndarray:
        images = getattr(self._source, "images", None)
        if isinstance(images, np.ndarray):
            return images[self._source_idx]
        return np.stack([self.load_image(i) for i in range(len(self))])


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda if available, else mps, else cpu; other names are checked.

    Raises:
        ConfigError: the requested device is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def build_datasets(config: TrainConfig) -> tuple[FERDataset, FERDataset | None]:
    """The train split (subsampled to ``max_train_samples``) and the validation split (or None)."""
    from ferembed.data import create_dataset

    kwargs = dict(config.dataset_kwargs)
    if config.fold is not None:
        kwargs["fold"] = config.fold
    if config.num_folds is not None:
        kwargs["num_folds"] = config.num_folds
    train_ds = create_dataset(config.dataset, config.root, config.split, **kwargs)
    if config.max_train_samples is not None and config.max_train_samples < len(train_ds):
        rng = np.random.default_rng([config.seed, _SUBSET_STREAM])
        keep = np.sort(rng.choice(len(train_ds), size=config.max_train_samples, replace=False))
        train_ds = SubsetDataset(train_ds, keep)
    val_ds = None
    if config.val_split is not None:
        val_ds = create_dataset(config.dataset, config.root, config.val_split, **kwargs)
        if list(val_ds.class_names) != list(train_ds.class_names):
            raise FerembedError(
                f"{config.dataset}: split {config.val_split!r} has classes {val_ds.class_names}, "
                f"split {config.split!r} has {train_ds.class_names}"
            )
    return train_ds, val_ds


def build_model(config: TrainConfig, num_classes: int, image_size: int = 48) -> FERNet:
    """``create_model`` for the config; input_mode "fused" wraps ``arch`` in the fusion model.

    Raises:
        ConfigError: input_mode "partial"/"fused" on images that are not 48x48 (the partial
            image's regions are those of an aligned 48x48 face).
    """
    if config.input_mode != "full" and image_size != 48:
        raise ConfigError(
            f"input_mode {config.input_mode!r} needs 48x48 faces (the partial-image regions), "
            f"the dataset gives {image_size}x{image_size}"
        )
    if config.input_mode == "fused" and config.arch != "fusion":
        return create_model(
            "fusion",
            num_classes,
            embedding_dim=config.embedding_dim,
            full_arch=config.arch,
            stream_kwargs=dict(config.model_kwargs),
        )
    model = create_model(
        config.arch, num_classes, embedding_dim=config.embedding_dim, **config.model_kwargs
    )
    if config.input_mode == "partial":
        model.set_input_mode("partial")
    return model


def init_model(model: FERNet, config: TrainConfig, class_names, *, progress: bool = False) -> None:
    """Load ``config.init_checkpoint``'s weights into ``model`` (no-op without one)."""
    if not config.init_checkpoint:
        return
    from ferembed.models.checkpoint import init_from_checkpoint

    info = init_from_checkpoint(model, config.init_checkpoint, class_names)
    if progress:
        new = f"; fresh head rows for {info['new_classes']}" if info["new_classes"] else ""
        print(f"initialised from {info['checkpoint']}{new}", file=sys.stderr)


def build_loss(
    name: str, params: dict, num_classes: int, embedding_dim: int, class_counts: np.ndarray
) -> nn.Module:
    """``ferembed.losses.create_loss(name, C, D, class_counts=..., **params)``."""
    from ferembed.losses import create_loss

    return create_loss(name, num_classes, embedding_dim, class_counts=class_counts, **params)


class ImageBatches:
    """Fetches ``(indices, uint8 images, labels)`` batches of a dataset.

    With ``preload`` every image is decoded once into a (N, S, S) uint8 tensor; otherwise a
    ``DataLoader`` with ``num_workers`` reads them batch by batch.
    """

    def __init__(self, dataset: FERDataset, *, preload: bool = True, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.labels = torch.from_numpy(dataset.labels)
        self.num_workers = int(num_workers)
        self.images = (
            torch.from_numpy(np.ascontiguousarray(dataset.load_all(), dtype=np.uint8))
            if preload
            else None
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Yield ``(idx (B,) int64, images (B, S, S) uint8, labels (B,) int64)`` per batch."""
        if self.images is not None:
            for b in batches:
                idx = torch.from_numpy(np.asarray(b, dtype=np.int64))
                yield idx, self.images[idx], self.labels[idx]
            return
        loader = torch.utils.data.DataLoader(
            _Indexed(self.dataset),
            batch_sampler=[np.asarray(b).tolist() for b in batches],
            num_workers=self.num_workers,
        )
        for images, labels, idx in loader:
            yield idx.long(), images, labels.long()

    def sequential(self, batch_size: int) -> list[np.ndarray]:
        n = len(self)
        return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, dataset: FERDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, label = self.dataset[i]
        return torch.from_numpy(np.asarray(image, dtype=np.uint8)), int(label), i


@torch.inference_mode()
def embed_batches(
    model: FERNet, data: ImageBatches, device: torch.device, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Embed every image (eval mode, no augmentation).

    Returns:
        ``(embeddings (N, D) float32, logits (N, C) float32)`` in dataset order.
    """
    was_training = model.training
    model.eval()
    embs, logits = [], []
    try:
        for _, images, _ in data.iterate(data.sequential(batch_size)):
            e, lg = model(normalize_images(images.to(device, non_blocking=True)))
            embs.append(e.float().cpu())
            logits.append(lg.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(embs).numpy(), torch.cat(logits).numpy()


def classification_metrics(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Accuracy, mean class accuracy (over classes present) and per-class accuracy.

    Args:
        pred: (N,) predicted classes.
        labels: (N,) true classes.
        num_classes: C.

    Returns:
        ``{"acc": float, "mean_class_acc": float, "per_class_acc": list of C floats or None
        (classes absent from labels)}``.
    """
    correct = pred == labels
    per_class: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        per_class.append(float(correct[mask].mean()) if mask.any() else None)
    present = [a for a in per_class if a is not None]
    return {
        "acc": float(correct.mean()) if len(labels) else float("nan"),
        "mean_class_acc": float(np.mean(present)) if present else float("nan"),
        "per_class_acc": per_class,
    }


# ------------------------------------------------------------------------------------------------
# The loop


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
        A :class:`TrainResult`.

    Raises:
        ConfigError: bad config, unavailable device, or an existing run in ``out`` (without
            ``resume``/``overwrite``), or a resume state from a different config.
        FerembedError: data, loss or model problems (from their factories); a diverged loss.
    """
    config.validate()
    if config.method == "pseudo_label":
        from ferembed.training.pseudo_label import train_pseudo_label

        return train_pseudo_label(
            config,
            progress=progress,
            resume=resume,
            overwrite=overwrite,
            command=command,
            callback=callback,
        )
    out = Path(config.out)
    _check_fresh(out, resume=resume, overwrite=overwrite)
    device = resolve_device(config.device)
    with deterministic_mode(config.deterministic, device):
        torch.manual_seed(config.seed)
        train_ds, val_ds = build_datasets(config)
        model = build_model(config, len(train_ds.class_names), train_ds.image_size)
        init_model(model, config, train_ds.class_names, progress=progress)
        loss = build_loss(
            config.loss,
            config.loss_params,
            len(train_ds.class_names),
            model.embedding_dim,
            train_ds.class_counts(),
        )
        return fit(
            config,
            model=model,
            loss=loss,
            train_ds=train_ds,
            val_ds=val_ds,
            out=out,
            device=device,
            progress=progress,
            resume=resume,
            overwrite=overwrite,
            command=command,
            callback=callback,
        )


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
    """Train ``model`` with ``loss`` on ``train_ds`` (the loop behind :func:`train`).

    ``epochs`` and ``lr`` default to the config's; ``log_extra`` adds constant columns to every
    log row (the pseudo-label loop's round number). The labels trained on are ``train_ds``'s.
    """
    epochs = config.epochs if epochs is None else int(epochs)
    lr = config.lr if lr is None else float(lr)
    out = Path(out)
    state_path = out / "train_state.pt"
    _check_fresh(out, resume=resume, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.json")
    command = shlex.join(sys.argv) if command is None else command
    num_classes = len(train_ds.class_names)

    model.to(device)
    loss.to(device)
    loss.prepare(train_ds, cache_dir=out / "cache")
    sampler = make_sampler(config, train_ds.labels)
    steps_per_epoch = len(sampler)
    params = [p for p in model.parameters() if p.requires_grad]
    params += [p for p in loss.parameters() if p.requires_grad]
    optimizer = make_optimizer(config, params, lr)
    scheduler = make_scheduler(config, optimizer, epochs, steps_per_epoch)
    augment = Augmenter(config.augment)
    train_data = ImageBatches(train_ds, preload=config.preload, num_workers=config.num_workers)
    val_data = (
        ImageBatches(val_ds, preload=config.preload, num_workers=config.num_workers)
        if val_ds is not None
        else None
    )

    history: list[dict] = []
    start_epoch, best_score, best_epoch, since_best = 0, None, 0, 0
    stopped_early, prior_wall = False, 0.0
    if resume and state_path.exists():
        state = _load_state(state_path, config)
        model.load_state_dict(state["model"])
        loss.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        start_epoch = int(state["epoch"])
        best_score, best_epoch = state["best_score"], int(state["best_epoch"])
        since_best, stopped_early = int(state["epochs_since_best"]), bool(state["stopped_early"])
        history, prior_wall = list(state["history"]), float(state["wall_time_s"])
    uses_head = bool(getattr(loss, "uses_head", True))
    t0 = time.perf_counter()

    def wall() -> float:
        return prior_wall + time.perf_counter() - t0

    for epoch in range(start_epoch, epochs):
        if stopped_early:
            break
        torch.manual_seed(derive_seed(config.seed, epoch, _TORCH_STREAM))
        gen = torch.Generator().manual_seed(derive_seed(config.seed, epoch, _AUGMENT_STREAM))
        model.train()
        loss.train()
        t_epoch = time.perf_counter()
        sums: dict[str, Tensor] = {}
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = step = 0
        batches = sampler.batches(epoch)
        lr_now = optimizer.param_groups[0]["lr"]
        bar = _progress(
            train_data.iterate(batches), len(batches), f"epoch {epoch + 1}/{epochs}", progress
        )
        for idx, images, y in bar:
            x = augment(normalize_images(images.to(device, non_blocking=True)), gen)
            y = y.to(device)
            emb, logits = model(x)
            parts = loss(emb, logits, y, indices=idx.to(device))
            total = parts["loss"]
            if not uses_head:
                logits = model.forward_head(emb.detach())
                probe = F.cross_entropy(logits, y)
                parts["probe_ce"] = probe.detach()
                total = total + probe
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            scheduler.step()
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

        row: dict = {"epoch": epoch + 1, **(log_extra or {})}
        row["lr"] = lr_now
        means = {k: float(v) / max(seen, 1) for k, v in sums.items()}
        if not math.isfinite(means.get("loss", 0.0)):
            raise FerembedError(
                f"training diverged at epoch {epoch + 1} (loss {means['loss']}); lower lr "
                f"(now {lr}) or the loss weights"
            )
        row["train_loss"] = means.pop("loss", float("nan"))
        row.update({f"train_{k}": v for k, v in means.items()})
        stats = getattr(loss, "stats", None)
        if callable(stats):
            row.update({f"loss_{k}": float(v) for k, v in stats().items()})
        row["train_acc"] = int(correct) / max(seen, 1)
        if val_data is not None:
            _, val_logits = embed_batches(model, val_data, device, config.eval_batch_size)
            m = classification_metrics(val_logits.argmax(1), val_data.labels.numpy(), num_classes)
            row["val_acc"] = m["acc"]
            row["val_mean_class_acc"] = m["mean_class_acc"]
            row["val_per_class_acc"] = m["per_class_acc"]
        row["epoch_time_s"] = epoch_time
        row["images_per_s"] = seen / epoch_time if epoch_time > 0 else float("nan")
        history.append(row)

        score = row.get(config.monitor)
        improved = (
            val_data is None or best_score is None or (score is not None and score > best_score)
        )
        if improved:
            best_score, best_epoch, since_best = score, epoch + 1, 0
        else:
            since_best += 1
        patience = config.early_stopping_patience
        if val_data is not None and patience is not None and since_best >= patience:
            stopped_early = True

        meta = _checkpoint_meta(config, train_ds, row, best_epoch, command, wall(), device)
        save_checkpoint(out / "last", model, loss=loss, meta=meta)
        if improved:
            save_checkpoint(out / "best", model, loss=loss, meta=meta)
        _write_logs(out, history)
        _save_state(
            state_path,
            {
                "format": STATE_FORMAT,
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "loss": loss.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_score": best_score,
                "best_epoch": best_epoch,
                "epochs_since_best": since_best,
                "stopped_early": stopped_early,
                "history": history,
                "wall_time_s": wall(),
                "config": config.to_dict(),
                "rng": {"torch": torch.get_rng_state()},
            },
        )
        if progress:
            _print_row(row)
        if callback is not None:
            callback(row)

    if not history:
        raise FerembedError(f"{out}: no epoch was trained (epochs={epochs})")
    return TrainResult(
        out=out,
        best_checkpoint=out / "best.json",
        last_checkpoint=out / "last.json",
        best_epoch=best_epoch,
        best_score=best_score,
        epochs_run=int(history[-1]["epoch"]),
        stopped_early=stopped_early,
        history=history,
        wall_time_s=wall(),
        device=str(device),
    )


# ------------------------------------------------------------------------------------------------
# Pieces of the loop


def _check_fresh(out: Path, *, resume: bool, overwrite: bool) -> None:
    state_path = out / "train_state.pt"
    if state_path.exists() and not (resume or overwrite):
        raise ConfigError(
            f"{out} already holds a training run ({state_path.name}); resume it or choose "
            f"another output directory (or overwrite)"
        )


def derive_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed from ``(seed, epoch, stream)`` (independent streams per use and epoch)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(
        1, dtype=np.uint64
    )
    return int(state[0] % (2**63))


def make_sampler(config: TrainConfig, labels: np.ndarray):
    """The epoch-seeded batch sampler for the config (see :mod:`ferembed.training.sampler`)."""
    if config.sampler == "balanced":
        present = int((np.bincount(labels) > 0).sum())
        p = config.classes_per_batch or present
        k = config.samples_per_class or max(1, config.batch_size // p)
        if p > present:
            raise ConfigError(f"classes_per_batch={p} but only {present} classes have samples")
        return BalancedBatchSampler(labels, p, k, seed=config.seed)
    return RandomBatchSampler(len(labels), config.batch_size, seed=config.seed)


def make_optimizer(config: TrainConfig, params: list, lr: float) -> torch.optim.Optimizer:
    """SGD (Nesterov when momentum > 0), Adam or AdamW at ``lr``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=config.weight_decay)


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LR factor: linear warm-up, then cosine to 0, x0.1 steps at 50%/75%, or constant."""
    total = max(1, epochs * steps_per_epoch)
    warm = min(config.warmup_epochs * steps_per_epoch, total - 1)
    kind = config.schedule

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if kind == "step":
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextlib.contextmanager
def deterministic_mode(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels (warn-only) for the duration; the previous settings are restored."""
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if enabled:
        if device.type == "cuda":
            # cuBLAS needs this for deterministic matmuls; it is read when cuBLAS initialises.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.benchmark = prev[2]
        torch.backends.cudnn.deterministic = prev[3]


def _checkpoint_meta(
    config: TrainConfig,
    train_ds: FERDataset,
    row: dict,
    best_epoch: int,
    command: str,
    wall_time: float,
    device: torch.device,
) -> dict:
    metrics = {
        k: row[k]
        for k in ("epoch", "train_loss", "train_acc", "val_acc", "val_mean_class_acc")
        if k in row
    }
    metrics["best_epoch"] = best_epoch
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
        "command": command,
        "wall_time_s": round(wall_time, 3),
        "device": str(device),
        "epochs": int(row["epoch"]),
    }


def _write_logs(out: Path, history: list[dict]) -> None:
    _io.write_json(out / "log.json", _finite(history))
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns and not isinstance(row[k], list)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    _io.write_text(out / "log.csv", buf.getvalue())


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _save_state(path: Path, state: dict) -> None:
    with _io.atomic_path(path) as tmp:
        torch.save(state, tmp)


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
