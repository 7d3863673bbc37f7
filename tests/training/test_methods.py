"""The seed-method registry and ``ferembed train --method/--loss`` with its choices."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import ferembed.training
from ferembed.cli import build_parser, main
from ferembed.errors import ConfigError, FerembedError
from ferembed.losses import list_losses
from ferembed.models import list_models
from ferembed.training import SEED_METHODS, TrainConfig, apply_overrides, method_overrides


def test_every_seed_method_is_a_valid_config():
    assert len(SEED_METHODS) == 10
    for name, method in SEED_METHODS.items():
        assert method.name == name and method.description
        cfg = apply_overrides(TrainConfig(), method_overrides(name)).validate()
        assert cfg.loss in list_losses() and cfg.arch in list_models()


def test_method_overrides_are_fresh_copies():
    method_overrides("emlf")["input_mode"] = "full"
    assert method_overrides("emlf") == {"loss": "emlf", "input_mode": "fused"}


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown seed method 'bogus'.*'affinity_cluster'"):
        method_overrides("bogus")
    assert issubclass(ConfigError, FerembedError)


def test_zoo_trains_the_registry():
    from ferembed import zoo

    assert list(zoo.METHODS) == list(SEED_METHODS)
    assert zoo.METHODS["affinity_cluster"] == SEED_METHODS["affinity_cluster"].overrides
    assert zoo.DESCRIPTIONS["center"] == SEED_METHODS["center"].description


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """Run ``ferembed train ARGS`` without training; returns the config train() received."""
    seen = {}

    def fake_train(config, **kwargs):
        seen["config"] = config
        return SimpleNamespace(best_checkpoint=tmp_path / "best.json")

    monkeypatch.setattr(ferembed.training, "train", fake_train)

    def run(*args):
        assert main(["train", "--out", str(tmp_path / "run"), "--quiet", *args]) == 0
        return seen["config"]

    return run


def test_loss_emlf_trains_the_fused_model(trained):
    cfg = trained("--loss", "emlf")
    assert (cfg.loss, cfg.input_mode, cfg.arch) == ("emlf", "fused", "vgg_small")


def test_loss_affinity_cluster_is_the_whole_method(trained):
    cfg = trained("--loss", "affinity_cluster")
    assert (cfg.arch, cfg.method, cfg.loss) == ("affnet", "pseudo_label", "center")


def test_method_applies_overrides_and_explicit_flags_win(trained):
    cfg = trained("--method", "affinity_cluster", "--loss", "island", "--arch", "vgg")
    assert (cfg.arch, cfg.method, cfg.loss) == ("vgg", "pseudo_label", "island")
    cfg = trained("--method", "triplet", "--sampler", "random")
    assert (cfg.loss, cfg.sampler) == ("triplet", "random")
    cfg = trained("--loss", "emlf", "--set", "input_mode=partial")
    assert cfg.input_mode == "partial"


def test_method_names_the_training_loop_too(trained):
    assert trained("--method", "pseudo_label").method == "pseudo_label"
    assert trained("--loss", "center").method == "standard"


@pytest.mark.parametrize(
    ("flag", "names"),
    [
        ("--loss", sorted({*list_losses(), "affinity_cluster"})),
        ("--arch", list_models()),
        ("--method", [*SEED_METHODS, "standard", "pseudo_label"]),
        ("--optimizer", ["sgd", "adam", "adamw"]),
        ("--sampler", ["random", "balanced"]),
    ],
)
def test_choices_are_listed_and_checked(flag, names, capsys):
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    action = next(a for a in train_parser._actions if flag in a.option_strings)
    assert list(action.choices) == names
    assert action.help.endswith("one of: " + ", ".join(names))
    assert main(["train", flag, "bogus"]) == 2  # a usage error is one line, exit 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_every_train_option_has_help():
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train_parser._actions:
        assert action.help, action.option_strings
