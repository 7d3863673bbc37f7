"""Time the exact kNN engine's CPU backends (numpy, faiss-cpu, torch-cpu) on the same search.

    python bench/bench_knn.py [--sizes 20000 100000 1000000] [--dims 128 512] [--queries 5000]
                              [--k 10 R] [--backends numpy faiss torch] [--json FILE]

Synthetic data: 8 Gaussian classes of equal size (so R, the class count of a query, is N / 8).
Each case searches ``--queries`` rows, drawn at random, leave-one-out against all N rows with
``ferembed._search.compute_knn(..., device="cpu", backend=...)``, cosine. ``k = R`` is what
R-precision and MAP@R would need from a top-k search (ferembed computes them in a fused pass over
the score rows instead, ``metrics/retrieval.py``); cases whose (Q, k) result would exceed
``--max-result-gb`` are skipped. Every backend is checked against numpy: the fraction of query
rows with identical neighbours and the largest distance difference. The fastest backend per case
is what ``"auto"`` should pick on the CPU (``ferembed._search_engine.cpu_backend``). Times depend
on the machine and its load (printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferembed._search import compute_knn  # noqa: E402

CLASSES = 8


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((CLASSES, d), dtype=np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += 0.5 * centers[np.arange(n) % CLASSES]
    return x


def _case(
    x: np.ndarray, queries: np.ndarray, k: int, backends: list[str], repeat: int
) -> list[dict]:
    """Each backend ``repeat`` times, in turns (a load spike from other processes then hits
    every backend alike); the best time is kept."""
    times = {b: [] for b in backends}
    results = {}
    for _ in range(repeat):
        for backend in backends:
            t0 = time.perf_counter()
            results[backend] = compute_knn(x, k, queries=queries, device="cpu", backend=backend)
            times[backend].append(time.perf_counter() - t0)
    rows, ref = [], None
    for backend in backends:
        knn, seconds = results[backend], min(times[backend])
        row = {"backend": backend, "seconds": round(seconds, 3)}
        if ref is None:
            ref = knn
        else:
            row["identical_rows"] = float((knn.indices == ref.indices).all(axis=1).mean())
            same_sets = np.sort(knn.indices, axis=1) == np.sort(ref.indices, axis=1)
            row["identical_sets"] = float(same_sets.all(axis=1).mean())
            row["max_abs_ddist"] = float(np.abs(knn.distances - ref.distances).max())
        rows.append(row)
        print(f"    {backend:6s} {seconds:8.2f} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--queries", type=int, default=5000, help="query rows per search")
    ap.add_argument("--k", nargs="+", default=["10", "R"], help="neighbours: integers or R")
    ap.add_argument("--backends", nargs="+", default=["numpy", "faiss", "torch"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend (best kept)")
    ap.add_argument("--max-result-gb", type=float, default=1.0, help="skip larger (Q, k) results")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.backends[0] != "numpy":
        args.backends.insert(0, "numpy")  # the reference of the equality check
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    load_before = os.getloadavg()[0]
    warm = _data(256, 8)
    for backend in args.backends:  # imports (torch: seconds) outside the timings
        compute_knn(warm, 3, device="cpu", backend=backend)
    results = []
    for n in args.sizes:
        for d in args.dims:
            x = _data(n, d)
            q = np.sort(np.random.default_rng(1).choice(n, min(args.queries, n), replace=False))
            for k_name in args.k:
                k = n // CLASSES - 1 if k_name == "R" else int(k_name)
                if q.size * k * 12 > args.max_result_gb * 2**30:
                    print(f"N={n} D={d} k={k_name}: skipped (result over {args.max_result_gb} GB)")
                    continue
                print(f"N={n} D={d} Q={q.size} k={k_name}={k}", flush=True)
                rows = _case(x, q, k, args.backends, args.repeat)
                results.append(
                    {"n": n, "dim": d, "queries": int(q.size), "k": k_name, "rows": rows}
                )
            del x
    print("\n| N | D | k | " + " | ".join(args.backends) + " | fastest | identical rows / sets |")
    print("|---|---|---|" + "---|" * len(args.backends) + "---|---|")
    for r in results:
        secs = {row["backend"]: row["seconds"] for row in r["rows"]}
        same = min(row.get("identical_rows", 1.0) for row in r["rows"])
        sets = min(row.get("identical_sets", 1.0) for row in r["rows"])
        times = " | ".join(f"{secs[b]:.2f} s" for b in args.backends)
        fastest = min(secs, key=secs.get)
        cells = f"{times} | {fastest} | {same:.4f} / {sets:.4f}"
        print(f"| {r['n']:,} | {r['dim']} | {r['k']} | {cells} |")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
