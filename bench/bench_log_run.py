"""Cost of ``ferembed.log_run`` inside a training loop: time per call at FER2013-test size.

    python bench/bench_log_run.py [--n 3589] [--dim 128] [--calls 20]

Each call writes one step of a series (embeddings, labels, logits, 48x48 thumbnails from
(N, 1, 48, 48) float images in [0, 1], as a validation loader yields them) with torch tensors as
input, like a training loop would. Prints the median and the spread over the calls, with and
without images. Numbers depend on the machine, its disk and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3589, help="samples per call (FER2013 test: 3589)")
    ap.add_argument("--dim", type=int, default=128, help="embedding dimension")
    ap.add_argument("--calls", type=int, default=20, help="calls timed per configuration")
    args = ap.parse_args()

    import torch

    import ferembed

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(args.n, args.dim, generator=g)
    labels = torch.randint(0, 7, (args.n,), generator=g)
    logits = torch.randn(args.n, 7, generator=g)
    images = torch.rand(args.n, 1, 48, 48, generator=g)
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    print(f"log_run: N={args.n}, D={args.dim}, {args.calls} calls each, cpus={os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, imgs in (("with thumbnails", images), ("without images", None)):
            times = []
            for step in range(args.calls):
                t0 = time.perf_counter()
                ferembed.log_run(
                    Path(tmp) / label.replace(" ", "_"),
                    emb,
                    labels,
                    class_names=names,
                    logits=logits,
                    images=imgs,
                    step=step,
                    meta={"epoch": step},
                )
                times.append(time.perf_counter() - t0)
            print(
                f"  {label:16s} median {1000 * statistics.median(times):7.1f} ms"
                f"  (min {1000 * min(times):.1f}, max {1000 * max(times):.1f})"
            )


if __name__ == "__main__":
    main()
