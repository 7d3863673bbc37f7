"""GPU check (issue #15.5): the GPU against the CPU of the same machine, results verified equal.

(a) exact k-NN, N x D synthetic embeddings of 8 classes: ``queries`` sampled queries against all
    N rows, and all-vs-all (leave-one-out) at ``all_n`` rows, through
    ``ferembed._search.compute_knn(..., device=DEV, backend="torch")`` (and ``backend="faiss"``
    when FAISS is importable, on the GPU when it has GPUs) against the CPU numpy backend: the
    fraction of identical rows, of rows equal up to float ties, and max |delta distance|. The CPU
    reference of the all-vs-all search runs on its first ``cpu_all_queries`` query rows (its
    full time is extrapolated, and said so).
(b) embedding throughput of the shipped architectures (vgg_small, vgg, resnet18; random weights,
    eval mode): fp32 and bf16 autocast on the device, fp32 on the CPU; max |delta embedding| of
    AMP vs fp32 and of device vs CPU.
(c) ``ferembed.metrics.evaluate`` with ``device=DEV`` vs ``"cpu"`` at ``eval_small_n`` rows and
    then at ``eval_n``: every numeric leaf equal within ``tol``; evaluate's time per group.

Each finished part is written at once to ``--out`` (JSON), so a timeout keeps what finished; a
markdown table is printed at the end. Optional imports (faiss) are tried, never required; a part
that cannot run says why in its ``skipped`` field. ``--budget-s`` skips what would start too late.

    python bench/gpu_check.py --out $OUT/gpu_check.json             # on the GPU machine
    python bench/gpu_check.py --smoke --device cpu --out /tmp/gc.json  # logic check on a CPU
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's ferembed, installed or not

FAISS_NOTE = (
    "faiss is not importable here: the faiss-gpu wheel (about 135 MB) is over the 64 MiB "
    "transfer limit of the lent machine, so it was not carried"
)
SMOKE = dict(
    n=20_000, dim=64, queries=500, all_n=4_000, cpu_all_queries=1_000, eval_n=6_000,
    eval_small_n=3_000, embed_batches=1, cpu_embed_batches=1, batch=8, n_boot=20,
)  # fmt: skip


class _Report:
    """The JSON document, rewritten after every finished piece."""

    def __init__(self, path: Path, started: float, budget_s: float) -> None:
        self.path, self.started, self.budget_s = path, started, budget_s
        self.doc: dict = {"format": "ferembed.gpu_check/1", "parts": {}}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def put(self, part: str, key: str, value) -> None:
        self.doc["parts"].setdefault(part, {})[key] = value
        self.flush()

    def flush(self) -> None:
        from ferembed._io import write_json

        self.doc["elapsed_s"] = round(time.monotonic() - self.started, 1)
        write_json(self.path, self.doc)


def environment(device: str) -> dict:
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": device,
        "cuda": torch.cuda.is_available(),
        "load_avg": os.getloadavg(),
        "concurrent_training": os.environ.get("GPU_CHECK_CONCURRENT", "no"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    try:
        import faiss

        env["faiss"] = {"version": faiss.__version__, "gpus": int(faiss.get_num_gpus())}
    except ImportError:
        env["faiss"] = None
    return env


def synthetic(n: int, dim: int, classes: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 embeddings around ``classes`` random centres, (n,) int64 labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim), dtype=np.float32)
    y = rng.integers(0, classes, size=n)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x *= 1.5
    x += centres[y]
    return x, y.astype(np.int64)


def knn_agreement(ref, indices: np.ndarray, distances: np.ndarray, tol: float = 1e-4) -> dict:
    """Identical rows, rows equal up to ties (same sorted distances), max |delta distance|.

    ``ref`` is the CPU numpy search (a ``KNN``); ``indices``/``distances`` the first
    ``len(ref)`` rows of the search under test.
    """
    same = np.all(ref.indices == indices, axis=1)
    dd = np.abs(ref.distances.astype(np.float64) - distances)
    tie_equal = same | np.all(dd <= tol, axis=1)
    return {
        "rows": int(same.size),
        "identical_rows": float(same.mean()),
        "equal_up_to_ties": float(tie_equal.mean()),
        "max_abs_delta_distance": float(dd.max()) if dd.size else 0.0,
    }


def _engine_ok() -> str | None:
    from ferembed import _search

    params = inspect.signature(_search.compute_knn).parameters
    if "device" not in params or "backend" not in params:
        return "ferembed._search.compute_knn has no device/backend parameters in this tree"
    return None


def _guarded(rep: _Report, part: str, key: str, fn, *a) -> None:
    """Run one case; its failure is recorded under its key and the next case still runs."""
    try:
        fn(*a)
    except Exception as exc:
        rep.put(part, key, {"error": f"{type(exc).__name__}: {exc}"})


def _timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, round(time.perf_counter() - t, 3)


def part_knn(rep: _Report, args) -> None:
    from ferembed import _search

    why = _engine_ok()
    if why:
        rep.put("knn", "skipped", why)
        return
    x, _ = synthetic(args.n, args.dim)
    q = np.random.default_rng(1).choice(args.n, size=args.queries, replace=False)
    backends = [("torch", args.device)]
    try:
        import faiss

        gpus = int(faiss.get_num_gpus())
        on = args.device if gpus > 0 else "cpu"
        backends.append(("faiss", on))
        if gpus == 0:
            rep.put("knn", "faiss_note", "faiss without GPUs: its CPU backend measured instead")
    except ImportError:
        rep.put("knn", "faiss_note", FAISS_NOTE)
    # Warm-up (CUDA context, kernels) outside the timings.
    for backend, dev in backends:
        _search.compute_knn(x[:2048], args.k, device=dev, backend=backend)
    cases = [
        ("queries", dict(x=x, queries=q), args.queries, None),
        ("all_vs_all", dict(x=x[: args.all_n]), args.all_n, min(args.cpu_all_queries, args.all_n)),
    ]
    for case, kw, n_q, cpu_rows in cases:
        if rep.left() < 30:
            rep.put("knn", case, {"skipped": "out of time budget"})
            continue
        _guarded(rep, "knn", case, _knn_case, rep, args, backends, case, kw, n_q, cpu_rows)


def _knn_case(rep: _Report, args, backends, case, kw, n_q, cpu_rows) -> None:
    from ferembed import _search

    row: dict = {"n": int(kw["x"].shape[0]), "dim": args.dim, "queries": n_q, "k": args.k}
    for backend, dev in backends:
        res, sec = _timed(_search.compute_knn, k=args.k, device=dev, backend=backend, **kw)
        row[f"{backend}_{dev}_s"] = sec
        row[f"_res_{backend}"] = res
    rep.put("knn", case, {k: v for k, v in row.items() if not k.startswith("_")})
    cpu_kw = dict(kw)
    if cpu_rows is not None and cpu_rows < n_q:  # the CPU verifies a prefix of the queries
        cpu_kw["queries"] = np.arange(cpu_rows)
    ref, sec = _timed(_search.compute_knn, k=args.k, device="cpu", backend="numpy", **cpu_kw)
    row["numpy_cpu_s"] = sec
    rows = len(ref)
    if rows < n_q:
        row["numpy_cpu_rows"] = rows
        row["numpy_cpu_s_extrapolated"] = round(sec * n_q / rows, 3)
    for backend, dev in backends:
        res = row.pop(f"_res_{backend}")
        agree = knn_agreement(ref, res.indices[:rows], res.distances[:rows])
        row[f"{backend}_{dev}_vs_numpy"] = agree
        row[f"speedup_{backend}_{dev}"] = round(
            row.get("numpy_cpu_s_extrapolated", sec) / max(row[f"{backend}_{dev}_s"], 1e-9), 2
        )
    rep.put("knn", case, row)


def part_embed(rep: _Report, args) -> None:
    import torch

    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    for arch in args.archs:
        if rep.left() < 20:
            rep.put("embed", arch, {"skipped": "out of time budget"})
            continue
        _guarded(rep, "embed", arch, _embed_arch, rep, args, arch, dev, g)


def _embed_arch(rep: _Report, args, arch: str, dev, g) -> None:
    import torch

    from ferembed.models import create_model

    torch.manual_seed(0)
    model = create_model(arch, 7).eval()
    x = torch.rand((args.batch, 1, 48, 48), generator=g) * 2 - 1
    row: dict = {"batch": args.batch, "params": sum(p.numel() for p in model.parameters())}
    with torch.inference_mode():
        ref_cpu = model(x)[0].float()
        row["cpu_fp32_images_per_s"] = _throughput(model, x, args.cpu_embed_batches, None)
        model.to(dev)
        xd = x.to(dev)
        fp32 = model(xd)[0].float()
        row["device_fp32_images_per_s"] = _throughput(model, xd, args.embed_batches, None)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            amp = model(xd)[0].float()
        row["device_bf16_images_per_s"] = _throughput(model, xd, args.embed_batches, torch.bfloat16)
    scale = float(fp32.abs().max())
    row["max_abs_delta_amp_vs_fp32"] = float((amp - fp32).abs().max())
    row["max_rel_delta_amp_vs_fp32"] = row["max_abs_delta_amp_vs_fp32"] / max(scale, 1e-12)
    row["min_cosine_amp_vs_fp32"] = float(torch.nn.functional.cosine_similarity(amp, fp32).min())
    row["max_abs_delta_device_vs_cpu_fp32"] = float((fp32.cpu() - ref_cpu).abs().max())
    row["speedup_bf16_vs_cpu"] = round(
        row["device_bf16_images_per_s"] / max(row["cpu_fp32_images_per_s"], 1e-9), 2
    )
    rep.put("embed", arch, row)
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def _throughput(model, x, batches: int, amp_dtype) -> float:
    import contextlib

    import torch

    dev = x.device
    ctx = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        model(x)  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(batches):
            model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return round(batches * x.shape[0] / (time.perf_counter() - t), 1)


def compare_leaves(a, b, tol: float, path: str = "") -> tuple[int, float, list[str]]:
    """``(numeric leaves, max |delta|, paths differing by more than tol or in kind)``."""
    if isinstance(a, dict) and isinstance(b, dict):
        n, worst, bad = 0, 0.0, []
        for key in sorted(set(a) | set(b)):
            if key in ("timings_s", "created", "knn"):  # how it ran, not what it measured
                continue
            if key not in a or key not in b:
                bad.append(f"{path}/{key} (missing)")
                continue
            m, w, d = compare_leaves(a[key], b[key], tol, f"{path}/{key}")
            n, worst, bad = n + m, max(worst, w), bad + d
        return n, worst, bad
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return 0, 0.0, [f"{path} (length {len(a)} vs {len(b)})"]
        out = [
            compare_leaves(x, y, tol, f"{path}[{i}]")
            for i, (x, y) in enumerate(zip(a, b, strict=True))
        ]
        return (
            sum(o[0] for o in out),
            max((o[1] for o in out), default=0.0),
            sum((o[2] for o in out), []),
        )
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool):
        if not (math.isfinite(a) and math.isfinite(b)):
            return 1, 0.0, [] if a == b else [path]
        d = abs(float(a) - float(b))
        return 1, d, [path] if d > tol else []
    return 0, 0.0, [] if a == b else [f"{path} ({a!r} vs {b!r})"]


def part_evaluate(rep: _Report, args) -> None:
    from ferembed.metrics.evaluate import evaluate

    if "device" not in inspect.signature(evaluate).parameters:
        rep.put("evaluate", "skipped", "ferembed.metrics.evaluate has no device parameter here")
        return
    try:
        import faiss  # noqa: F401

        exclude = None
    except ImportError:
        exclude = ["clustering"]  # FAISS k-means
        rep.put("evaluate", "clustering", "skipped: " + FAISS_NOTE)
    for n in dict.fromkeys([args.eval_small_n, args.eval_n]):
        if rep.left() < 30:
            rep.put("evaluate", f"n={n}", {"skipped": "out of time budget"})
            continue
        _guarded(rep, "evaluate", f"n={n}", _evaluate_n, rep, args, n, exclude)


def _evaluate_n(rep: _Report, args, n: int, exclude) -> None:
    from ferembed.metrics.evaluate import evaluate

    x, y = synthetic(n, args.dim, seed=2)
    kw = dict(exclude=exclude, n_boot=args.n_boot, seed=0)
    row: dict = {"n": n, "dim": args.dim, "n_boot": args.n_boot}
    runs = {}
    params = inspect.signature(evaluate).parameters
    torch_kw = {"knn_backend": "torch"} if "knn_backend" in params else {}
    sides = (("device", args.device, torch_kw), ("cpu", "cpu", {}))  # CPU: its default
    for side, dev, extra in sides:
        res, sec = _timed(evaluate, x, y, device=dev, **kw, **extra)
        runs[side] = res
        row[f"{side}_s"] = sec
        row[f"{side}_timings_s"] = res.get("timings_s")
        row[f"{side}_knn"] = res.get("knn")
        rep.put("evaluate", f"n={n}", row)
    leaves, worst, bad = compare_leaves(runs["device"], runs["cpu"], args.tol)
    row.update(numeric_leaves=leaves, max_abs_delta=worst, differing=bad[:20])
    row["equal"] = not bad
    row["speedup"] = round(row["cpu_s"] / max(row["device_s"], 1e-9), 2)
    rep.put("evaluate", f"n={n}", row)


def markdown(doc: dict) -> str:
    lines = ["| part | case | numbers |", "|---|---|---|"]
    for part, body in doc["parts"].items():
        for case, row in body.items():
            if isinstance(row, dict):
                cells = ", ".join(
                    f"{k}={v}" for k, v in row.items() if not isinstance(v, (dict, list))
                )
                subs = [f"{k}: {v}" for k, v in row.items() if isinstance(v, dict) and "rows" in v]
                lines.append(f"| {part} | {case} | {'; '.join([cells, *subs])} |")
            else:
                lines.append(f"| {part} | {case} | {row} |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json", help="JSON written after every part")
    ap.add_argument("--device", default="cuda", help="device under test (cpu for --smoke)")
    ap.add_argument("--parts", nargs="+", default=["knn", "embed", "evaluate"], help="what to run")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU logic check)")
    ap.add_argument("--budget-s", type=float, default=420, help="skip what starts after this")
    ap.add_argument("--n", type=int, default=1_000_000, help="k-NN rows")
    ap.add_argument("--dim", type=int, default=512, help="embedding width")
    ap.add_argument("--k", type=int, default=10, help="neighbours")
    ap.add_argument("--queries", type=int, default=5_000, help="sampled k-NN queries")
    ap.add_argument("--all-n", type=int, default=200_000, help="rows of the all-vs-all search")
    ap.add_argument("--cpu-all-queries", type=int, default=20_000, help="CPU all-vs-all rows")
    ap.add_argument("--archs", nargs="+", default=["vgg_small", "vgg", "resnet18"])
    ap.add_argument("--batch", type=int, default=256, help="embedding batch")
    ap.add_argument("--embed-batches", type=int, default=50, help="timed device batches")
    ap.add_argument("--cpu-embed-batches", type=int, default=2, help="timed CPU batches")
    ap.add_argument("--eval-n", type=int, default=1_000_000, help="evaluate rows (large)")
    ap.add_argument("--eval-small-n", type=int, default=200_000, help="evaluate rows (first)")
    ap.add_argument("--n-boot", type=int, default=200, help="evaluate's bootstrap resamples")
    ap.add_argument("--tol", type=float, default=1e-5, help="evaluate leaves equal within this")
    return ap


def main_gpu_check(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.smoke:
        ap.set_defaults(**SMOKE)
        args = ap.parse_args(argv)
    rep = _Report(Path(args.out), time.monotonic(), args.budget_s)
    rep.doc["args"] = vars(args)
    rep.doc["environment"] = environment(args.device)
    rep.flush()
    parts = {"knn": part_knn, "embed": part_embed, "evaluate": part_evaluate}
    for name in args.parts:
        t = time.monotonic()
        try:
            parts[name](rep, args)
        except Exception as exc:  # one part failing must not lose the others
            rep.put(name, "error", f"{type(exc).__name__}: {exc}")
        rep.put(name, "part_s", round(time.monotonic() - t, 1))
    print(markdown(rep.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main_gpu_check())
