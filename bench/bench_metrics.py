"""Benchmark ``ferembed.metrics.evaluate`` against pytorch-metric-learning and scikit-learn.

For each size N, synthetic imbalanced Gaussian blobs are written once to a temporary ``.npy``
file; then each contender runs in its own subprocess (honest peak RSS from ``ru_maxrss``):

* ``ferembed``: ``evaluate`` with every group, cosine distance, default options. Per-group time
  comes from ``metrics["timings_s"]``; per-group peak RSS from a thread sampling
  ``/proc/self/statm`` while that group runs (the whole process: embeddings included).
* ``pml``: ``AccuracyCalculator`` (precision_at_1, r_precision, mean_average_precision_at_r, NMI,
  AMI; ``k="max_bin_count"``, the fewest neighbours that keep R-precision and MAP@R exact -- the
  default ``k=None`` searches all N - 1 and was OOM-killed at 20k on this busy machine) on the
  L2-normalised embeddings. Skipped at N >= 100k (OOM-killed at 100k on this 24 GB machine).
* ``sklearn``: ``silhouette_score(metric="cosine")``, ``davies_bouldin_score`` and
  ``calinski_harabasz_score`` (on L2-normalised rows, as ferembed does for cosine). Silhouette is
  skipped at N >= 1M (O(N^2)).

Usage::

    python bench/bench_metrics.py                       # 20k, 100k, 1M
    python bench/bench_metrics.py --sizes 20000 --out results.json

Prints a markdown table (time and peak memory per metric group, side by side with the
references) and an agreement table (ferembed vs PML / scikit-learn values at the sizes both ran).
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


def load_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(path / "x.npy", mmap_mode="r"), np.load(path / "y.npy")


# ---------------------------------------------------------------------------------- children


def child_ferembed(path: Path) -> dict:
    # the module, not the function that ferembed.metrics re-exports under the same name
    ev = importlib.import_module("ferembed.metrics.evaluate")

    x, y = load_data(path)
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


def child_pml(path: Path) -> dict:
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    from ferembed.metrics._validation import l2_normalize

    x, y = load_data(path)
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


def child_sklearn(path: Path) -> dict:
    from sklearn import metrics as skm

    from ferembed.metrics._validation import l2_normalize

    x, y = load_data(path)
    xn = l2_normalize(np.asarray(x))
    sampler = RssSampler()
    times, windows, values = {}, {}, {}
    fns = {
        "davies_bouldin": lambda: skm.davies_bouldin_score(xn, y),
        "calinski_harabasz": lambda: skm.calinski_harabasz_score(xn, y),
    }
    if len(y) < 1_000_000:
        fns["silhouette"] = lambda: skm.silhouette_score(x, y, metric="cosine")
    for name, fn in fns.items():
        with window(windows, name):
            values[name] = float(fn())
        times[name] = round(windows[name][1] - windows[name][0], 3)
    sampler.stop()
    peaks = {name: sampler.peak(*w) for name, w in windows.items()}
    return {"times": times, "peak_mb": peaks | {"total": max_rss_mb()}, "values": values}


CHILDREN = {"ferembed": child_ferembed, "pml": child_pml, "sklearn": child_sklearn}


def run_child(kind: str, path: Path, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(path)]
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


def markdown(results: list[dict]) -> str:
    lines = [
        "| N×D | group | ferembed s | ferembed peak MB | reference | reference s | "
        "reference peak MB |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for res in results:
        label = size_label(res["n"], res["dim"])
        fe, pml, sk = res["ferembed"], res.get("pml"), res.get("sklearn")
        refs: dict[str, tuple[str, object, object]] = {}
        if pml is None:
            why = "skipped (OOM-killed at 100k here)" if res["n"] >= 100_000 else "skipped"
            refs["retrieval"] = ("PML AccuracyCalculator", why, None)
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
                sil if sil is not None else "skipped (O(N²) at 1M)",
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
                f"| {size_label(res['n'], res['dim'])} | {key} ({who}) | {a:.6f} | {b:.6f} | "
                f"{abs(a - b):.1e} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000,1000000", help="comma-separated N values")
    ap.add_argument("--dim", type=int, default=None, help="D (default 128, 512 at N >= 1M)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip: pml,sklearn")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.data)))
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
            res = {"n": n, "dim": dim}
            for kind in ("ferembed", "sklearn", "pml"):
                if kind in skip or (kind == "pml" and n >= 100_000):
                    continue
                t0 = time.perf_counter()
                res[kind] = run_child(kind, path, args.timeout)
                print(
                    f"[{size_label(n, dim)}] {kind}: {time.perf_counter() - t0:.1f} s "
                    f"{res[kind].get('error', '')}",
                    file=sys.stderr,
                )
            results.append(res)
    print(markdown(results))
    print()
    print(agreement(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
