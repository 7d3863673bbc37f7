"""TrainConfig: (de)serialisation, files, overrides and validation errors."""

from __future__ import annotations

import json

import pytest

from ferembed.errors import FerembedError
from ferembed.training import (
    AugmentConfig,
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_fields,
    load_config,
)


def test_defaults_are_valid_and_round_trip():
    cfg = TrainConfig().validate()
    data = cfg.to_dict()
    json.dumps(data)  # plain JSON
    assert data["augment"]["flip"] is True
    assert TrainConfig.from_dict(data) == cfg


def test_config_error_is_a_ferembed_value_error():
    assert issubclass(ConfigError, FerembedError) and issubclass(ConfigError, ValueError)


def test_load_json(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"arch": "affnet", "lr": 0.1, "augment": {"rotation": 5}}))
    cfg = load_config(path)
    assert cfg.arch == "affnet" and cfg.lr == 0.1 and cfg.augment.rotation == 5.0
    assert cfg.augment.flip is True  # untouched defaults


def test_load_toml_with_augment_table(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text(
        'arch = "resnet18"\nepochs = 3\nval_split = "test"\nmodel_kwargs = { width = 0.5 }\n'
        "[augment]\nerasing = 0.0\nflip = false\n"
    )
    cfg = load_config(path, overrides={"epochs": "7"})
    assert cfg.arch == "resnet18" and cfg.epochs == 7 and cfg.val_split == "test"
    assert cfg.model_kwargs == {"width": 0.5}
    assert cfg.augment == AugmentConfig(erasing=0.0, flip=False)


def test_load_a_checkpoint_sidecars_train_section(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"format": "ferembed.checkpoint/1", "train": {"epochs": 4}}))
    assert load_config(path).epochs == 4


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("missing.json", None, "config file not found"),
        ("cfg.yaml", "a: 1", "must be .json or .toml"),
        ("cfg.json", "{bad", "cannot parse config"),
        ("cfg.toml", "x = = 1", "cannot parse config"),
        ("cfg.json", "[1, 2]", "table/object"),
        ("cfg.json", '{"learning_rate": 0.1}', "unknown config key 'learning_rate'"),
    ],
)
def test_load_errors_name_the_file(tmp_path, name, text, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert name in str(info.value)


def test_overrides_parse_strings_from_the_command_line():
    cfg = apply_overrides(
        TrainConfig(),
        {
            "batch-size": "32",
            "lr": "0.05",
            "val_split": "none",
            "max_train_samples": "100",
            "deterministic": "false",
            "augment.flip": "no",
            "loss_params": '{"lam": 0.1}',
            "arch": "vgg",
        },
    )
    assert cfg.batch_size == 32 and cfg.lr == 0.05 and cfg.val_split is None
    assert cfg.max_train_samples == 100 and cfg.deterministic is False
    assert cfg.augment.flip is False and cfg.loss_params == {"lam": 0.1} and cfg.arch == "vgg"


def test_overrides_accept_typed_values_and_do_not_mutate():
    base = TrainConfig()
    cfg = apply_overrides(base, {"epochs": 5.0, "lr": 1, "augment": {"rotation": 3}})
    assert cfg.epochs == 5 and isinstance(cfg.epochs, int) and cfg.lr == 1.0
    assert cfg.augment.rotation == 3.0
    assert base.epochs == 30 and base.augment.rotation == 10.0
    cfg.loss_params["x"] = 1
    assert base.loss_params == {}


def test_augment_false_switches_augmentation_off():
    assert apply_overrides(TrainConfig(), {"augment": "false"}).augment.enabled is False


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"epoch": 3}, r"unknown config key 'epoch'; did you mean \['epochs'"),
        ({"augment.flop": True}, r"unknown config key 'augment.flop'"),
        ({"epochs": "three"}, r"'epochs' must be an integer"),
        ({"epochs": True}, r"'epochs' must be an integer"),
        ({"epochs": 2.5}, r"'epochs' must be an integer"),
        ({"lr": "fast"}, r"'lr' must be a number"),
        ({"deterministic": "maybe"}, r"'deterministic' must be a boolean"),
        ({"arch": 3}, r"'arch' must be a string"),
        ({"model_kwargs": "[1]"}, r"'model_kwargs' must be a dict"),
        ({"augment": 3}, r"'augment' must be a table"),
    ],
)
def test_override_errors_name_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(TrainConfig(), overrides)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"schedule": "linear"}, "schedule"),
        ({"sampler": "weighted"}, "sampler"),
        ({"input_mode": "both"}, "input_mode"),
        ({"device": "tpu"}, "device"),
        ({"method": "mixup"}, "method"),
        ({"monitor": "val_loss"}, "monitor"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"warmup_epochs": 30}, "warmup_epochs"),
        ({"hidden_label_fraction": 1.0}, "hidden_label_fraction"),
        ({"pseudo_keep_fraction": 0.0}, "pseudo_keep_fraction"),
        ({"early_stopping_patience": 0}, "early_stopping_patience"),
        ({"augment.rotation": 400.0}, "augment.rotation"),
        ({"arch": "fusion"}, "input_mode"),
    ],
)
def test_validate_names_the_bad_field(changes, key):
    cfg = apply_overrides(TrainConfig(), changes)
    with pytest.raises(ConfigError, match=key):
        cfg.validate()


def test_config_fields_lists_nested_keys():
    keys = config_fields()
    assert "lr" in keys and "augment.erasing" in keys and "augment" not in keys
