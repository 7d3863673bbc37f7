"""Training: the config, the loop, augmentation, samplers and the pseudo-label loop.

``train(load_config("cfg.toml"))`` trains a model and writes ``out/`` (log.csv, log.json,
best/last checkpoints, train_state.pt); see ``docs/training.md``.
"""

from ferembed.training.augment import AugmentConfig, Augmenter
from ferembed.training.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_fields,
    load_config,
    save_config,
)
from ferembed.training.pseudo_label import train_pseudo_label
from ferembed.training.sampler import BalancedBatchSampler, RandomBatchSampler
from ferembed.training.trainer import (
    TrainResult,
    classification_metrics,
    embed_batches,
    resolve_device,
    train,
)

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "BalancedBatchSampler",
    "ConfigError",
    "RandomBatchSampler",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "classification_metrics",
    "config_fields",
    "embed_batches",
    "load_config",
    "resolve_device",
    "save_config",
    "train",
    "train_pseudo_label",
]
