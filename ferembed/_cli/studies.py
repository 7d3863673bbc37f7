"""Commands that train many models: ``zoo`` (every seed method) and ``kfold`` (CK+ folds)."""

from __future__ import annotations

from pathlib import Path

from ferembed._cli.args import (
    DATASET_CHOICES,
    DEVICE_HELP,
    LazyChoices,
    command_line,
    float_above,
    int_at_least,
    kv_pairs,
    percent,
)


def cmd_zoo(args) -> int:
    from ferembed.zoo import shipped_names, train_zoo, write_card

    if args.cards_only:
        methods = args.methods or shipped_names(args.out)
        for m in methods:
            row = write_card(m, args.out, dataset=args.dataset, root=args.root, work=args.work)
            print(f"{m:18s} test acc {percent(row['test_accuracy'])}")
        return 0

    base = kv_pairs(args.set, "--set")
    for key in ("arch", "epochs", "seed", "batch_size", "lr", "max_train_samples", "device"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    rows = train_zoo(
        dataset=args.dataset,
        root=args.root,
        out=args.out,
        methods=args.methods,
        base=base,
        work=args.work,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=command_line(),
    )
    for r in rows:
        print(f"{r['method']:18s} test acc {percent(r['test_accuracy'])}  {r['wall_time_s']} s")
    return 0


def cmd_kfold(args) -> int:
    from ferembed.kfold import train_kfold
    from ferembed.training import TrainConfig, apply_overrides, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    overrides = kv_pairs(args.set, "--set")
    for key in ("dataset", "root", "num_folds", "epochs", "seed", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    overrides["val_split"] = None  # the held-out fold never picks an epoch
    config = apply_overrides(config, overrides)
    record = train_kfold(
        config, out=args.out, folds=args.folds, progress=not args.quiet, command=command_line()
    )
    s = record["summary"]
    acc, mca = s["accuracy"], s["mean_class_accuracy"]
    std = f" +- {percent(acc['std'])}" if acc["std"] is not None else ""
    print(
        f"{record['dataset']} {s['n_folds']}-fold: accuracy {percent(acc['mean'])}{std}, "
        f"mean class accuracy {percent(mca['mean'])}, pooled {percent(s.get('pooled_accuracy'))}"
    )
    print(f"wrote {Path(args.out) / 'kfold.json'}")
    return 0


def _seed_methods():
    from ferembed.zoo import METHODS

    return METHODS


def _architectures():
    from ferembed.models import list_models

    return list_models()


_ZOO = """\
Train every seed method (or --methods) with one backbone, data split, budget and seed, then for
each: copy the best checkpoint to OUT/METHOD.safetensors + OUT/METHOD.json, save the exact
training config as OUT/METHOD.config.json (`ferembed train --config` on it reproduces the
checkpoint), embed and evaluate the test split, and write the model card OUT/METHOD.md and the
index OUT/README.md. Training runs live in --work and resume when interrupted. A method's
checkpoint already in OUT is replaced only with --overwrite, and only once the new one is
trained and its card written."""

_KFOLD = """\
Subject-independent k-fold cross-validation (CK+): for each fold k, train on the other folds,
embed and evaluate the held-out fold, and keep the study in OUT/fold-k/ (the checkpoint and
its test run OUT/fold-k/run-test). OUT/kfold.json holds every fold's scores and their mean,
spread and pooled accuracy. No validation split: the held-out fold never picks an epoch."""


def _training_budget(sp) -> None:
    """The options zoo and kfold share with `ferembed train`."""
    sp.add_argument(
        "--epochs", type=int_at_least(1), metavar="N", help="training epochs per model (>= 1)"
    )
    sp.add_argument(
        "--seed", type=int_at_least(0), metavar="N", help="random seed (>= 0) for every model"
    )
    sp.add_argument("--device", metavar="DEVICE", help=f"where to train: {DEVICE_HELP}")
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any TrainConfig field, repeatable (see docs/training.md)",
    )
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def add_study_commands(add) -> None:
    """Add the ``zoo`` and ``kfold`` subparsers."""
    sp = add(
        "zoo",
        cmd_zoo,
        "train every seed method under one budget, with model cards",
        description=_ZOO,
        epilog="examples:\n  ferembed zoo --dataset synthfer --out checkpoints/synthfer\n"
        "  ferembed zoo --dataset fer2013 --root /data/fer2013 --out ck/fer2013 "
        "--methods softmax center --epochs 4",
    )
    sp.add_argument(
        "--dataset",
        required=True,
        choices=DATASET_CHOICES,
        metavar="NAME",
        help="dataset to train and test on: %(choices)s",
    )
    sp.add_argument("--root", metavar="DIR", help="dataset root (not needed for synthfer)")
    sp.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="checkpoint directory for the checkpoints and cards, e.g. checkpoints/synthfer",
    )
    sp.add_argument(
        "--methods",
        nargs="+",
        choices=LazyChoices(_seed_methods),
        metavar="METHOD",
        help="only these seed methods (default: all): %(choices)s",
    )
    sp.add_argument(
        "--work",
        metavar="DIR",
        help="training work directory (default .cache/zoo/DATASET)",
    )
    sp.add_argument(
        "--arch",
        choices=LazyChoices(_architectures),
        metavar="ARCH",
        help="backbone of every method but affinity_cluster: %(choices)s",
    )
    sp.add_argument(
        "--batch-size", type=int_at_least(2), metavar="N", help="training batch size (>= 2)"
    )
    sp.add_argument("--lr", type=float_above(0), metavar="LR", help="learning rate (> 0)")
    sp.add_argument(
        "--max-train-samples",
        type=int_at_least(2),
        metavar="N",
        help="train on at most N samples (>= 2) of the training split",
    )
    _training_budget(sp)
    sp.add_argument(
        "--cards-only",
        action="store_true",
        help="no training: re-embed, re-evaluate and rewrite the cards of OUT",
    )
    sp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the METHOD.* checkpoints already in OUT (each once its new checkpoint is "
        "trained and its card written)",
    )

    sp = add(
        "kfold",
        cmd_kfold,
        "subject-independent k-fold (CK+): train on k-1 folds, test the held-out one, per fold",
        description=_KFOLD,
        epilog="examples:\n  ferembed kfold --config checkpoints/synthfer/softmax.config.json "
        "--dataset ckplus --root /data/CK+ --out studies/ck-softmax\n"
        "  ferembed kfold --dataset ckplus --root /data/CK+ --folds 0 1 --epochs 2 --out /tmp/ck",
    )
    sp.add_argument(
        "--config",
        metavar="FILE",
        help="JSON or TOML TrainConfig file (e.g. a shipped .config.json)",
    )
    sp.add_argument(
        "--dataset",
        choices=DATASET_CHOICES,
        metavar="NAME",
        help="dataset with subject folds (default: the config's): %(choices)s",
    )
    sp.add_argument("--root", metavar="DIR", help="dataset root")
    sp.add_argument(
        "--num-folds",
        type=int_at_least(2),
        metavar="K",
        help="subject-independent folds (>= 2; default: the config's, else the dataset's)",
    )
    _training_budget(sp)
    sp.add_argument(
        "--folds",
        type=int_at_least(0),
        nargs="+",
        metavar="K",
        help="run only these fold indices, 0 .. num-folds - 1 (default: all)",
    )
    sp.add_argument(
        "--out", required=True, metavar="DIR", help="study directory (fold-k/ and kfold.json)"
    )
