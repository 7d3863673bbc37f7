"""``ferembed plot``: paper-ready figures of runs, written headlessly (SVG, PDF, PNG)."""

from __future__ import annotations

from ferembed._cli.args import LazyChoices, int_at_least


def cmd_plot(args) -> int:
    from ferembed.export.figures import plot_runs

    paths = plot_runs(
        args.runs,
        out=args.out,
        what=args.what.split(","),
        formats=args.format.split(","),
        evaluate=args.evaluate,
        overwrite=args.overwrite,
        method=args.method,
        max_points=args.max_points,
        seed=args.seed,
        cells=args.cells,
        classifier=args.classifier,
        dpi=args.dpi,
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def _figures():
    from ferembed.export.figures import FIGURES

    return FIGURES


def _formats():
    from ferembed.export.figures import IMAGE_FORMATS

    return IMAGE_FORMATS


def _methods():
    from ferembed.projection import METHODS

    return METHODS


def _cell_modes():
    from ferembed.export.figures import CELL_MODES

    return CELL_MODES


def _classifiers():
    from ferembed.export.figures import CLASSIFIERS

    return CLASSIFIERS


_PLOT = """\
Read each RUN's metrics.json (and, for the projection, its embeddings) and write static figures
for a paper into the folder --out, one file per figure and format (OUT/FIGURE.FORMAT):
  projection  one panel per run (UMAP or PCA, aligned onto the first run), coloured by class
  confusion   row-normalised confusion matrices of the head, kNN and centroid classifiers
  geometry    compactness, separation and Fisher ratio with their bootstrap intervals
  recall      per-class recall of each run's classifier
Every number drawn is read from metrics.json; a run keeps one colour (from its name) in every
figure. Runs without an up-to-date metrics.json are evaluated only with --evaluate. --out is never
inside a run; existing figure files are replaced (atomically) only with --overwrite. The
projection is cached in each run's cache/ folder, as the dashboard's is."""


def add_plot_command(add) -> None:
    """Add the ``plot`` subparser."""
    sp = add(
        "plot",
        cmd_plot,
        "paper-ready figures of runs (SVG, PDF, PNG)",
        description=_PLOT,
        epilog="examples:\n  ferembed plot runs/softmax runs/center --out figures\n"
        "  ferembed plot runs/ --out figures --what confusion,recall --format png --evaluate",
    )
    sp.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders of runs")
    sp.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the folder to write the figures in (created if needed; never inside a run)",
    )
    sp.add_argument(
        "--format",
        default="svg,pdf",
        choices=LazyChoices(_formats, csv=True),
        metavar="FORMAT[,FORMAT...]",
        help="file formats, comma-separated: %(choices)s (default %(default)s)",
    )
    sp.add_argument(
        "--what",
        default="projection,confusion,geometry,recall",
        choices=LazyChoices(_figures, csv=True),
        metavar="FIGURE[,FIGURE...]",
        help="figures to draw, comma-separated: %(choices)s (default: all)",
    )
    sp.add_argument(
        "--method",
        default="umap",
        choices=LazyChoices(_methods),
        metavar="METHOD",
        help="projection method: %(choices)s (default %(default)s; pca is instant)",
    )
    sp.add_argument(
        "--max-points",
        type=int_at_least(1),
        default=5000,
        metavar="N",
        help="project at most N faces per run, a class-stratified sample (>= 1; default "
        "%(default)s)",
    )
    sp.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seed of the projection's sample and of UMAP (>= 0; default %(default)s)",
    )
    sp.add_argument(
        "--cells",
        default="count",
        choices=LazyChoices(_cell_modes),
        metavar="MODE",
        help="what a confusion cell shows: %(choices)s (its count, or its percentage of the "
        "true class; default %(default)s)",
    )
    sp.add_argument(
        "--classifier",
        default="primary",
        choices=LazyChoices(_classifiers),
        metavar="NAME",
        help="whose per-class recall: %(choices)s (primary: the head when the run has logits, "
        "else kNN; default %(default)s)",
    )
    sp.add_argument(
        "--dpi",
        type=int_at_least(10),
        default=200,
        help="resolution of PNG files (>= 10; default %(default)s)",
    )
    sp.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate runs lacking an up-to-date metrics.json (writes it) instead of failing",
    )
    sp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing figure files in --out (atomically)",
    )
