"""Projection at scale (issue #15): compute, load and draw every point of a run.

    ferembed import --embeddings emb.npy --labels labels.csv --out ROOT/big   # e.g. 100k x 128
    python bench/bench_projection.py ROOT/big [--method umap] [--rounds 3] [--no-compute]

1. **first computation**: ``ferembed.runs.project_run`` with ``ferembed project``'s default (every
   point up to 200k), its cache entry removed first (skipped with ``--no-compute``: then the
   entry must exist, e.g. written by ``ferembed project``);
2. **cached load**: the same call again, in a fresh process (reading ``cache/``);
3. **browser** (/usr/bin/chromium): the dashboard serves the run's folder; the Projection page is
   opened and timed until the app is idle and the chart holds every point (first draw), then
   ``--rounds`` times Runs -> Projection (a cached page switch).

Prints the times with the machine's load. Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_dashboard import APP_IDLE  # noqa: E402 (after the path setup)

#: Points the chart drew (``_fullData``: ``data`` keeps the base64 arrays Streamlit sent).
POINTS_JS = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el._fullData) return 0;
  return el._fullData.reduce((n, t) => n + (t._length || 0), 0);
}"""
#: Give up waiting after this long (ms).
TIMEOUT_MS = 900_000

_TIMED = """
import sys, time
from ferembed.runs import load_run, project_run
run = load_run(sys.argv[1])
t = time.perf_counter()
p = project_run(run, method=sys.argv[2], max_points=200_000)
print(time.perf_counter() - t, p.n_shown, p.from_cache)
"""


def timed_projection(run: Path, method: str) -> tuple[float, int, bool]:
    """(seconds, points, read from the cache) of one ``project_run`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _TIMED, str(run), method],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), out[2] == "True"


def browser_times(root: Path, points: int, rounds: int) -> list[float]:
    """[first draw s, then one Runs -> Projection switch s per round]."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"from ferembed._dashboard import launch; launch({str(root)!r}, port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    url = f"http://127.0.0.1:{port}"
    drawn = f"() => ({POINTS_JS})() === {points}"
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function(APP_IDLE, timeout=TIMEOUT_MS)
            times = []
            for i in range(1 + rounds):
                if i:
                    page.locator('[data-testid="stSidebarNav"] a', has_text="Runs").click()
                    page.wait_for_function(APP_IDLE, timeout=TIMEOUT_MS)
                t = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text="Projection").click()
                page.wait_for_function(drawn, timeout=TIMEOUT_MS)
                page.wait_for_function(APP_IDLE, timeout=TIMEOUT_MS)
                times.append(time.perf_counter() - t)
            browser.close()
        return times
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the run directory (its folder is served)")
    ap.add_argument("--method", default="umap", choices=("umap", "pca"))
    ap.add_argument("--rounds", type=int, default=3, help="cached switches (%(default)s)")
    ap.add_argument("--no-compute", action="store_true", help="keep the cached projection")
    ap.add_argument("--no-browser", action="store_true", help="skip the browser timings")
    args = ap.parse_args()
    from ferembed.runs import load_run, projection_cache_path

    run = load_run(args.run)
    print(f"run {run.name}: {run.n:,} x {run.dim}; cpu count {os.cpu_count()}")
    entry = projection_cache_path(run, method=args.method, max_points=200_000)
    if not args.no_compute:
        entry.unlink(missing_ok=True)
        s, n, hit = timed_projection(args.run, args.method)
        print(f"first computation ({args.method}, {n:,} points): {s:.1f} s (cache hit: {hit})")
    s, n, hit = timed_projection(args.run, args.method)
    size = entry.stat().st_size / 1e6
    print(f"cached load: {s:.2f} s ({n:,} points, {size:.1f} MB entry; cache hit: {hit})")
    if not args.no_browser:
        times = browser_times(args.run.parent, n, args.rounds)
        print(
            f"browser, Projection page: first draw {times[0]:.2f} s; cached switch median "
            f"{median(times[1:]):.2f} s, slowest {max(times[1:]):.2f} s (of {args.rounds})"
        )
    print(f"load avg {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
