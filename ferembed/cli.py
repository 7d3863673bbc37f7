"""The ``ferembed`` command line. Thin: parse, call the library, print.

User errors (bad paths, corrupt images, malformed runs, invalid options, unwritable outputs)
print one line ``ferembed: error: ...`` and exit 2. ``--debug`` (or FEREMBED_DEBUG=1) shows the
traceback.

The commands live in ferembed/_cli/, one module per family: ``data`` (datasets), ``train``,
``embed`` (embed, import), ``runs`` (evaluate, export, compare, index), ``studies`` (zoo, kfold),
``app`` (dashboard, demo); the shared argparse machinery is in ``_cli.args``. This module builds
the parser and turns user errors into one line.
"""

from __future__ import annotations

import argparse
import os
import sys

from ferembed._cli.app import add_app_commands
from ferembed._cli.args import Parser, add_command
from ferembed._cli.data import add_datasets_command
from ferembed._cli.embed import add_embed_commands
from ferembed._cli.plot import add_plot_command
from ferembed._cli.project import add_project_command
from ferembed._cli.runs import add_run_commands
from ferembed._cli.studies import add_study_commands
from ferembed._cli.train import add_train_command
from ferembed._version import __version__
from ferembed.errors import FerembedError, UsageError


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

    add_datasets_command(add)

    add_train_command(add)
    add_embed_commands(add)
    add_run_commands(add)
    add_plot_command(add)
    add_project_command(add)
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
