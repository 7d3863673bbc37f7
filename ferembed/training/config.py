"""The training configuration: a typed dataclass, loaded from JSON/TOML, saved beside checkpoints.

``load_config("cfg.toml")`` reads a file whose top-level keys are :class:`TrainConfig` fields (and
an ``[augment]`` table of :class:`~ferembed.training.augment.AugmentConfig` fields);
:func:`apply_overrides` applies ``{"lr": 0.1, "augment.flip": False}``-style overrides (from CLI
flags) with type checking. Every problem raises :class:`ConfigError` naming the bad key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferembed.errors import ConfigError
from ferembed.training.augment import AugmentConfig

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "none")
SAMPLERS = ("random", "balanced")
METHODS = ("standard", "pseudo_label")
MONITORS = ("val_mean_class_acc", "val_acc")
PSEUDO_SELECTIONS = ("margin", "per_cluster")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint's sidecar)."""

    # --- data
    dataset: str = "synthfer"  # dataset registry name (ferembed.data.create_dataset)
    root: str | None = None  # dataset root directory; None for generated datasets
    split: str = "train"  # split trained on
    val_split: str | None = "val"  # split validated on each epoch; None: no validation
    fold: int | None = None  # k-fold datasets (CK+): the held-out fold
    num_folds: int | None = None  # k-fold datasets: number of folds (None: dataset default)
    dataset_kwargs: dict = field(default_factory=dict)  # extra create_dataset keywords
    max_train_samples: int | None = None  # seeded random subset of the train split (smoke runs)
    preload: bool = True  # decode every image once into memory (48x48 sets are small)
    # --- model
    arch: str = "vgg_small"  # model registry name (ferembed.models.create_model)
    model_kwargs: dict = field(default_factory=dict)  # architecture keywords (width, widths...)
    embedding_dim: int = 128  # D, width of the embedding layer
    init_checkpoint: str | None = None  # fine-tune from these weights (head rows matched by class)
    input_mode: str = "full"  # full | partial (PartialImage) | fused (two-stream around arch)
    # --- loss
    loss: str = "softmax"  # loss registry name (ferembed.losses.create_loss)
    loss_params: dict = field(default_factory=dict)  # loss hyper-parameters
    method: str = "standard"  # standard | pseudo_label (expression-guided clustering loop)
    # --- optimisation
    epochs: int = 30  # training epochs (round 0 of the pseudo-label loop)
    batch_size: int = 64  # training batch size (random sampler)
    eval_batch_size: int = 256  # batch size for validation / embedding
    lr: float = 0.01  # peak learning rate
    optimizer: str = "sgd"  # sgd (Nesterov momentum) | adam | adamw
    weight_decay: float = 5e-4  # L2 (sgd/adam) or decoupled (adamw) weight decay
    momentum: float = 0.9  # SGD momentum
    schedule: str = "cosine"  # cosine (to 0) | step (x0.1 at 50% and 75%) | none; per step
    warmup_epochs: int = 0  # linear warm-up epochs before the schedule
    # --- sampling
    sampler: str = "random"  # random | balanced (P classes x K samples per batch)
    classes_per_batch: int | None = None  # balanced: P (None: every class with samples)
    samples_per_class: int | None = None  # balanced: K (None: batch_size // P)
    # --- augmentation
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-batch augmentation
    # --- runtime
    seed: int = 0  # seeds the model init, the sampler, augmentation and dropout
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    num_workers: int = 0  # DataLoader workers (only when preload is False)
    deterministic: bool = True  # torch.use_deterministic_algorithms(True, warn_only=True)
    # --- selection and output
    monitor: str = "val_mean_class_acc"  # picks the best epoch: val_mean_class_acc | val_acc
    early_stopping_patience: int | None = None  # stop after this many epochs without improvement
    embed_every: int = 0  # log the val split's embeddings every N epochs to OUT/series (0: never)
    out: str = "train_out"  # output directory (log, checkpoints, train state)
    # --- pseudo-label loop (method = "pseudo_label")
    hidden_label_fraction: float = 0.5  # fraction of the train split whose labels are hidden
    pseudo_rounds: int = 3  # clustering + fine-tuning rounds after round 0
    pseudo_epochs: int | None = None  # fine-tuning epochs per round (None: epochs)
    pseudo_keep_fraction: float = 0.5  # fraction of the pool kept as pseudo-labelled per round
    pseudo_selection: str = "margin"  # margin (global, by centroid margin) | per_cluster
    pseudo_loss: str = "center"  # loss of the fine-tuning rounds (CE + center by default)
    pseudo_loss_params: dict = field(default_factory=dict)  # its hyper-parameters
    pseudo_lr: float | None = None  # fine-tuning learning rate (None: lr / 10)
    pseudo_kmeans_iters: int = 20  # FAISS k-means iterations per round
    pseudo_control: bool = False  # control: rounds fine-tune on the labelled part alone

    # ------------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):  # TrainConfig(augment={"flip": False})
            self.augment = apply_overrides(TrainConfig(), {"augment": self.augment}).augment

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (``augment`` as a nested dict)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict like :meth:`to_dict`'s (missing keys take their defaults).

        Raises:
            ConfigError: unknown key or a value of the wrong type.
        """
        return apply_overrides(cls(), data)

    def validate(self) -> TrainConfig:
        """Check choices and ranges; returns self.

        Raises:
            ConfigError: the first bad field, named, with the valid range.
        """
        from ferembed.models import INPUT_MODES

        choices = {
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "sampler": SAMPLERS,
            "method": METHODS,
            "monitor": MONITORS,
            "input_mode": INPUT_MODES,
            "pseudo_selection": PSEUDO_SELECTIONS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                value = getattr(self, key)
                raise ConfigError(f"{key} must be one of {list(allowed)}, got {value!r}")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda", "mps") or dev.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {dev!r}")

        def opt(v, ok):  # optional fields: None is valid
            return v is None or ok(v)

        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 2, ">= 2"),
            ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
            ("embedding_dim", self.embedding_dim >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("warmup_epochs", 0 <= self.warmup_epochs < self.epochs, "in [0, epochs)"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("embed_every", self.embed_every >= 0, ">= 0"),
            ("max_train_samples", opt(self.max_train_samples, lambda v: v >= 2), ">= 2 or None"),
            ("classes_per_batch", opt(self.classes_per_batch, lambda v: v >= 1), ">= 1 or None"),
            ("samples_per_class", opt(self.samples_per_class, lambda v: v >= 1), ">= 1 or None"),
            (
                "early_stopping_patience",
                opt(self.early_stopping_patience, lambda v: v >= 1),
                ">= 1 or None",
            ),
            ("hidden_label_fraction", 0 < self.hidden_label_fraction < 1, "in (0, 1)"),
            ("pseudo_rounds", self.pseudo_rounds >= 0, ">= 0"),
            ("pseudo_epochs", opt(self.pseudo_epochs, lambda v: v >= 1), ">= 1 or None"),
            ("pseudo_keep_fraction", 0 < self.pseudo_keep_fraction <= 1, "in (0, 1]"),
            ("pseudo_lr", opt(self.pseudo_lr, lambda v: v > 0), "> 0 or None"),
            ("pseudo_kmeans_iters", self.pseudo_kmeans_iters >= 1, ">= 1"),
        ]
        for key, ok, valid in checks:
            if not ok:
                raise ConfigError(f"{key} must be {valid}, got {getattr(self, key)!r}")
        if self.arch == "fusion" and self.input_mode != "fused":
            raise ConfigError(
                "arch 'fusion' is the two-stream model: set input_mode='fused' (or pick a "
                "single-stream arch; input_mode='fused' wraps it in the fusion model)"
            )
        if self.embed_every and self.val_split is None:
            raise ConfigError("embed_every logs the validation split: set val_split as well")
        self.augment.validate()
        return self


def config_fields() -> list[str]:
    """Every settable key, nested ones dotted (``augment.flip``)."""
    keys = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "augment":
            keys += [f"augment.{g.name}" for g in dataclasses.fields(AugmentConfig)]
        else:
            keys.append(f.name)
    return keys


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """Return a copy of ``config`` with ``overrides`` applied, type-checked.

    Keys are field names; dashes are read as underscores (``batch-size``); nested augmentation
    keys are dotted (``augment.flip``) or given as an ``augment`` dict. Values of the field's type
    are taken as they are; strings (from a command line) are parsed: ``"3"`` for ints,
    ``"true"/"false"/"1"/"0"/"yes"/"no"`` for bools, ``"none"/"null"`` for optional fields and JSON
    objects for dict fields.

    Raises:
        ConfigError: an unknown key (with the closest known ones) or a value that does not fit
            the field's type, naming the key.
    """
    top = {f.name: f for f in dataclasses.fields(TrainConfig)}
    aug_fields = {f.name: f for f in dataclasses.fields(AugmentConfig)}
    hints = typing.get_type_hints(TrainConfig)
    aug_hints = typing.get_type_hints(AugmentConfig)
    changes: dict[str, Any] = {}
    aug_changes: dict[str, Any] = {}
    for raw_key, value in overrides.items():
        key = str(raw_key).replace("-", "_")
        if key == "augment":
            if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _BOOLS):
                aug_changes["enabled"] = _coerce("augment.enabled", value, bool)
                continue
            if isinstance(value, AugmentConfig):
                value = dataclasses.asdict(value)
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key 'augment' must be a table/dict, got {value!r}")
            for sub, v in value.items():
                sub = str(sub).replace("-", "_")
                if sub not in aug_fields:
                    raise ConfigError(_unknown(f"augment.{sub}"))
                aug_changes[sub] = _coerce(f"augment.{sub}", v, aug_hints[sub])
        elif key.startswith("augment."):
            sub = key.split(".", 1)[1]
            if sub not in aug_fields:
                raise ConfigError(_unknown(key))
            aug_changes[sub] = _coerce(key, value, aug_hints[sub])
        elif key in top:
            changes[key] = _coerce(key, value, hints[key])
        else:
            raise ConfigError(_unknown(key))
    new = dataclasses.replace(config, **changes)
    new.augment = dataclasses.replace(config.augment, **aug_changes)
    # dict fields are mutable: never share them with the source config.
    for f in dataclasses.fields(TrainConfig):
        if isinstance(getattr(new, f.name), dict):
            setattr(new, f.name, json.loads(json.dumps(getattr(new, f.name))))
    return new


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a JSON (``.json``) or TOML (``.toml``) config file, then apply ``overrides``.

    A checkpoint sidecar (``"train"`` key) or a ``[train]`` table is also accepted: its
    contents are used.

    Raises:
        ConfigError: missing/unparsable file, unsupported suffix, unknown key or bad value (the
            file is named).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            raise ConfigError(f"{path}: config files must be .json or .toml")
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot parse config ({exc})") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: cannot parse config ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a table/object of keys")
    if isinstance(data.get("train"), dict) and ("format" in data or len(data) == 1):
        data = data["train"]
    try:
        config = TrainConfig.from_dict(data)
        if overrides:
            config = apply_overrides(config, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``config.to_dict()`` as JSON (atomically)."""
    from ferembed import _io

    _io.write_json(path, config.to_dict())


# ------------------------------------------------------------------------------------------------

_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_NONES = ("none", "null")


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, config_fields(), n=3)
    hint = f"; did you mean {close}?" if close else "; see TrainConfig for the known keys"
    return f"unknown config key {key!r}{hint}"


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check/convert ``value`` to type ``tp`` (str, int, float, bool, dict, X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONES):
            return None
        return _coerce(key, value, args[0])
    bad = ConfigError(f"config key {key!r} must be {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
        raise bad
    if tp in (int, float):
        return _coerce_number(value, tp, bad)
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if tp is dict or origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad from None
        if isinstance(value, Mapping):
            return dict(value)
        raise bad
    raise ConfigError(f"config key {key!r} has an unsupported type {tp!r}")  # pragma: no cover


def _coerce_number(value: Any, tp: type, bad: ConfigError) -> int | float:
    """``value`` as an int or a float; bools and non-integral floats for ints are ``bad``."""
    if isinstance(value, bool):
        raise bad
    if tp is int and isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise bad
    if isinstance(value, (int, float)):
        return tp(value)
    if isinstance(value, str):
        try:
            return tp(value.strip())
        except ValueError:
            raise bad from None
    raise bad


def _type_name(tp: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        tp, "a dict (JSON object)" if tp is dict else str(tp)
    )
