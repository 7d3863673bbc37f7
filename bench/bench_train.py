"""Benchmark training throughput per architecture (CE + center loss, forward+backward+step).

Usage::

    python bench/bench_train.py [--device auto|cpu|cuda|mps] [--archs vgg,affnet]
                                [--batch-size 64] [--min-time 3] [--threads N] [--out x.json]

Each step is what the trainer does per batch: ``emb, logits = model(x)``, the center loss
(``create_loss("center")``: CE + lam * L_C), backward, an SGD step and the loss's center update,
on random normalised 48x48 inputs (no data loading, no augmentation). One warm-up step, then
steps until ``--min-time`` seconds have passed. Prints a markdown table, writes JSON to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_models import (  # noqa: E402
    NUM_CLASSES,
    environment,
    parse_args,
    report,
    timed_loop,
)

from ferembed._device import resolve_device  # noqa: E402
from ferembed.losses import create_loss  # noqa: E402
from ferembed.models import create_model  # noqa: E402


def main(argv=None) -> int:
    args = parse_args(argv, batch_size=64, what=__doc__.splitlines()[0])
    device = resolve_device(args.device)
    env = environment(device)
    rows = []
    for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
        torch.manual_seed(0)
        model = create_model(arch, NUM_CLASSES).to(device).train()
        loss = create_loss("center", NUM_CLASSES, model.embedding_dim).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(args.batch_size, 1, 48, 48, device=device)
        y = torch.arange(args.batch_size, device=device) % NUM_CLASSES

        def step(model=model, loss=loss, opt=opt, x=x, y=y):
            emb, logits = model(x)
            total = loss(emb, logits, y)["loss"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            loss.after_step(emb.detach(), y)

        iters, seconds = timed_loop(step, device, min_time=args.min_time, max_iters=args.max_iters)
        rows.append(
            {
                "arch": arch,
                "params_M": model.num_params() / 1e6,
                "train_img_s": iters * args.batch_size / seconds,
                "steps_timed": iters,
            }
        )
        print(f"{arch}: done", file=sys.stderr)
    cols = [
        ("arch", "arch", ""),
        ("params_M", "params (M)", ".3f"),
        ("train_img_s", f"train img/s (batch {args.batch_size})", ".0f"),
    ]
    report(args, env, rows, cols, loss="center")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
