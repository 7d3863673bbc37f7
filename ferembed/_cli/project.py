"""``ferembed project``: compute a run's 2-D / 3-D projection once and cache it in the run."""

from __future__ import annotations

import sys
import time

from ferembed._cli.args import LazyChoices, int_at_least

#: The stages of one run's projection, in order (``ferembed.runs.project_run``'s ``on_stage``).
_STAGES = ("neighbours", "layout", "save")


def _methods():
    from ferembed.projection import METHODS

    return METHODS


def _run_dirs(paths: list[str]) -> list:
    """The run directories named, a folder of runs standing for every run under it."""
    from pathlib import Path

    from ferembed.errors import UsageError
    from ferembed.runs import find_runs, is_run_dir

    out = []
    for text in paths:
        path = Path(text)
        if is_run_dir(path):
            out.append(path)
            continue
        found = find_runs(path) if path.is_dir() else []
        if not found:
            raise UsageError(f"{path}: not a run directory, nor a folder holding runs")
        out += found
    return list(dict.fromkeys(out))


def cmd_project(args) -> int:
    from tqdm import tqdm

    from ferembed.runs import load_run, project_run

    runs = [load_run(p) for p in _run_dirs(args.runs)]
    bar = tqdm(
        total=len(runs) * len(_STAGES),
        unit="step",
        disable=args.quiet,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}]",
    )
    lines = []
    with bar:
        for i, run in enumerate(runs):
            bar.set_description(f"{run.name}: loading")

            def stage(name: str, run=run, i=i) -> None:
                bar.set_description(f"{run.name}: {name}")
                bar.n = i * len(_STAGES) + _STAGES.index(name)
                bar.refresh()

            t0 = time.perf_counter()
            proj = project_run(
                run,
                dim=args.dim,
                method=args.method,
                max_points=args.max_points,
                seed=args.seed,
                on_stage=stage,
            )
            seconds = time.perf_counter() - t0
            bar.n = (i + 1) * len(_STAGES)
            bar.refresh()
            lines.append(_summary(run, proj, seconds, args))
    for line in lines:
        print(line)
    return 0


def _summary(run, proj, seconds: float, args) -> str:
    from ferembed.runs import projection_cache_path

    what = f"{args.method.upper()} {args.dim}-D of {run.name}"
    if proj.sampled:
        points = (
            f"a stratified sample of {proj.n_shown:,} of {proj.n_total:,} points "
            f"(seed {args.seed}, recorded with the projection)"
        )
    else:
        points = f"all {proj.n_total:,} points"
    how = "cached already" if proj.from_cache else f"computed in {seconds:.1f} s"
    path = projection_cache_path(
        run, dim=args.dim, method=args.method, max_points=args.max_points, seed=args.seed
    )
    if not path.is_file():  # save_cached logged why (a read-only runs folder, a full disk)
        return f"{what}: {points}, {how}, NOT cached (could not write {path})"
    return f"{what}: {points}, {how}: {path}"


_PROJECT = """\
Compute the 2-D (or 3-D) UMAP or PCA projection of every point of each RUN and cache it in the
run's cache/ folder (atomically), where the dashboard's Projection page and `ferembed plot` read
it: they then draw at once instead of computing. A run of more than --max-points faces is
projected on a seeded sample stratified by class (classes keep their proportions), and the
sample is recorded with the projection. A projection already cached with the same parameters
is not recomputed (the run's embeddings and samples, and the parameters, are its key)."""


def add_project_command(add) -> None:
    """Add the ``project`` subparser."""
    from ferembed.projection import FULL_MAX_POINTS

    sp = add(
        "project",
        cmd_project,
        "cache the UMAP / PCA projection of every point of runs (for the dashboard)",
        description=_PROJECT,
        epilog="examples:\n  ferembed project runs/softmax\n"
        "  ferembed project runs/ --method pca --dim 3",
    )
    sp.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders of runs")
    sp.add_argument(
        "--method",
        default="umap",
        choices=LazyChoices(_methods),
        metavar="METHOD",
        help="projection method: %(choices)s (default %(default)s; pca is instant)",
    )
    sp.add_argument(
        "--dim",
        type=int,
        default=2,
        choices=(2, 3),
        help="dimensions of the projection: %(choices)s (default %(default)s)",
    )
    sp.add_argument(
        "--max-points",
        type=int_at_least(1),
        default=FULL_MAX_POINTS,
        metavar="N",
        help="project every point of runs up to N faces, a class-stratified seeded sample of "
        "larger ones (>= 1; default %(default)s)",
    )
    sp.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seed of the sample and of UMAP (>= 0; default %(default)s)",
    )
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
