"""Embedding throughput of ``--model`` against ``--checkpoint`` for the same network.

    python bench/bench_byom.py [--checkpoint checkpoints/synthfer/softmax.safetensors]
                               [--split test] [--repeats 3]

Embeds SynthFER ``--split`` with the shipped checkpoint (``ferembed embed --checkpoint``) and with
the same network as a ``python:`` factory + ``.safetensors`` weights, as ``torchscript:`` and as
``onnx:`` (``ferembed embed --model``), through the library calls the CLI makes. Reports images
per second (best of ``--repeats``; the loader and the run writing are included, as a user sees
them) and the largest embedding difference from the checkpoint run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FACTORY = """
from ferembed.models import create_model

def create():
    return create_model({arch!r}, {classes}, embedding_dim={dim}, **{kwargs!r})
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(REPO / "checkpoints/synthfer/softmax.safetensors"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch
    from safetensors.torch import save_file

    from ferembed.models import load_checkpoint
    from ferembed.models.external import Preprocess
    from ferembed.runs import load_run
    from ferembed.runs.embed import embed_checkpoint, embed_model

    model, card = load_checkpoint(args.checkpoint)
    model.eval()
    common = dict(
        dataset="synthfer",
        root=None,
        split=args.split,
        device=args.device,
        progress=False,
        overwrite=True,
    )
    pre = Preprocess(mean=(card["input"]["mean"],), std=(card["input"]["std"],))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "factory.py").write_text(
            FACTORY.format(
                arch=card["arch"],
                classes=card["num_classes"],
                dim=card["embedding_dim"],
                kwargs=card.get("model_kwargs") or {},
            )
        )
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "w.safetensors")
        x = torch.zeros(2, 1, 48, 48)
        torch.jit.trace(model, x).save(str(tmp / "m.ts"))
        torch.onnx.export(
            model,
            (x,),
            str(tmp / "m.onnx"),
            dynamo=False,
            input_names=["image"],
            output_names=["embedding", "logits"],
            dynamic_axes={"image": {0: "b"}, "embedding": {0: "b"}, "logits": {0: "b"}},
        )
        ways = {
            "--checkpoint": lambda out: embed_checkpoint(args.checkpoint, out=out, **common),
            "--model python: + safetensors": lambda out: embed_model(
                f"python:{tmp / 'factory.py'}:create",
                weights=tmp / "w.safetensors",
                head_layer="head",
                preprocess=pre,
                out=out,
                **common,
            ),
            "--model torchscript:": lambda out: embed_model(
                f"torchscript:{tmp / 'm.ts'}", head_layer="1", preprocess=pre, out=out, **common
            ),
            "--model onnx:": lambda out: embed_model(
                f"onnx:{tmp / 'm.onnx'}", head_layer="logits", preprocess=pre, out=out, **common
            ),
        }
        ref = None
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
        print(
            f"SynthFER {args.split}, {card['arch']}, device {args.device}, "
            f"torch threads {torch.get_num_threads()}"
        )
        for name, fn in ways.items():
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                path = fn(tmp / "run")
                best = min(best, time.perf_counter() - t0)
            run = load_run(path)
            emb = np.array(run.embeddings)
            ref = emb if ref is None else ref
            diff = float(np.abs(emb - ref).max())
            print(f"  {name:32s} {run.n / best:8.0f} img/s  ({best:.2f} s)  max|diff| {diff:.2e}")


if __name__ == "__main__":
    main()
