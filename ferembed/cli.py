"""The ``ferembed`` command line. Thin: parse, call the library, print.

User errors (bad paths, corrupt images, malformed runs, invalid options, unwritable outputs)
print one line ``ferembed: error: ...`` and exit 2. ``--debug`` (or FEREMBED_DEBUG=1) shows the
traceback.

The commands that build models and runs (train, embed, import) live here; the others are in
ferembed/_cli/ (datasets in ``data``; evaluate, export, compare, index in ``runs``; zoo, kfold in
``studies``; dashboard, demo in ``app``), with the shared argparse machinery in ``_cli.args``.
"""

from __future__ import annotations

import argparse
import os
import sys

from ferembed._cli.app import add_app_commands
from ferembed._cli.args import DATASET_CHOICES, Parser, add_command, int_at_least
from ferembed._cli.args import command_line as _command_line
from ferembed._cli.args import kv_pairs as _kv
from ferembed._cli.data import add_datasets_command
from ferembed._cli.runs import add_run_commands
from ferembed._cli.studies import add_study_commands
from ferembed._version import __version__
from ferembed.errors import FerembedError, UsageError


# --------------------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from ferembed.training import TrainConfig, apply_overrides, load_config, train
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
)


#: Options of `embed --model` that a checkpoint (which carries its own) must not get.
_MODEL_FLAGS = ("weights", "embedding_layer", "head_layer", "input_size", "channels", "mean", "std",
                "classes")  # fmt: skip


def cmd_embed(args) -> int:
    from ferembed.runs.embed import embed_checkpoint, embed_model

    common = dict(
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        out=args.out,
        fold=args.fold,
        num_folds=args.num_folds,
        dataset_kwargs=_kv(args.dataset_arg, "--dataset-arg"),
        batch_size=args.batch_size,
        device=args.device,
        distance=args.distance,
        thumbs=not args.no_thumbs,
        name=args.name,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=_command_line(),
    )
    if args.checkpoint is not None:
        given = [f"--{k.replace('_', '-')}" for k in _MODEL_FLAGS if getattr(args, k) is not None]
        if given:
            raise FerembedError(f"{', '.join(given)}: only with --model (a checkpoint has its own)")
        path = embed_checkpoint(args.checkpoint, **common)
    else:
        from ferembed.models.external import Preprocess

        path = embed_model(
            args.model,
            weights=args.weights,
            embedding_layer=args.embedding_layer,
            head_layer=args.head_layer,
            preprocess=Preprocess.from_options(args.input_size, args.channels, args.mean, args.std),
            class_names=[c.strip() for c in args.classes.split(",")] if args.classes else None,
            **common,
        )
    from ferembed.runs import load_run

    run = load_run(path)
    print(f"wrote {path}: N={run.n} D={run.dim} classes={len(run.class_names)}")
    return 0


def cmd_import(args) -> int:
    from ferembed.runs.importer import import_embeddings

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    path = import_embeddings(
        args.embeddings,
        args.labels,
        args.out,
        class_names=classes,
        logits=args.logits,
        images=args.images,
        distance=args.distance,
        name=args.name,
        overwrite=args.overwrite,
        command=_command_line(),
    )
    print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="ferembed",
        description="Metric-learning workbench for facial expression recognition: train models, "
        "embed datasets into run directories, evaluate, compare and export them, and explore "
        "them in a dashboard.",
        epilog="`ferembed COMMAND --help` describes each command, what it reads and writes, "
        "with examples.\nexample:\n  ferembed demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ferembed {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks (also FEREMBED_DEBUG=1)")
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of the commands below"
    )

    def add(name, fn, help_, **texts):
        return add_command(sub, name, fn, help_, **texts)

    def dataset_args(sp, split_default="test"):
        sp.add_argument(
            "--dataset",
            required=True,
            choices=DATASET_CHOICES,
            metavar="NAME",
            help="dataset layout: %(choices)s (see `ferembed datasets`)",
        )
        sp.add_argument("--root", help="dataset root (not needed for synthfer)")
        sp.add_argument(
            "--split",
            default=split_default,
            help="split to read, e.g. train, val, test, all (default %(default)s)",
        )
        sp.add_argument("--fold", type=int_at_least(0), help="fold index for k-fold datasets (CK+)")
        sp.add_argument(
            "--num-folds",
            type=int_at_least(2),
            default=10,
            help="number of folds of a k-fold dataset (default %(default)s)",
        )
        sp.add_argument(
            "--dataset-arg",
            action="append",
            metavar="KEY=VALUE",
            help="extra dataset option, e.g. classes=6",
        )

    add_datasets_command(add)

    sp = add("train", cmd_train, "train a model with a loss (flags override --config)")
    sp.add_argument("--config", help="JSON or TOML TrainConfig file (or a checkpoint sidecar)")
    sp.add_argument("--dataset", help="dataset name (see `ferembed datasets`); default synthfer")
    sp.add_argument("--root", help="dataset root directory (not needed for synthfer)")
    sp.add_argument("--split", help="split to train on (default train)")
    sp.add_argument(
        "--val-split", dest="val_split", help="split validated each epoch (none: no validation)"
    )
    sp.add_argument("--fold", type=int, help="k-fold datasets (CK+): the held-out fold")
    sp.add_argument("--num-folds", type=int, help="k-fold datasets: number of folds")
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
    sp.add_argument("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    sp.add_argument("--out", help="output directory: logs, checkpoints, train state")
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any TrainConfig field, e.g. augment.flip=false (repeatable; wins over flags)",
    )
    sp.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    sp.add_argument("--overwrite", action="store_true", help="start afresh in a used OUT")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")

    sp = add(
        "embed",
        cmd_embed,
        "embed a dataset split with a checkpoint or your own model into a run directory",
    )
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a ferembed checkpoint (.safetensors + sidecar)")
    src.add_argument(
        "--model",
        metavar="SPEC",
        help="your own model (docs/byom.md): python:PATH.py:FUNC or python:pkg.module:FUNC (a "
        "factory returning an nn.Module), torchscript:PATH, onnx:PATH. python: and torchscript: "
        "run the file's code: trusted files only",
    )
    sp.add_argument("--weights", help="python: state dict, .safetensors or plain-tensor .pt/.pth")
    sp.add_argument(
        "--embedding-layer", metavar="NAME", help="layer (or output) giving the embedding"
    )
    sp.add_argument("--head-layer", metavar="NAME", help="layer (or output) giving the logits")
    sp.add_argument("--input-size", metavar="H|HxW", help="model input size (default 48)")
    sp.add_argument("--channels", type=int, choices=[1, 3], help="input channels (default 1)")
    sp.add_argument("--mean", help="after pixels/255, one value or one per channel (default 0)")
    sp.add_argument("--std", help="after the mean, one value or one per channel (default 1)")
    sp.add_argument("--classes", help="comma-separated classes in the order of the logits")
    dataset_args(sp)
    sp.add_argument("--out", required=True, help="run directory to write")
    sp.add_argument("--batch-size", type=int, default=256)
    sp.add_argument("--device", default="auto")
    sp.add_argument("--distance", default="cosine", choices=["cosine", "euclidean"])
    sp.add_argument("--no-thumbs", action="store_true")
    sp.add_argument("--name")
    sp.add_argument("--overwrite", action="store_true")
    sp.add_argument("--quiet", action="store_true")

    sp = add("import", cmd_import, "make a run from embeddings computed elsewhere")
    sp.add_argument("--embeddings", required=True, help="(N, D) .npy")
    sp.add_argument("--labels", required=True, help="CSV with a label column (+ sample_id, ...)")
    sp.add_argument("--logits", help="optional (N, C) .npy")
    sp.add_argument("--classes", help="comma-separated class names for integer labels")
    sp.add_argument(
        "--images",
        metavar="ROOT",
        help="folder the CSV's path/image column is relative to (default: the CSV's folder); "
        "each row's face becomes a thumbnail",
    )
    sp.add_argument("--out", required=True)
    sp.add_argument("--distance", default="cosine", choices=["cosine", "euclidean"])
    sp.add_argument("--name")
    sp.add_argument("--overwrite", action="store_true")

    add_run_commands(add)
    add_study_commands(add)
    add_app_commands(add)
    return p


def _error_line(exc: Exception) -> str:
    """One line naming the culprit. An OSError from the system reads "PATH: reason" (the path the
    user gave, not a temporary file next to it)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        path = exc.filename2 if exc.filename2 is not None else exc.filename
        return f"{path}: {exc.strerror}"
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"ferembed: error: {exc}", file=sys.stderr)
        return 2
    debug = args.debug or os.environ.get("FEREMBED_DEBUG") == "1"
    try:
        return int(args.fn(args) or 0)
    except (FerembedError, ValueError, OSError) as exc:
        # OSError: a missing input, an existing output, a read-only or full disk, a file where a
        # folder is needed; the message names the path.
        if debug:
            raise
        print(f"ferembed: error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ferembed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
