"""``ferembed train``: one network with one loss (or one seed method), flags over a config."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferembed._cli.args import DEVICE_HELP, int_at_least
from ferembed._cli.args import command_line as _command_line
from ferembed._cli.args import kv_pairs as _kv


def cmd_train(args) -> int:
    from ferembed.training import TrainConfig, apply_overrides, load_config, train
    from ferembed.training.loop import check_fresh
    from ferembed.training.methods import SEED_METHODS, method_overrides

    config = load_config(args.config) if args.config else TrainConfig()
    # Precedence: the config file < --method < a seed method named by --loss < flags < --set.
    overrides = _train_method_overrides(args.method) if args.method else {}
    flags = {k: v for k, v in vars(args).items() if k in _TRAIN_FLAGS and v is not None}
    if flags.get("loss") in SEED_METHODS:  # `--loss emlf`, `--loss affinity_cluster`: the method
        overrides.update(method_overrides(flags.pop("loss")))
    overrides.update(flags)
    if args.loss_param:
        overrides["loss_params"] = {**config.loss_params, **_kv(args.loss_param, "--loss-param")}
    if args.dataset_arg:
        overrides["dataset_kwargs"] = {
            **config.dataset_kwargs,
            **_kv(args.dataset_arg, "--dataset-arg"),
        }
    overrides.update(_kv(args.set, "--set"))
    config = apply_overrides(config, overrides)
    # Refused before the data is read: an --out that is an input, a run, or holds checkpoints
    # that a fresh start would replace (the pseudo-label loop resumes from its record).
    state = "pseudo_labels.json" if config.method == "pseudo_label" else "train_state.pt"
    inputs = [("--root", config.root), ("--config", args.config)]
    check_fresh(
        Path(config.out),
        resume=args.resume,
        overwrite=args.overwrite,
        inputs=inputs,
        state=state,
    )
    result = train(
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=_command_line(),
    )
    print(f"best checkpoint: {result.best_checkpoint}")
    return 0


def _train_method_overrides(name: str) -> dict:
    """``--method``: a seed method's overrides, or the training loop itself (standard, ...)."""
    from ferembed.training.config import METHODS as LOOPS
    from ferembed.training.methods import method_overrides

    return {"method": name} if name in LOOPS else method_overrides(name)


class _RegistryChoice(argparse.Action):
    """``--NAME VALUE`` checked against a registry that is imported only when it is needed.

    argparse reads ``choices`` when the option is given and ``help`` when help is printed; both
    are properties here, so other commands never import torch to build the parser.
    """

    def __init__(self, option_strings, dest, *, kind: str, **kwargs) -> None:
        self.kind = kind
        super().__init__(option_strings, dest, metavar="NAME", **kwargs)

    @property
    def choices(self) -> list[str]:
        from ferembed.training.methods import train_option_choices

        return train_option_choices(self.kind)

    @choices.setter
    def choices(self, value) -> None:  # argparse's __init__ assigns None
        pass

    @property
    def help(self) -> str:
        return f"{self._help}; one of: {', '.join(self.choices)}"

    @help.setter
    def help(self, value: str) -> None:
        self._help = value

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)


_TRAIN_FLAGS = (
    "dataset",
    "root",
    "split",
    "val_split",
    "fold",
    "num_folds",
    "arch",
    "embedding_dim",
    "loss",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "sampler",
    "seed",
    "device",
    "out",
    "embed_every",
)


def add_train_command(add) -> None:
    """Register ``train`` with ``add(name, fn, help, **texts)``."""
    sp = add(
        "train",
        cmd_train,
        "train a model with a loss (flags override --config)",
        description=TRAIN_DESCRIPTION,
        epilog=TRAIN_EXAMPLES,
    )
    sp.add_argument("--config", help="JSON or TOML TrainConfig file (or a checkpoint sidecar)")
    sp.add_argument("--dataset", help="dataset name (see `ferembed datasets`); default synthfer")
    sp.add_argument("--root", help="dataset root directory (not needed for synthfer)")
    sp.add_argument("--split", help="split to train on (default train)")
    sp.add_argument(
        "--val-split", dest="val_split", help="split validated each epoch (none: no validation)"
    )
    sp.add_argument("--fold", type=int_at_least(0), help="k-fold datasets (CK+): the held-out fold")
    sp.add_argument("--num-folds", type=int_at_least(2), help="k-fold datasets: number of folds")
    sp.add_argument(
        "--dataset-arg",
        action="append",
        metavar="KEY=VALUE",
        help="extra dataset option, e.g. classes=6 (repeatable)",
    )
    sp.add_argument(
        "--method",
        action=_RegistryChoice,
        kind="method",
        help="seed method: applies its config overrides (explicit flags still win), or the "
        "training loop itself (standard, pseudo_label)",
    )
    sp.add_argument("--arch", action=_RegistryChoice, kind="arch", help="network architecture")
    sp.add_argument("--embedding-dim", type=int, help="embedding width D (default 128)")
    sp.add_argument(
        "--loss",
        action=_RegistryChoice,
        kind="loss",
        help="loss, or a seed method (emlf, affinity_cluster...: its whole setup, as --method)",
    )
    sp.add_argument(
        "--loss-param",
        action="append",
        metavar="KEY=VALUE",
        help="loss hyper-parameter, e.g. lam=0.01 (repeatable; see docs/losses.md)",
    )
    sp.add_argument("--epochs", type=int, help="training epochs (default 30)")
    sp.add_argument("--batch-size", type=int, help="training batch size (default 64)")
    sp.add_argument("--lr", type=float, help="peak learning rate (default 0.01)")
    sp.add_argument(
        "--optimizer", action=_RegistryChoice, kind="optimizer", help="optimiser (default sgd)"
    )
    sp.add_argument(
        "--sampler",
        action=_RegistryChoice,
        kind="sampler",
        help="batch sampler, balanced = P classes x K samples (default random)",
    )
    sp.add_argument("--seed", type=int, help="seeds init, sampling, augmentation (default 0)")
    sp.add_argument("--device", help=DEVICE_HELP)
    sp.add_argument("--out", help="output directory: logs, checkpoints, train state")
    sp.add_argument(
        "--embed-every",
        type=int_at_least(0),
        metavar="N",
        help="every N epochs (and after the last), write the validation split's embeddings as "
        "a run in OUT/series/step-EPOCH, for the dashboard's Dynamics page (default 0: never)",
    )
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any TrainConfig field, e.g. augment.flip=false (repeatable; wins over flags)",
    )
    sp.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    sp.add_argument("--overwrite", action="store_true", help="start afresh in a used OUT")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


TRAIN_DESCRIPTION = """\
Train one network with one loss, or one seed method (--method: the losses of the FER papers
ferembed reproduces, docs/training.md), on a dataset split. Writes OUT/best.safetensors and
OUT/last.safetensors with their sidecars (config, classes, the command), OUT/log.json and
OUT/log.csv (one row per epoch), OUT/train_state.pt for --resume, and with --embed-every a
series of validation runs in OUT/series/. The settings come from
--config, then --method, then the flags, then --set; the full config is saved with the
checkpoint so that `ferembed train --config OUT/best.json` reproduces it."""
TRAIN_EXAMPLES = """\
examples:
  ferembed train --dataset synthfer --method center --epochs 10 --out work/center
  ferembed train --dataset fer2013 --root ../shared/datasets/fer2013 --loss emlf --out work/emlf"""
