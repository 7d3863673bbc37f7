"""Benchmark the architectures: parameters, FLOPs per 48x48 face, embedding throughput.

Usage::

    python bench/bench_models.py [--device auto|cpu|cuda|mps] [--archs vgg,affnet]
                                 [--batch-size 256] [--min-time 3] [--threads N] [--out x.json]

Throughput is measured in inference mode (``model.eval()`` + ``torch.inference_mode``) on random
normalised 48x48 inputs: one warm-up batch, then batches until ``--min-time`` seconds have passed
(at least one, at most ``--max-iters``). It prints a markdown table and writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferembed._device import resolve_device  # noqa: E402
from ferembed.models import count_flops, create_model  # noqa: E402

DEFAULT_ARCHS = ("vgg_small", "vgg", "affnet", "resnet18", "fusion")
NUM_CLASSES = 7


def parse_args(argv=None, *, batch_size: int = 256, what: str = "models") -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if what == "models" else what)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--archs", default=",".join(DEFAULT_ARCHS), help="comma-separated names")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--min-time", type=float, default=3.0, help="seconds timed per arch")
    p.add_argument("--max-iters", type=int, default=50, help="most timed batches per arch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def environment(device: torch.device) -> dict:
    env = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_loop(step, device: torch.device, *, min_time: float, max_iters: int) -> tuple[int, float]:
    """Run ``step()`` once to warm up, then until ``min_time`` has passed; (iterations, seconds)."""
    step()
    sync(device)
    iters, t0 = 0, time.perf_counter()
    while True:
        step()
        iters += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or iters >= max_iters:
            return iters, elapsed


def markdown(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A markdown table of ``rows``; columns are (key, header, format spec)."""
    lines = [
        "| " + " | ".join(h for _, h, _ in columns) + " |",
        "|" + "|".join("---:" if f else "---" for _, _, f in columns) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(format(r[k], f) for k, _, f in columns) + " |")
    return "\n".join(lines)


def report(args, env: dict, rows: list[dict], columns: list[tuple[str, str, str]], **extra) -> None:
    """Print the environment and the markdown table; write ``--out`` JSON (``extra`` keys too)."""
    print(f"device: {env['device']}, torch {env['torch']}, {env['threads']} threads\n")
    print(markdown(rows, columns))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"env": env, "batch_size": args.batch_size, **extra, "results": rows}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    env = environment(device)
    rows = []
    for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
        torch.manual_seed(0)
        model = create_model(arch, NUM_CLASSES).to(device).eval()
        x = torch.randn(args.batch_size, 1, 48, 48, device=device)

        def step(model=model, x=x):
            with torch.inference_mode():
                model(x)

        iters, seconds = timed_loop(step, device, min_time=args.min_time, max_iters=args.max_iters)
        rows.append(
            {
                "arch": arch,
                "params_M": model.num_params() / 1e6,
                "gflops": count_flops(model) / 1e9,
                "infer_img_s": iters * args.batch_size / seconds,
                "batches_timed": iters,
            }
        )
        print(f"{arch}: done", file=sys.stderr)
    cols = [
        ("arch", "arch", ""),
        ("params_M", "params (M)", ".3f"),
        ("gflops", "GFLOPs / 48x48 image", ".4f"),
        ("infer_img_s", f"embed img/s (batch {args.batch_size})", ".0f"),
    ]
    report(args, env, rows, cols)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
