"""Commands that end in the dashboard: ``dashboard`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

from ferembed._cli.args import port_number
from ferembed.errors import FerembedError


def cmd_dashboard(args) -> int:
    from ferembed._dashboard import launch

    root = Path(args.runs)
    if not root.is_dir():
        raise FerembedError(f"--runs {root}: not a directory")
    return launch(root, port=args.port)


def cmd_demo(args) -> int:
    from ferembed.demo import run_demo
    from ferembed.runs._outputs import check_output

    inputs = [("--checkpoints", args.checkpoints), ("--fer2013", args.fer2013)]
    check_output(args.runs, flag="--runs", inputs=inputs, kind="dir")
    return run_demo(
        runs=Path(args.runs),
        fer2013=args.fer2013,
        dashboard=not args.no_dashboard,
        port=args.port,
        checkpoints=Path(args.checkpoints),
    )


_SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints"

_DASHBOARD = """\
Serve the Streamlit dashboard on http://127.0.0.1:PORT (this machine only) over the run
directories found under --runs. It reads the runs and their metrics, and writes only inside the
runs root (its caches in each run's cache/ folder)."""

_DEMO = """\
The embedded default end to end: embed the SynthFER test faces (or a FER2013 root) with the
shipped checkpoint of every seed method, evaluate each run, write the runs under --runs and open
the dashboard on them. Runs already there with the same checkpoint are reused, so a second demo
starts the dashboard at once."""


def add_app_commands(add) -> None:
    """Add the ``dashboard`` and ``demo`` subparsers."""
    sp = add(
        "dashboard",
        cmd_dashboard,
        "open the dashboard on localhost",
        description=_DASHBOARD,
        epilog="example:\n  ferembed dashboard --runs demo_runs --port 8502",
    )
    sp.add_argument(
        "--runs", required=True, metavar="DIR", help="runs root (the app reads only inside it)"
    )
    sp.add_argument(
        "--port",
        type=port_number,
        default=8501,
        help="localhost port, 1..65535 (default %(default)s)",
    )

    sp = add(
        "demo",
        cmd_demo,
        "the embedded default end to end: SynthFER -> runs -> dashboard",
        description=_DEMO,
        epilog="examples:\n  ferembed demo\n"
        "  ferembed demo --fer2013 /data/fer2013 --runs fer_runs --no-dashboard",
    )
    sp.add_argument(
        "--runs", default="demo_runs", metavar="DIR", help="where to write the runs (%(default)s)"
    )
    sp.add_argument(
        "--checkpoints",
        default=str(_SHIPPED),
        metavar="DIR",
        help="folder of shipped checkpoints, with synthfer/ and fer2013/ inside "
        "(default: the repository's checkpoints/)",
    )
    sp.add_argument(
        "--fer2013", metavar="DIR", help="use this FER2013 root and the FER2013 checkpoints"
    )
    sp.add_argument("--no-dashboard", action="store_true", help="stop after writing the runs")
    sp.add_argument(
        "--port",
        type=port_number,
        default=8501,
        help="dashboard port, 1..65535 (default %(default)s)",
    )
