"""Commands that read run directories: ``evaluate``, ``export``, ``compare``, ``index``."""

from __future__ import annotations

from ferembed._cli._ray_args import add_ray_evaluate_options
from ferembed._cli.args import DISTANCE_CHOICES, LazyChoices, float_above, int_at_least


def _engine(args):
    """The kNN engine asked for on the command line, checked before any work (a one-line error
    when it cannot run here, e.g. ``--device cuda`` without a GPU)."""
    from ferembed._search import resolve_engine

    return resolve_engine(args.device, args.knn_backend)


def cmd_evaluate(args) -> int:
    from ferembed.metrics.summary import format_summary
    from ferembed.runs import evaluate_run

    _engine(args)
    for run_dir in args.runs:
        # Passed only when chosen, so that a default request stays what it was.
        kw = {
            key: value
            for key, value in (("device", args.device), ("knn_backend", args.knn_backend))
            if value != "auto"
        }
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

    path = export(
        args.runs,
        format=args.format,
        out=args.out,
        evaluate=args.evaluate,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


def cmd_compare(args) -> int:
    from ferembed._search import search_engine

    _engine(args)
    with search_engine(args.device, args.knn_backend):  # both runs' kNN searches
        return _compare(args)


def _compare(args) -> int:
    from ferembed.runs import compare_runs, format_comparison, load_run

    if args.out:  # refused before the (long) comparison, never after it
        from ferembed.runs._outputs import check_output

        inputs = [("RUN_A", args.run_a), *(("RUN_B", b) for b in args.run_b)]
        check_output(args.out, inputs=inputs, overwrite=args.overwrite)
    if len(args.run_b) > 1:
        from ferembed.runs.compare import compare_many, format_comparisons

        runs_b = [load_run(path) for path in args.run_b]
        result = compare_many(load_run(args.run_a), runs_b, distance=args.distance, k=args.k)
        text = format_comparisons(result)
    else:
        result = compare_runs(
            load_run(args.run_a), load_run(args.run_b[0]), distance=args.distance, k=args.k
        )
        text = format_comparison(result)
    if args.out:
        from ferembed import _io

        _io.write_json(args.out, result)
    print(text)
    return 0


def cmd_index(args) -> int:
    from ferembed.index import build_index, record_recall, save_index
    from ferembed.runs import load_run

    engine = _engine(args)
    run = load_run(args.run)
    distance = args.distance or run.distance
    gpu = {"auto": None, "cpu": False, "cuda": True}[args.device]
    if gpu and engine.backend != "faiss":
        from ferembed.errors import ConfigError

        raise ConfigError("--device cuda for an index needs faiss-gpu (pip install -e .[gpu])")
    index = build_index(run.embeddings, kind=args.kind, distance=distance, gpu=gpu)
    recall = record_recall(index, run.embeddings, device=args.device, backend=args.knn_backend)
    path = save_index(index, run.path)
    spec = index.spec
    k = next(iter(spec.recall))
    exact = spec.recall_exact
    print(
        f"wrote {path}: {args.kind} {distance}, N={run.n}, built in {spec.build_seconds:.2f} s "
        f"on the {spec.device}; measured on {spec.recall_queries} queries against the exact "
        f"search ({exact['backend']}/{exact['device']}): {k} vs exact {recall:.4f}"
    )
    return 0


def _metric_groups():
    from ferembed.metrics.evaluate import GROUPS

    return GROUPS


def _export_formats():
    from ferembed.export import FORMATS

    return FORMATS


def _index_kinds():
    from ferembed.index import KINDS

    return KINDS


_GROUP_CHOICES = LazyChoices(_metric_groups, csv=True)

_EVALUATE = """\
Read each RUN_DIR (run.json, the embeddings, the samples and, when present, the logits and the
classifier head), compute every metric group (retrieval, kNN/head/centroid classification,
neighbours, k-means clustering, geometry, silhouette, neural collapse) with bootstrap intervals,
write RUN_DIR/metrics.json and RUN_DIR/per_sample.parquet (atomically), and print a summary.
Without --reference each face is searched against the rest of its own run (leave one out)."""

_EXPORT = """\
Read the metrics.json of each RUN_DIR (a folder that is not a run stands for the runs under it)
and write one file comparing them: a JSON document, a long CSV or Parquet table, a Markdown
summary, or a self-contained HTML report with figures that opens offline. --out is never
inside a run directory; an existing file is replaced (atomically) only with --overwrite."""

_COMPARE = """\
Pair two runs by sample_id (the same faces embedded by two models) and print a paired
comparison: correctness from each run's classifier head when both have logits (else a
leave-one-out kNN vote), a McNemar test, paired bootstrap intervals of B - A for accuracy,
per-class recall and F1 and geometry, the overlap of the two runs' kNN sets, and the faces whose
prediction flipped. With several RUN_B, each is compared with the baseline RUN_A and a table
prints the accuracy differences with the raw and the Holm-adjusted McNemar p-values. Reads the
runs; writes only the --out JSON (never inside a run; an existing file only with --overwrite)."""

_INDEX = """\
Read RUN's embeddings, build a FAISS index and save it in RUN/index/ (the .faiss file and a .json
that describes it). Its recall@10 against the exact search is measured on 1000 random queries
(flat indexes too: 1.0 measured, not assumed) and stored in the .json with the build time and
the device; the dashboard's neighbour search then uses the saved index."""


def add_run_commands(add) -> None:
    """Add the ``evaluate``, ``export``, ``compare``, ``index`` and ``leakage`` subparsers."""
    sp = add(
        "evaluate",
        cmd_evaluate,
        "compute every metric of a run into RUN/metrics.json",
        description=_EVALUATE,
        epilog="examples:\n  ferembed evaluate runs/softmax runs/center\n"
        "  ferembed evaluate runs/test --reference runs/train --include retrieval,geometry",
    )
    sp.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories to evaluate")
    sp.add_argument(
        "--reference",
        metavar="RUN_DIR",
        help="search each query against this run (e.g. the training split) instead of "
        "leave-one-out within the run",
    )
    sp.add_argument(
        "--distance",
        choices=DISTANCE_CHOICES,
        metavar="DISTANCE",
        help="%(choices)s: distance for the neighbour search and geometry (default: the run's)",
    )
    _engine_options(sp)
    sp.add_argument(
        "--include",
        choices=_GROUP_CHOICES,
        metavar="GROUP[,GROUP...]",
        help="compute only these metric groups, comma-separated: %(choices)s",
    )
    sp.add_argument(
        "--exclude",
        choices=_GROUP_CHOICES,
        metavar="GROUP[,GROUP...]",
        help="skip these metric groups, comma-separated: %(choices)s",
    )
    sp.add_argument(
        "--sample-size",
        type=int_at_least(1),
        metavar="N",
        help="number of queries (class-stratified) for sampled retrieval on large runs "
        "(default: all queries up to a size limit)",
    )
    add_ray_evaluate_options(sp)

    sp = add(
        "export",
        cmd_export,
        "export the metrics of many runs for papers and CI",
        description=_EXPORT,
        epilog="examples:\n  ferembed export runs/ --format markdown --out results.md\n"
        "  ferembed export runs/softmax runs/center --format html --out report.html --evaluate",
    )
    sp.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run directories, or folders of runs"
    )
    sp.add_argument(
        "--format",
        required=True,
        choices=LazyChoices(_export_formats),
        metavar="FORMAT",
        help="output format: %(choices)s",
    )
    sp.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the file to write (never inside a run directory)",
    )
    _overwrite_option(sp)
    sp.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate runs lacking metrics.json (writes it) instead of failing",
    )

    sp = add(
        "compare",
        cmd_compare,
        "paired comparison of two runs on the same samples",
        description=_COMPARE,
        epilog="examples:\n  ferembed compare runs/softmax runs/center -k 10 --out cmp.json"
        "\n  ferembed compare runs/softmax runs/center runs/island runs/arcface",
    )
    sp.add_argument("run_a", metavar="RUN_A", help="first run directory (the reference)")
    sp.add_argument(
        "run_b",
        metavar="RUN_B",
        nargs="+",
        help="one or more run directories on the same samples, each compared with RUN_A "
        "(several: Holm-adjusted p-values)",
    )
    sp.add_argument(
        "--distance",
        choices=DISTANCE_CHOICES,
        metavar="DISTANCE",
        help="%(choices)s: distance for both runs' neighbour search and geometry "
        "(default: each run's own)",
    )
    sp.add_argument(
        "-k",
        type=int_at_least(1),
        default=10,
        help="neighbours for the kNN vote and the kNN-set overlap (>= 1; default %(default)s)",
    )
    _engine_options(sp)
    sp.add_argument(
        "--out",
        metavar="FILE",
        help="also write the full comparison as JSON (never inside a run directory)",
    )
    _overwrite_option(sp)

    sp = add(
        "index",
        cmd_index,
        "build a FAISS index next to a run",
        description=_INDEX,
        epilog="examples:\n  ferembed index runs/softmax\n  ferembed index runs/big --kind hnsw",
    )
    sp.add_argument("run", metavar="RUN_DIR", help="the run whose embeddings to index")
    sp.add_argument(
        "--kind",
        default="flat",
        choices=LazyChoices(_index_kinds),
        metavar="KIND",
        help="index type, flat (exact) or approximate: %(choices)s (default %(default)s)",
    )
    sp.add_argument(
        "--distance",
        choices=DISTANCE_CHOICES,
        metavar="DISTANCE",
        help="%(choices)s: the index metric (default: the run's own distance)",
    )
    _engine_options(sp, what="the index and the exact search that measures its recall")
    _add_leakage_command(add)


def cmd_leakage(args) -> int:
    from ferembed.runs.leakage import check_leakage

    opts = {key: getattr(args, key) for key in ("max_hamming", "max_distance", "out", "overwrite")}
    print(check_leakage(args.run_a, args.run_b, **opts).format())
    return 0


def _add_leakage_command(add) -> None:
    sp = add(
        "leakage",
        cmd_leakage,
        "near-duplicate faces between two runs (e.g. test vs train)",
        description="Find near-duplicate faces between two runs: a 64-bit perceptual hash (pHash) "
        "of each\nthumbnail, every pair within --max-hamming bits, with its pixel and embedding "
        "distances\n(docs/leakage.md). Prints how many of RUN_A's faces have a copy in RUN_B, "
        "per class, and\nthe head accuracy with and without them; --out writes every pair as "
        "CSV.",
        epilog="examples:\n  ferembed leakage runs/fer2013-test runs/fer2013-train --out pairs.csv",
    )
    sp.add_argument("run_a", help="run whose samples are checked (e.g. test)")
    sp.add_argument("run_b", help="run searched for their near-duplicates (e.g. train)")
    sp.add_argument(
        "--out",
        help="write every pair as CSV (both ids, paths and distances; never inside a run)",
    )
    sp.add_argument(
        "--max-hamming", type=int_at_least(0), help="pHash radius in bits, 0-64 (default: 6)"
    )
    sp.add_argument(
        "--max-distance",
        type=float_above(0),
        help="also require embedding distance <= this (default: no limit)",
    )
    _overwrite_option(sp)


def _engine_options(sp, what: str = "the exact kNN search") -> None:
    """``--device`` and ``--knn-backend``: where and how the kNN search runs."""
    from ferembed._search_engine import BACKENDS, DEVICES

    sp.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help=f"where {what} runs: %(choices)s (default %(default)s: a GPU when faiss-gpu or "
        "CUDA torch can use one, else the CPU)",
    )
    sp.add_argument(
        "--knn-backend",
        default="auto",
        choices=("auto", *BACKENDS),
        help="kNN search backend, all exact with identical results: %(choices)s (default "
        "%(default)s: the fastest available)",
    )


def _overwrite_option(sp) -> None:
    sp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file (atomically: the old one stays until the new is "
        "complete)",
    )
