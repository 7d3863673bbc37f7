"""What a training run is built from: data, model, loss, batches, sampler, optimiser, schedule.

The pieces :func:`ferembed.training.loop.fit` and the pseudo-label loop assemble. Every random
choice of epoch ``e`` is seeded from ``(seed, e)`` alone (:func:`derive_seed`), so two runs with a
seed give identical weights on CPU and a resumed run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ferembed.data._base import FERDataset
from ferembed.data.subset import SubsetDataset
from ferembed.errors import ConfigError, FerembedError
from ferembed.models import FERNet, create_model
from ferembed.training.config import TrainConfig
from ferembed.training.sampler import BalancedBatchSampler, RandomBatchSampler

# Independent seed streams derived from (seed, epoch).
TORCH_STREAM = 0x70C
AUGMENT_STREAM = 0xA06
_SUBSET_STREAM = 0x5B5


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


def build_model_and_loss(
    config: TrainConfig, train_ds: FERDataset, *, class_counts=None, progress: bool = False
) -> tuple[FERNet, nn.Module]:
    """The model for ``train_ds`` (from ``init_checkpoint`` when set) and ``config.loss``.

    ``class_counts`` (default: ``train_ds``'s) feed the loss (the pseudo-label loop passes the
    labelled part's).
    """
    num_classes = len(train_ds.class_names)
    model = build_model(config, num_classes, train_ds.image_size)
    init_model(model, config, train_ds.class_names, progress=progress)
    counts = train_ds.class_counts() if class_counts is None else class_counts
    loss = build_loss(config.loss, config.loss_params, num_classes, model.embedding_dim, counts)
    return model, loss


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

    def load_image(self, i: int) -> np.ndarray:
        """(S, S) uint8 image ``i`` (from memory when preloaded)."""
        if self.images is not None:
            return self.images[i].numpy()
        return self.dataset.load_image(i)

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


def embed_batches(
    model: FERNet, data: ImageBatches, device: torch.device, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Embed every image of ``data`` (eval mode, no augmentation) with the one embedding loop,
    :func:`ferembed.runs.embed.embed_dataset`; the model's train/eval mode is restored after.

    Returns:
        ``(embeddings (N, D) float32, logits (N, C) float32)`` in dataset order.
    """
    from ferembed.runs.embed import embed_dataset

    was_training = model.training
    try:
        emb, logits, _ = embed_dataset(
            model,
            data,
            batch_size=batch_size,
            device=str(device),
            progress=False,
            thumbs=False,
        )
    finally:
        model.train(was_training)
    return emb, logits


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
