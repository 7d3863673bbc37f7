"""Benchmark ``ferembed.metrics.evaluate`` against pytorch-metric-learning and scikit-learn.

For each size N, synthetic imbalanced Gaussian blobs are written once to a temporary ``.npy``
file; then each contender runs in its own subprocess (honest peak RSS from ``ru_maxrss``):

* ``ferembed``: ``evaluate`` with every group, cosine distance, default options. Per-group time
  comes from ``metrics["timings_s"]``; per-group peak RSS from a thread sampling
  ``/proc/self/statm`` while that group runs (the whole process: embeddings included).
* ``pml``: ``AccuracyCalculator`` (precision_at_1, r_precision, mean_average_precision_at_r, NMI,
  AMI; ``k="max_bin_count"``, the fewest neighbours that keep R-precision and MAP@R exact -- the
  default ``k=None`` searches all N - 1 and was OOM-killed at 20k on this busy machine) on the
  L2-normalised embeddings. OOM-killed at 100k on this 24 GB machine, so it runs on at most
  ``--ref-rows`` rows (20k).
* ``sklearn``: ``davies_bouldin_score`` and ``calinski_harabasz_score`` (on L2-normalised rows,
  as ferembed does for cosine) at every N, and ``silhouette_score(metric="cosine")`` (O(N^2):
  186 s at 100k here) on at most ``--ref-rows`` rows.

Where N is larger than ``--ref-rows``, the references that cannot run at N run in the same
command on the first ``--ref-rows`` rows of the same data (the labels are a random permutation,
so that is a random subsample), with ferembed run again on those rows beside them; the second
table and the agreement table compare the three at that size.

Usage::

    python bench/bench_metrics.py --sizes 1000000 --dim 512   # 1M x 512, references at 20k
    python bench/bench_metrics.py --sizes 20000 --out results.json

Prints a markdown table (time and peak memory per metric group, side by side with the
references), the total time and peak RSS of each process, and an agreement table (ferembed vs
PML / scikit-learn values where both ran on the same rows).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# 7 FER2013-like classes up to 100k, 8 AffectNet-like (imbalanced) classes at 1M.
FER_SHARES = np.array([0.25, 0.02, 0.14, 0.25, 0.17, 0.11, 0.06])
AFFECTNET_SHARES = np.array([0.26, 0.47, 0.088, 0.049, 0.022, 0.013, 0.087, 0.011])
GROUP_ROWS = [
    ("retrieval", "knn/retrieval (+ kNN search)"),
    ("classification", "classification"),
    ("neighbors", "neighbors"),
    ("clustering", "clustering"),
    ("geometry", "geometry"),
    ("silhouette", "silhouette"),
    ("collapse", "collapse"),
    ("total", "total"),
]


# ------------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class RssSampler:
    """Samples this process's RSS every few ms; ``peak(t0, t1)`` = max over a time window."""

    def __init__(self, interval: float = 0.01) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), rss_mb()))
            time.sleep(interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, t0: float, t1: float) -> float:
        inside = [m for t, m in self.samples if t0 <= t <= t1]
        return max(inside) if inside else rss_mb()


@contextmanager
def window(windows: dict, name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        windows[name] = (t0, time.perf_counter())


# ------------------------------------------------------------------------------------ data


def make_data(path: Path, n: int, dim: int, seed: int = 0) -> None:
    """Imbalanced Gaussian blobs (means N(0, 0.3^2), unit noise), written in chunks."""
    shares = AFFECTNET_SHARES if n >= 1_000_000 else FER_SHARES
    rng = np.random.default_rng(seed)
    counts = np.floor(shares / shares.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    means = rng.normal(0.0, 0.3, size=(len(counts), dim)).astype(np.float32)
    x = np.lib.format.open_memmap(path / "x.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for s in range(0, n, 100_000):
        e = min(s + 100_000, n)
        x[s:e] = means[y[s:e]] + rng.standard_normal((e - s, dim), dtype=np.float32)
    x.flush()
    del x
    np.save(path / "y.npy", y.astype(np.int64))


def load_data(path: Path, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The memory-mapped embeddings and the labels; the first ``rows`` rows when given."""
    x, y = np.load(path / "x.npy", mmap_mode="r"), np.load(path / "y.npy")
    return (x, y) if rows is None else (x[:rows], y[:rows])


# ---------------------------------------------------------------------------------- children


def child_ferembed(path: Path, rows: int | None = None) -> dict:
    # the module, not the function that ferembed.metrics re-exports under the same name
    ev = importlib.import_module("ferembed.metrics.evaluate")

    x, y = load_data(path, rows)
    windows: dict[str, tuple[float, float]] = {}
    original = ev._Recorder.timed

    @contextmanager
    def timed(self, group):  # record each group's time window for the RSS sampler
        with original(self, group), window(windows, group + f"#{len(windows)}"):
            yield

    ev._Recorder.timed = timed
    sampler = RssSampler()
    t0 = time.perf_counter()
    m = ev.evaluate(x, y, class_names=[f"c{i}" for i in range(int(y.max()) + 1)])
    t1 = time.perf_counter()
    sampler.stop()
    peaks: dict[str, float] = {}
    for key, (a, b) in windows.items():
        group = key.split("#")[0]
        peaks[group] = max(peaks.get(group, 0.0), sampler.peak(a, b))
    peaks["total"] = max_rss_mb()
    return {
        "times": m["timings_s"] | {"total": round(t1 - t0, 3)},
        "peak_mb": peaks,
        "values": {k: m[k] for k in ("precision_at_1", "r_precision", "map_at_r", "nmi", "ami",
                                      "silhouette", "davies_bouldin", "calinski_harabasz")},
        "modes": m["modes"],
    }  # fmt: skip


def child_pml(path: Path, rows: int | None = None) -> dict:
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    from ferembed.metrics._validation import l2_normalize

    x, y = load_data(path, rows)
    xn = l2_normalize(np.asarray(x))
    # k="max_bin_count": the fewest neighbours that keep R-precision and MAP@R exact. PML's
    # default (k=None: all N - 1) needs several N x N arrays and was OOM-killed at 20k here.
    calc = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r", "NMI", "AMI"),
        k="max_bin_count",
        device=torch.device("cpu"),
    )
    t0 = time.perf_counter()
    r = calc.get_accuracy(xn, y)
    t1 = time.perf_counter()
    return {"times": {"pml": round(t1 - t0, 3)}, "peak_mb": {"pml": max_rss_mb()}, "values": r}


def child_sklearn(path: Path, rows: int | None = None, silhouette: bool = True) -> dict:
    from sklearn import metrics as skm

    from ferembed.metrics._validation import l2_normalize

    x, y = load_data(path, rows)
    xn = l2_normalize(np.asarray(x))
    sampler = RssSampler()
    times, windows, values = {}, {}, {}
    fns = {
        "davies_bouldin": lambda: skm.davies_bouldin_score(xn, y),
        "calinski_harabasz": lambda: skm.calinski_harabasz_score(xn, y),
    }
    if silhouette:
        fns["silhouette"] = lambda: skm.silhouette_score(x, y, metric="cosine")
    for name, fn in fns.items():
        with window(windows, name):
            values[name] = float(fn())
        times[name] = round(windows[name][1] - windows[name][0], 3)
    sampler.stop()
    peaks = {name: sampler.peak(*w) for name, w in windows.items()}
    return {"times": times, "peak_mb": peaks | {"total": max_rss_mb()}, "values": values}


CHILDREN = {"ferembed": child_ferembed, "pml": child_pml, "sklearn": child_sklearn}


def run_child(kind: str, path: Path, timeout: float, rows: int | None = None, extra=()) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(path), *extra]
    if rows is not None:
        cmd += ["--rows", str(rows)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        why = "killed (out of memory?)" if proc.returncode < 0 else tail[0]
        return {"error": why, "wall_s": round(time.perf_counter() - t0, 1)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ report


def fmt_s(v) -> str:
    return "—" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_mb(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def size_label(n: int, d: int) -> str:
    return (f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k") + f"×{d}"


def _label(res: dict) -> str:
    label = size_label(res["n"], res["dim"])
    return label + (f" (first {res['n'] // 1000}k rows)" if res.get("of") else "")


def markdown(results: list[dict]) -> str:
    """Per-group time and peak RSS of ferembed beside the references that ran on the same rows."""
    lines = [
        "| N×D | group | ferembed s | ferembed peak MB | reference | reference s | "
        "reference peak MB |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for res in results:
        label = _label(res)
        fe, pml, sk = res["ferembed"], res.get("pml"), res.get("sklearn")
        refs: dict[str, tuple[str, object, object]] = {}
        if pml is None:
            refs["retrieval"] = ("PML AccuracyCalculator", res.get("pml_note", "skipped"), None)
        elif "error" in pml:
            refs["retrieval"] = ("PML AccuracyCalculator", pml["error"], None)
        else:
            refs["retrieval"] = (
                "PML AccuracyCalculator (p@1, R-prec, MAP@R, NMI, AMI)",
                pml["times"]["pml"],
                pml["peak_mb"]["pml"],
            )
        if sk is not None and "error" not in sk:
            sil = sk["times"].get("silhouette")
            refs["silhouette"] = (
                "sklearn silhouette_score",
                sil if sil is not None else res.get("silhouette_note", "skipped"),
                sk["peak_mb"].get("silhouette"),
            )
            refs["geometry"] = (
                "sklearn davies_bouldin + calinski_harabasz",
                sk["times"]["davies_bouldin"] + sk["times"]["calinski_harabasz"],
                max(sk["peak_mb"]["davies_bouldin"], sk["peak_mb"]["calinski_harabasz"]),
            )
        elif sk is not None:
            refs["silhouette"] = ("sklearn", sk["error"], None)
        if "error" in fe:
            lines.append(f"| {label} | total | {fe['error']} | | | | |")
            continue
        for key, name in GROUP_ROWS:
            ref_name, ref_s, ref_mb = refs.get(key, ("", None, None))
            ref_s_txt = ref_s if isinstance(ref_s, str) else fmt_s(ref_s) if ref_name else ""
            lines.append(
                f"| {label} | {name} | {fmt_s(fe['times'].get(key))} | "
                f"{fmt_mb(fe['peak_mb'].get(key))} | {ref_name} | {ref_s_txt} | "
                f"{fmt_mb(ref_mb) if ref_name else ''} |"
            )
    return "\n".join(lines)


def processes(results: list[dict]) -> str:
    """One row per subprocess: what it ran on, its wall time and its peak RSS."""
    lines = ["| N×D | process | total s | peak RSS MB |", "|---|---|---:|---:|"]
    for res in results:
        for kind in ("ferembed", "pml", "sklearn"):
            out = res.get(kind)
            if out is None:
                continue
            if "error" in out:
                lines.append(f"| {_label(res)} | {kind} | {out['error']} | |")
                continue
            total = out["times"].get("total", sum(out["times"].values()))
            peak = out["peak_mb"].get("total", max(out["peak_mb"].values()))
            lines.append(f"| {_label(res)} | {kind} | {fmt_s(total)} | {fmt_mb(peak)} |")
    return "\n".join(lines)


def agreement(results: list[dict]) -> str:
    pairs = [
        ("precision_at_1", "pml", "precision_at_1"),
        ("r_precision", "pml", "r_precision"),
        ("map_at_r", "pml", "mean_average_precision_at_r"),
        ("silhouette", "sklearn", "silhouette"),
        ("davies_bouldin", "sklearn", "davies_bouldin"),
        ("calinski_harabasz", "sklearn", "calinski_harabasz"),
    ]
    lines = ["| N×D | metric | ferembed | reference | abs diff |", "|---|---|---:|---:|---:|"]
    for res in results:
        fe = res["ferembed"]
        if "error" in fe:
            continue
        for key, who, ref_key in pairs:
            ref = res.get(who)
            if not ref or "error" in ref or ref_key not in ref["values"]:
                continue
            a, b = fe["values"][key], ref["values"][ref_key]
            lines.append(
                f"| {_label(res)} | {key} ({who}) | {a:.6f} | {b:.6f} | {abs(a - b):.1e} |"
            )
    return "\n".join(lines)


def _log(res: dict, kind: str, t0: float) -> None:
    err = res[kind].get("error", "")
    print(f"[{_label(res)}] {kind}: {time.perf_counter() - t0:.1f} s {err}", file=sys.stderr)


def measure(path: Path, n: int, dim: int, args, skip: set[str]) -> list[dict]:
    """Every contender on the data at ``path``: ferembed at N, and each reference at the largest
    size it survives (N, or the first ``--ref-rows`` rows with ferembed beside it)."""
    ref = min(n, args.ref_rows)
    full = {"n": n, "dim": dim}
    sub = {"n": ref, "dim": dim, "of": n} if ref < n else full
    runs = [("ferembed", full, None, ())]
    if "sklearn" not in skip:
        # davies_bouldin and calinski_harabasz are O(ND): at N; silhouette is O(N^2): at ref.
        runs.append(("sklearn", full, None, () if ref == n else ("--no-silhouette",)))
        full["silhouette_note"] = f"on the first {ref // 1000}k rows below"
    if "pml" not in skip:
        full["pml_note"] = f"on the first {ref // 1000}k rows below (OOM-killed at 100k here)"
        runs.append(("pml", sub, ref if ref < n else None, ()))
    if ref < n:
        runs.insert(1, ("ferembed", sub, ref, ()))
        if "sklearn" not in skip:
            runs.append(("sklearn", sub, ref, ()))
    for kind, res, rows, extra in runs:
        t0 = time.perf_counter()
        res[kind] = run_child(kind, path, args.timeout, rows, extra)
        _log(res, kind, t0)
    return [full] if sub is full else [full, sub]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000,1000000", help="comma-separated N values")
    ap.add_argument("--dim", type=int, default=None, help="D (default 128, 512 at N >= 1M)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip: pml,sklearn")
    ap.add_argument(
        "--ref-rows",
        type=int,
        default=20_000,
        help="rows for PML and sklearn's silhouette where N is larger (default 20000)",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-silhouette", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kw = {"silhouette": False} if args.no_silhouette else {}
        print(json.dumps(CHILDREN[args.child](args.data, args.rows, **kw)))
        return 0
    skip = {s for s in args.skip.split(",") if s}
    results = []
    for n in [int(float(s)) for s in args.sizes.split(",")]:
        dim = args.dim or (512 if n >= 1_000_000 else 128)
        with tempfile.TemporaryDirectory(prefix="ferembed-bench-") as tmp:
            path = Path(tmp)
            t0 = time.perf_counter()
            make_data(path, n, dim)
            print(
                f"[{size_label(n, dim)}] data in {time.perf_counter() - t0:.1f} s", file=sys.stderr
            )
            results += measure(path, n, dim, args, skip)
    print(markdown(results))
    print()
    print(processes(results))
    print()
    print(agreement(results))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (the measurements share the CPUs)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
