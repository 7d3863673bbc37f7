"""Training: the config, the loop, augmentation, samplers, the seed methods, pseudo-labels.

``train(load_config("cfg.toml"))`` trains a model and writes ``out/`` (log.csv, log.json,
best/last checkpoints, train_state.pt); see ``docs/training.md``. Modules: ``config`` (the typed
config), ``setup`` (data, model, loss, batches, optimiser), ``loop`` (the epoch loop, ``fit``),
``trainer`` (the entry point, ``train``), ``pseudo_label`` (the clustering loop), ``methods`` (the
seed methods by name), ``augment``, ``sampler``.
"""

from ferembed._device import resolve_device  # kept importable here; it lives in ferembed._device
from ferembed.errors import ConfigError
from ferembed.training.augment import AugmentConfig, Augmenter
from ferembed.training.config import (
    TrainConfig,
    apply_overrides,
    config_fields,
    load_config,
    save_config,
)
from ferembed.training.loop import TrainResult
from ferembed.training.methods import SEED_METHODS, SeedMethod, method_overrides
from ferembed.training.pseudo_label import train_pseudo_label
from ferembed.training.sampler import BalancedBatchSampler, RandomBatchSampler
from ferembed.training.setup import embed_batches
from ferembed.training.trainer import train

__all__ = [
    "SEED_METHODS",
    "AugmentConfig",
    "Augmenter",
    "BalancedBatchSampler",
    "ConfigError",
    "RandomBatchSampler",
    "SeedMethod",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "config_fields",
    "embed_batches",
    "load_config",
    "method_overrides",
    "resolve_device",
    "save_config",
    "train",
    "train_pseudo_label",
]
