"""Dashboard first-load and page-switch times at 3.5k and 100k samples per run.

    python bench/bench_dashboard.py [--sizes 3500 100000] [--runs 3] [--dim 128] [--browser]
    python bench/bench_dashboard.py --root demo_runs --browser --no-apptest --rounds 3

For each size it writes synthetic runs (tests/dashboard/dashboard_synth.py: SynthFER faces,
clustered embeddings, heads on all but the last run) into a temporary runs root, computes their
metrics with ``ferembed.runs.evaluate_run`` (timed, reported apart: that is ``ferembed
evaluate``'s job, not the dashboard's), then drives the app:

* **AppTest** (in-process, server side): one session visits every page once with cold caches
  ("first load": includes loading runs, UMAP projections, FAISS indexes, the paired comparison,
  exports), then visits every page again ("page switch": caches warm). Times are script runs.
* **Browser** (``--browser``, needs /usr/bin/chromium): ``ferembed._dashboard.launch`` serves the
  same root; headless Chromium clicks through the sidebar and times each click until the app is
  idle and every element has rendered, for a first round and a second round.

``--root DIR`` times the runs already under DIR (e.g. ``ferembed demo``'s ``demo_runs``, which
must have their metrics) instead of synthetic ones; ``--rounds N`` clicks through every page N
times after the first visit, and the table gives the median and the slowest of these cached
switches per page.

Prints a table per size. Numbers depend on the machine and its load (printed with them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "dashboard")]

from ferembed.runs import METRICS_FILE  # noqa: E402 (after the path setup)

PAGES = ("runs", "geometry", "confusion", "projection", "neighbours", "compare", "export")
TITLES = {p: p.capitalize() for p in PAGES}
LOSSES = (("softmax", 0.30, True), ("arcface", 0.18, True), ("supcon", 0.24, False))


def make_root(root: Path, n: int, runs: int, dim: int) -> tuple[float, float]:
    """Write and evaluate the runs; returns (write seconds, evaluate seconds per run)."""
    from dashboard_synth import make_run, make_split

    from ferembed.runs import evaluate_run

    t0 = time.perf_counter()
    split = make_split(n)
    paths = [
        make_run(root / name, split, loss=name, spread=spread, dim=dim, seed=i + 1, logits=head)
        for i, (name, spread, head) in enumerate(LOSSES[:runs])
    ]
    t1 = time.perf_counter()
    for p in paths:
        evaluate_run(p)
    return t1 - t0, (time.perf_counter() - t1) / len(paths)


def bench_apptest(root: Path) -> dict[str, tuple[float, float]]:
    """{page: (first load s, page switch s)} from one AppTest session."""
    from streamlit.testing.v1 import AppTest

    os.environ["FEREMBED_RUNS"] = str(root)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=3600)
    times: dict[str, list[float]] = {p: [] for p in PAGES}

    def visit(page: str, first: bool = False) -> None:
        t = time.perf_counter()
        (at if first else at.switch_page(f"views/{page}.py")).run()
        times[page].append(time.perf_counter() - t)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].message}")

    visit("runs", first=True)  # the app opens on the Runs page
    for page in PAGES[1:] + PAGES:
        visit(page)
    return {p: (v[0], v[1]) for p, v in times.items()}


APP_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelector('[data-testid="stSkeleton"]') === null;
}"""


def bench_browser(root: Path, rounds: int = 1) -> dict[str, list[float]]:
    """{page: [first load s, then one cached switch s per round]} clicking through the sidebar
    in Chromium: a first round visits every page, then ``rounds`` rounds switch again."""
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
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        times: dict[str, list[float]] = {p: [] for p in PAGES}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(url)
            page.wait_for_function(APP_IDLE, timeout=3_600_000)
            times["runs"].append(time.perf_counter() - t)
            for _ in range(1 + rounds):
                for name in PAGES[1:] + PAGES[:1]:
                    t = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"] a', has_text=TITLES[name]).click()
                    page.wait_for_function(
                        f"() => document.querySelector('h1')?.innerText.trim() === "
                        f"{TITLES[name]!r}",
                        timeout=3_600_000,
                    )
                    page.wait_for_function(APP_IDLE, timeout=3_600_000)
                    times[name].append(time.perf_counter() - t)
            browser.close()
        # "runs" was opened by URL first, so its first click (end of the first round) is already
        # a cached switch: it has one more than the other pages.
        return times
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def print_table(title: str, app: dict, web: dict) -> None:
    """The Markdown table of one root: AppTest (first, switch) and browser (first, cached
    switches: median and slowest) per page."""
    load = os.getloadavg()[0]
    print(f"\n## {title} (cpu count {os.cpu_count()}, load avg {load:.1f})")
    cols = []
    if app:
        cols += [
            ("first load (AppTest)", {p: v[0] for p, v in app.items()}),
            ("page switch (AppTest)", {p: v[1] for p, v in app.items()}),
        ]
    if web:
        n = min(len(v) for v in web.values()) - 1
        cols += [
            ("first load (browser)", {p: v[0] for p, v in web.items()}),
            (f"cached switch, median of {n} (browser)", {p: median(v[1:]) for p, v in web.items()}),
            (f"cached switch, slowest of {n} (browser)", {p: max(v[1:]) for p, v in web.items()}),
        ]
    print("| page | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for p in PAGES:
        print(f"| {p} | " + " | ".join(f"{d[p]:.2f} s" for _, d in cols) + " |")
    print(
        "| **max** | "
        + " | ".join("" if "first" in c else f"{max(d.values()):.2f} s" for c, d in cols)
        + " |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3500, 100_000])
    ap.add_argument("--runs", type=int, default=3, choices=(2, 3))
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--browser", action="store_true", help="also time clicks in Chromium")
    ap.add_argument(
        "--rounds", type=int, default=1, help="cached rounds of browser clicks (%(default)s)"
    )
    ap.add_argument(
        "--root",
        type=Path,
        default=None,
        help="time the evaluated runs under ROOT (e.g. demo_runs) instead of synthetic ones",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated runs")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="generate into WORKDIR/N (kept) and reuse runs already there",
    )
    ap.add_argument("--no-apptest", action="store_true", help="only the browser timings")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    if args.root is not None:
        if not args.root.is_dir():
            ap.error(f"--root {args.root}: not a folder")
        app = {} if args.no_apptest else bench_apptest(args.root)
        web = bench_browser(args.root, args.rounds) if args.browser else {}
        print_table(f"runs under {args.root}", app, web)
        return
    for n in args.sizes:
        if args.workdir is not None:
            tmp = args.workdir / str(n)
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(tempfile.mkdtemp(prefix=f"ferembed-bench-{n}-"))
        try:
            if (tmp / LOSSES[0][0] / METRICS_FILE).is_file():
                write_s = eval_s = float("nan")  # reused
            else:
                write_s, eval_s = make_root(tmp, n, args.runs, args.dim)
            app = {} if args.no_apptest else bench_apptest(tmp)
            web = bench_browser(tmp, args.rounds) if args.browser else {}
            print_table(f"{n:,} samples x {args.runs} runs, D={args.dim}", app, web)
            print(f"writing the runs: {write_s:.1f} s; evaluate_run: {eval_s:.1f} s per run")
            if args.keep or args.workdir is not None:
                print(f"runs kept in {tmp}")
        finally:
            if not args.keep and args.workdir is None:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
