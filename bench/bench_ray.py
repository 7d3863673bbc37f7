"""What Ray costs: ``embed --ray`` and ``evaluate --ray`` against one process, on a local Ray.

    python bench/bench_ray.py [--checkpoint checkpoints/fer2013/softmax]
                              [--root ../shared/datasets/fer2013] [--sizes 3589,100000]
                              [--workers 2] [--evaluate-only-above 20000] [--json out.json]

Measures (seconds, wall clock):

* **Ray start**: a local Ray with ``--workers`` CPUs (``ray.init``), and its shutdown.
* **embed**: the FER2013 test split (3,589 faces) with a shipped checkpoint; larger sizes tile
  the split (faces repeated in order, decoded from their files every time), so every size reads
  real JPEGs. One process is ``embed_dataset`` (what ``ferembed embed`` runs); Ray is the
  ``RayEmbedder`` of ``embed --ray`` (Ray Data actor pool of ``--workers`` actors, every batch
  saved to the resumable parts folder), on the same dataset object. Both include decoding,
  preprocessing and thumbnails, not the run writing (the same code on both paths).
* **evaluate**: ``ferembed.metrics.evaluate`` (every group) on those embeddings, with the search
  in this process or spread over Ray tasks (``evaluate --ray``); the retrieval (search) time
  and the total (Ray twice: the first search also starts the worker processes), and the
  largest difference between the two metric dictionaries.

``--actor-check cuda`` (no Ray needed: for a GPU machine that lacks it) runs the embed actor's
code on the GPU and compares it with the one-process loop on the CPU.

Sizes above ``--evaluate-only-above`` skip the embedding (their embeddings are the 3,589 test
embeddings tiled, plus a little noise, so that no two rows are equal) to save the shared box's
time: say so when reporting. Timings on a shared 2-core machine are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _leaves(tree, path=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key not in ("created", "timings_s"):
                yield from _leaves(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _leaves(value, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, float(tree)


def _max_diff(a: dict, b: dict) -> float:
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    if la.keys() != lb.keys():
        return float("inf")
    return max((abs(la[k] - lb[k]) for k in la), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(REPO / "checkpoints/fer2013/softmax"))
    ap.add_argument("--root", default=str(REPO.parent / "shared/datasets/fer2013"))
    ap.add_argument("--sizes", default="3589,100000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--evaluate-only-above", type=int, default=20_000)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument(
        "--actor-check",
        metavar="DEVICE",
        help="no Ray (a GPU machine without it): embed SynthFER with the embed actor's code on "
        "DEVICE (e.g. cuda) and compare with the one-process loop on the CPU, then stop",
    )
    args = ap.parse_args()
    if args.actor_check:
        return actor_check(args.actor_check, args.batch_size, args.json)

    from ferembed._engines import SEARCH, using
    from ferembed._ray import RaySearch, RaySession
    from ferembed.data import create_dataset
    from ferembed.data.subset import SubsetDataset
    from ferembed.metrics.evaluate import evaluate
    from ferembed.runs.distributed import ModelRecipe, RayEmbedder
    from ferembed.runs.embed import embed_dataset

    recipe = ModelRecipe(checkpoint=args.checkpoint)
    model = recipe.build("cpu")
    base = create_dataset("fer2013", args.root, "test", image_size=model.preprocess.load_size)
    results: dict = {"workers": args.workers, "checkpoint": args.checkpoint, "sizes": {}}

    t = time.perf_counter()
    session = RaySession(workers=args.workers)
    session.start()
    results["ray_start_s"] = round(time.perf_counter() - t, 2)
    print(f"local Ray start ({args.workers} CPUs): {results['ray_start_s']} s", flush=True)

    base_emb = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            row: dict = {}
            ds = SubsetDataset(base, np.resize(np.arange(len(base)), n))
            labels = np.asarray(ds.labels)
            if n <= args.evaluate_only_above:
                t = time.perf_counter()
                emb, _, _ = embed_dataset(model, ds, batch_size=args.batch_size, progress=False)
                row["embed_one_process_s"] = round(time.perf_counter() - t, 2)
                embedder = RayEmbedder(session, recipe, Path(tmp) / f"run{n}")
                t = time.perf_counter()
                emb_ray, _, _ = embedder(model, ds, batch_size=args.batch_size, progress=False)
                row["embed_ray_s"] = round(time.perf_counter() - t, 2)
                embedder.finish()
                row["embed_max_abs_diff"] = float(np.abs(emb - emb_ray).max())
                print(f"N={n} embed: one process {row['embed_one_process_s']} s, "
                      f"Ray {row['embed_ray_s']} s, max |diff| {row['embed_max_abs_diff']:.2e}",
                      flush=True)  # fmt: skip
                if base_emb is None:
                    base_emb = emb[: len(base)]
            else:
                noise = np.random.default_rng(0).normal(0, 1e-3, (n, base_emb.shape[1]))
                emb = (np.resize(base_emb, (n, base_emb.shape[1])) + noise).astype(np.float32)
                row["embeddings"] = "tiled 3,589 test embeddings + N(0, 1e-3) noise"
            kw = dict(class_names=list(base.class_names), n_boot=200)
            t = time.perf_counter()
            m_one = evaluate(emb, labels, **kw)
            row["evaluate_one_process_s"] = round(time.perf_counter() - t, 2)
            row["search_one_process_s"] = m_one["timings_s"]["retrieval"]
            search = RaySearch(session)
            for when in ("", "_warm"):  # the first search also starts the workers
                t = time.perf_counter()
                with using(SEARCH, search):
                    m_ray = evaluate(emb, labels, **kw)
                row[f"evaluate_ray{when}_s"] = round(time.perf_counter() - t, 2)
                row[f"search_ray{when}_s"] = m_ray["timings_s"]["retrieval"]
            row["search_blocks"] = search.blocks_run
            row["search_mode"] = m_one["modes"]["retrieval"]
            row["metrics_max_abs_diff"] = _max_diff(m_one, m_ray)
            print(f"N={n} evaluate: one process {row['evaluate_one_process_s']} s (search "
                  f"{row['search_one_process_s']} s), Ray {row['evaluate_ray_s']} s (search "
                  f"{row['search_ray_s']} s, {search.blocks_run} blocks; warm: "
                  f"{row['evaluate_ray_warm_s']} s, search {row['search_ray_warm_s']} s), "
                  f"max |diff| {row['metrics_max_abs_diff']:.2e}", flush=True)  # fmt: skip
            results["sizes"][str(n)] = row
    t = time.perf_counter()
    session.close()
    results["ray_shutdown_s"] = round(time.perf_counter() - t, 2)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def actor_check(device: str, batch_size: int, out: str | None) -> None:
    """``embed --ray``'s actor (``_EmbedActor``: model built from the recipe on ``device``)
    against ``embed_dataset`` on the CPU, on 4,000 SynthFER faces: max |diff| and img/s."""
    from ferembed.data import create_dataset
    from ferembed.runs.distributed import ModelRecipe, _EmbedActor
    from ferembed.runs.embed import embed_dataset

    recipe = ModelRecipe(checkpoint=str(REPO / "checkpoints/synthfer/center"))
    ds = create_dataset("synthfer", None, "test", image_size=48, n=4000)
    t = time.perf_counter()
    emb, logits, thumbs = embed_dataset(recipe.build("cpu"), ds, batch_size=batch_size,
                                        progress=False)  # fmt: skip
    cpu_s = time.perf_counter() - t
    actor = _EmbedActor(recipe, ds, device)
    actor({"row": np.arange(2)})  # warm-up (CUDA context, kernels)
    t = time.perf_counter()
    parts = [actor({"row": np.arange(a, min(a + batch_size, len(ds)))})
             for a in range(0, len(ds), batch_size)]  # fmt: skip
    dev_s = time.perf_counter() - t
    got = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    result = {
        "device": device,
        "faces": len(ds),
        "cpu_img_per_s": round(len(ds) / cpu_s, 1),
        "actor_img_per_s": round(len(ds) / dev_s, 1),
        "rows_in_order": bool(np.array_equal(got["row"], np.arange(len(ds)))),
        "embedding_max_abs_diff": float(np.abs(got["embedding"] - emb).max()),
        "logits_max_abs_diff": float(np.abs(got["logits"] - logits).max()),
        "thumbs_equal": bool(np.array_equal(got["thumb"], thumbs)),
    }
    print(json.dumps(result, indent=2))
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
