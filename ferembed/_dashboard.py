"""Start the Streamlit dashboard on a runs root (``ferembed dashboard --runs DIR [--port P]``).

The dashboard lives in the repository's ``dashboard/`` folder (``dashboard/app.py``); it only reads
inside the runs root and never imports torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ferembed.errors import FerembedError

#: The dashboard's entry point, beside the ferembed package in a source checkout.
APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def command(runs_root: str | os.PathLike, *, port: int = 8501, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(int(port)),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        # A viewer's toolbar (no "Deploy" button) and no watching of the source tree.
        "--client.toolbarMode",
        "minimal",
        "--server.fileWatcherType",
        "none",
        # Streamlit forces a full gc.collect(2) after every script run; with runs, figures and
        # torch in memory that is most of a cached page switch (bench/bench_dashboard.py).
        # Python's own generational collection still runs.
        "--runner.postScriptGC",
        "false",
        "--",
        "--runs",
        str(Path(runs_root).expanduser().resolve()),
    ]


def check(runs_root: str | os.PathLike, port: int = 8501) -> Path:
    """Validate the arguments; returns the resolved runs root.

    Raises:
        FerembedError: the runs root is not a directory, the port is out of range, or the
            dashboard files are missing (a non-editable install without the repository).
    """
    root = Path(runs_root).expanduser().resolve()
    if not root.is_dir():
        raise FerembedError(f"{runs_root}: the runs root is not a directory")
    if not 1 <= int(port) <= 65535:
        raise FerembedError(f"port must be in 1..65535, got {port}")
    if not APP.is_file():
        raise FerembedError(
            f"{APP}: dashboard not found (run ferembed from a source checkout: pip install -e .)"
        )
    return root


def launch(runs_root: str | os.PathLike, *, port: int = 8501, headless: bool = True) -> int:
    """Serve the dashboard until interrupted; returns Streamlit's exit status.

    Args:
        runs_root: folder of run directories (searched recursively).
        port: localhost port.
        headless: do not open a browser window.

    Raises:
        FerembedError: see :func:`check`.
    """
    root = check(runs_root, port)
    env = dict(os.environ)
    env["FEREMBED_RUNS"] = str(root)
    # Started in the repository, so Streamlit also reads its .streamlit/config.toml.
    proc = subprocess.Popen(
        command(root, port=port, headless=headless), env=env, cwd=APP.parent.parent
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached Streamlit too (same process group): give it time to shut down cleanly.
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130
