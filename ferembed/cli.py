"""The ``ferembed`` command line. Thin: parse, call the library, print.

User errors (bad paths, corrupt images, malformed runs, invalid options) print one line
``ferembed: error: ...`` and exit 2. ``--debug`` (or FEREMBED_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ferembed._version import __version__
from ferembed.errors import FerembedError


def _kv(items: list[str] | None, flag: str) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as JSON when they parse)."""
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise FerembedError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(val)
        except json.JSONDecodeError:
            out[key.strip()] = val
    return out


def _command_line() -> str:
    return "ferembed " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# --------------------------------------------------------------------------------------- commands
def cmd_datasets(args) -> int:
    from ferembed.data import detect_layout, list_datasets, summarize

    if args.root is None:
        for info in list_datasets():
            splits = ", ".join(info.splits)
            print(f"{info.name:12s} splits: {splits}\n{'':12s} layout: {info.layout}\n")
        return 0
    name = args.dataset or detect_layout(args.root)
    if name is None:
        raise FerembedError(
            f"--root {args.root}: cannot tell which dataset layout this is; pass --dataset "
            "(`ferembed datasets` lists the layouts)"
        )
    summary = summarize(name, args.root, **_kv(args.dataset_arg, "--dataset-arg"))
    print(json.dumps(summary, indent=2) if args.json else _format_summary(summary))
    return 0


def _format_summary(summary: dict) -> str:
    """One row per split: the count of each class, the total and the number of subjects."""
    classes = summary["class_names"]
    lines = [f"{summary['dataset']} at {summary['root']}"]
    lines.append(
        "split".ljust(8)
        + "".join(c[:8].rjust(9) for c in classes)
        + "total".rjust(9)
        + "subjects".rjust(10)
    )
    for split, info in summary["splits"].items():
        counts = [info["counts"].get(c, 0) for c in classes]
        lines.append(
            split.ljust(8)
            + "".join(str(v).rjust(9) for v in counts)
            + str(info["n"]).rjust(9)
            + str(info.get("subjects") or "").rjust(10)
        )
    for split, reason in (summary.get("skipped") or {}).items():
        lines.append(f"{split}: skipped ({reason})")
    return "\n".join(lines)


def cmd_train(args) -> int:
    from ferembed.training import TrainConfig, apply_overrides, load_config, train

    config = load_config(args.config) if args.config else TrainConfig()
    overrides = {k: v for k, v in vars(args).items() if k in _TRAIN_FLAGS and v is not None}
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


def cmd_embed(args) -> int:
    from ferembed.runs.embed import embed_checkpoint

    path = embed_checkpoint(
        args.checkpoint,
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
        distance=args.distance,
        name=args.name,
        overwrite=args.overwrite,
        command=_command_line(),
    )
    print(f"wrote {path}")
    return 0


def cmd_evaluate(args) -> int:
    from ferembed.metrics import evaluate_run
    from ferembed.metrics.summary import format_summary

    for run_dir in args.runs:
        kw = {}
        if args.sample_size is not None:
            kw["sample_size"] = args.sample_size
        if args.include:
            kw["include"] = args.include.split(",")
        if args.exclude:
            kw["exclude"] = args.exclude.split(",")
        metrics = evaluate_run(run_dir, reference=args.reference, distance=args.distance, **kw)
        print(format_summary(metrics))
    return 0


def cmd_export(args) -> int:
    from ferembed.export import export

    path = export(args.runs, format=args.format, out=args.out, evaluate=args.evaluate)
    print(f"wrote {path}")
    return 0


def cmd_compare(args) -> int:
    from ferembed.metrics.compare import compare_runs, format_comparison
    from ferembed.runs import load_run

    result = compare_runs(
        load_run(args.run_a), load_run(args.run_b), distance=args.distance, k=args.k
    )
    if args.out:
        from ferembed import _io

        _io.write_json(args.out, result)
    print(format_comparison(result))
    return 0


def cmd_index(args) -> int:
    import time

    from ferembed.index import build_index, index_recall, save_index
    from ferembed.runs import load_run

    run = load_run(args.run)
    distance = args.distance or run.distance
    t0 = time.perf_counter()
    index = build_index(run.embeddings, kind=args.kind, distance=distance)
    built = time.perf_counter() - t0
    path = save_index(index, run.path)
    line = f"wrote {path}: {args.kind} {distance}, N={run.n}, built in {built:.2f} s"
    if args.kind != "flat":
        k = min(10, run.n - 1)
        line += f", recall@{k} vs exact {index_recall(index, run.embeddings, k=k):.4f}"
    print(line)
    return 0


def cmd_zoo(args) -> int:
    from ferembed.zoo import METHODS, train_zoo, write_card

    if args.cards_only:
        methods = args.methods or [m for m in METHODS if (Path(args.out) / f"{m}.json").exists()]
        for m in methods:
            row = write_card(m, args.out, dataset=args.dataset, root=args.root, work=args.work)
            print(f"{m:18s} test acc {_pct(row['test_accuracy'])}")
        return 0

    base = _kv(args.set, "--set")
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
        progress=not args.quiet,
        command=_command_line(),
    )
    for r in rows:
        print(f"{r['method']:18s} test acc {_pct(r['test_accuracy'])}  {r['wall_time_s']} s")
    return 0


def cmd_kfold(args) -> int:
    from ferembed.kfold import train_kfold
    from ferembed.training import TrainConfig, apply_overrides, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    overrides = _kv(args.set, "--set")
    for key in ("dataset", "root", "num_folds", "epochs", "seed", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    overrides["val_split"] = None  # the held-out fold never picks an epoch
    config = apply_overrides(config, overrides)
    record = train_kfold(
        config, out=args.out, folds=args.folds, progress=not args.quiet, command=_command_line()
    )
    s = record["summary"]
    acc, mca = s["accuracy"], s["mean_class_accuracy"]
    std = f" +- {_pct(acc['std'])}" if acc["std"] is not None else ""
    print(
        f"{record['dataset']} {s['n_folds']}-fold: accuracy {_pct(acc['mean'])}{std}, "
        f"mean class accuracy {_pct(mca['mean'])}, pooled {_pct(s.get('pooled_accuracy'))}"
    )
    print(f"wrote {Path(args.out) / 'kfold.json'}")
    return 0


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def cmd_dashboard(args) -> int:
    from ferembed._dashboard import launch

    root = Path(args.runs)
    if not root.is_dir():
        raise FerembedError(f"--runs {root}: not a directory")
    return launch(root, port=args.port)


def cmd_demo(args) -> int:
    from ferembed.demo import run_demo

    return run_demo(
        runs=Path(args.runs),
        fer2013=args.fer2013,
        dashboard=not args.no_dashboard,
        port=args.port,
        checkpoints=Path(args.checkpoints),
    )


def cmd_leakage(args) -> int:
    from ferembed.runs.leakage import check_leakage

    opts = {key: getattr(args, key) for key in ("max_hamming", "max_distance", "out", "overwrite")}
    print(check_leakage(args.run_a, args.run_b, **opts).format())
    return 0


# ----------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ferembed", description="Metric-learning workbench for facial expression recognition."
    )
    p.add_argument("--version", action="version", version=f"ferembed {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    def dataset_args(sp, split_default="test"):
        sp.add_argument("--dataset", required=True, help="dataset name (see `ferembed datasets`)")
        sp.add_argument("--root", help="dataset root (not needed for synthfer)")
        sp.add_argument("--split", default=split_default)
        sp.add_argument("--fold", type=int, help="fold index for k-fold datasets (CK+)")
        sp.add_argument("--num-folds", type=int, default=10)
        sp.add_argument(
            "--dataset-arg",
            action="append",
            metavar="KEY=VALUE",
            help="extra dataset option, e.g. classes=6",
        )

    sp = add("datasets", cmd_datasets, "list supported datasets, or count a root's splits")
    sp.add_argument("--root", help="count the classes per split of this dataset root")
    sp.add_argument("--dataset", help="dataset name (guessed from the layout when omitted)")
    sp.add_argument("--dataset-arg", action="append", metavar="KEY=VALUE")
    sp.add_argument("--json", action="store_true")

    sp = add("train", cmd_train, "train a model with a loss (flags override --config)")
    sp.add_argument("--config", help="JSON or TOML TrainConfig file")
    sp.add_argument("--dataset")
    sp.add_argument("--root")
    sp.add_argument("--split")
    sp.add_argument("--val-split", dest="val_split")
    sp.add_argument("--fold", type=int)
    sp.add_argument("--num-folds", type=int)
    sp.add_argument("--dataset-arg", action="append", metavar="KEY=VALUE")
    sp.add_argument("--arch")
    sp.add_argument("--embedding-dim", type=int)
    sp.add_argument("--loss")
    sp.add_argument("--loss-param", action="append", metavar="KEY=VALUE")
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--optimizer")
    sp.add_argument("--sampler")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device")
    sp.add_argument("--out")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="any TrainConfig field")
    sp.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    sp.add_argument("--overwrite", action="store_true", help="start afresh in a used OUT")
    sp.add_argument("--quiet", action="store_true")

    sp = add("embed", cmd_embed, "embed a dataset split with a checkpoint into a run directory")
    sp.add_argument("--checkpoint", required=True)
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
    sp.add_argument("--out", required=True)
    sp.add_argument("--distance", default="cosine", choices=["cosine", "euclidean"])
    sp.add_argument("--name")
    sp.add_argument("--overwrite", action="store_true")

    sp = add("evaluate", cmd_evaluate, "compute every metric of a run into RUN/metrics.json")
    sp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    sp.add_argument("--reference", help="search queries against this run (e.g. train)")
    sp.add_argument("--distance", choices=["cosine", "euclidean"])
    sp.add_argument("--include", help="comma-separated metric groups")
    sp.add_argument("--exclude", help="comma-separated metric groups")
    sp.add_argument("--sample-size", type=int, help="query sample size for sampled retrieval")

    sp = add("export", cmd_export, "export the metrics of many runs for papers and CI")
    sp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    sp.add_argument(
        "--format", required=True, choices=["json", "csv", "parquet", "markdown", "html"]
    )
    sp.add_argument("--out", required=True)
    sp.add_argument("--evaluate", action="store_true", help="evaluate runs lacking metrics.json")

    sp = add("compare", cmd_compare, "paired comparison of two runs on the same samples")
    sp.add_argument("run_a")
    sp.add_argument("run_b")
    sp.add_argument("--distance", choices=["cosine", "euclidean"])
    sp.add_argument("-k", type=int, default=10)
    sp.add_argument("--out", help="write the full comparison as JSON")

    sp = add("index", cmd_index, "build a FAISS index next to a run")
    sp.add_argument("run")
    sp.add_argument("--kind", default="flat", choices=["flat", "ivf", "hnsw"])
    sp.add_argument("--distance", choices=["cosine", "euclidean"])

    sp = add("zoo", cmd_zoo, "train every seed method under one budget, with model cards")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--root")
    sp.add_argument("--out", required=True, help="checkpoint directory, e.g. checkpoints/synthfer")
    sp.add_argument("--methods", nargs="+", help="subset of the seed methods (default: all)")
    sp.add_argument("--work", help="training work directory (default .cache/zoo/DATASET)")
    sp.add_argument("--arch")
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--seed", type=int)
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--max-train-samples", type=int)
    sp.add_argument("--device")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="any TrainConfig field")
    sp.add_argument(
        "--cards-only",
        action="store_true",
        help="no training: re-embed, re-evaluate and rewrite the cards of OUT",
    )
    sp.add_argument("--quiet", action="store_true")

    sp = add(
        "kfold",
        cmd_kfold,
        "subject-independent k-fold (CK+): train on k-1 folds, test the held-out one, per fold",
    )
    sp.add_argument("--config", help="JSON or TOML TrainConfig file (e.g. a shipped .config.json)")
    sp.add_argument("--dataset")
    sp.add_argument("--root")
    sp.add_argument("--num-folds", type=int)
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="any TrainConfig field")
    sp.add_argument("--folds", type=int, nargs="+", help="run only these folds (default: all)")
    sp.add_argument("--out", required=True, help="study directory (fold-k/ and kfold.json)")
    sp.add_argument("--quiet", action="store_true")

    sp = add("dashboard", cmd_dashboard, "open the dashboard on localhost")
    sp.add_argument("--runs", required=True, help="runs root (the app reads only inside it)")
    sp.add_argument("--port", type=int, default=8501)

    sp = add("demo", cmd_demo, "the embedded default end to end: SynthFER -> runs -> dashboard")
    sp.add_argument("--runs", default="demo_runs", help="where to write the runs")
    sp.add_argument(
        "--checkpoints", default=str(Path(__file__).resolve().parents[1] / "checkpoints")
    )
    sp.add_argument("--fer2013", help="use this FER2013 root and the FER2013 checkpoints")
    sp.add_argument("--no-dashboard", action="store_true", help="stop after writing the runs")
    sp.add_argument("--port", type=int, default=8501)

    sp = add("leakage", cmd_leakage, "near-duplicate faces between two runs (e.g. test vs train)")
    sp.add_argument("run_a", help="run whose samples are checked (e.g. test)")
    sp.add_argument("run_b", help="run searched for their near-duplicates (e.g. train)")
    sp.add_argument("--out", help="write every pair as CSV (both ids, paths and distances)")
    sp.add_argument("--max-hamming", type=int, help="pHash radius in bits, 0-64 (default: 6)")
    sp.add_argument("--max-distance", type=float, help="also require embedding distance <= this")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("FEREMBED_DEBUG") == "1"
    try:
        return int(args.fn(args) or 0)
    except (FerembedError, ValueError, FileNotFoundError, FileExistsError) as exc:
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"ferembed: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ferembed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
