"""Synthetic embedding runs for the dashboard tests and benchmark.

The runs of one call share a SynthFER test split (same sample ids, labels, subjects and face
thumbnails, as runs of several losses on one split would) and differ in how well their embeddings
separate the classes. About 5% of the samples are "mislabelled": their embedding sits at another
class's centre, so the label-noise list and the flipped samples have something to show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferembed.data.synthfer import CLASS_NAMES, generate_synthfer
from ferembed.runs import make_samples, write_run

#: Faces rendered at most; larger runs reuse them cyclically (rendering 100k faces takes ~1 min).
MAX_FACES = 4000


def make_split(n: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Labels, subjects, ids and thumbnails of an ``n``-sample split."""
    faces = generate_synthfer(min(n, MAX_FACES), seed=seed, identity_offset=70_000)
    reps = np.arange(n) % len(faces)
    labels = faces.labels[reps].astype(np.int64)
    subjects = faces.identities[reps]
    return {
        "labels": labels,
        "subjects": np.array([f"s{s}" for s in subjects]),
        "ids": np.array([f"test/{i:06d}" for i in range(n)]),
        "thumbs": faces.images[reps],
    }


def make_run(
    path: Path,
    split: dict[str, np.ndarray],
    *,
    loss: str,
    spread: float,
    dim: int = 32,
    seed: int = 0,
    logits: bool = True,
    thumbs: bool = True,
    noise_rate: float = 0.05,
) -> Path:
    """Write one run: class centres plus Gaussian noise of std ``spread`` (smaller = better)."""
    rng = np.random.default_rng(seed)
    labels = split["labels"]
    n, k = labels.size, len(CLASS_NAMES)
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    placed = labels.copy()
    # A fixed (seed-independent) set of "mislabelled" samples, shared by every run of the split.
    noisy = np.random.default_rng(12345).random(n) < noise_rate
    placed[noisy] = (labels[noisy] + 1 + (np.arange(n)[noisy] % (k - 1))) % k
    x = centres[placed] + rng.normal(scale=spread, size=(n, dim)).astype(np.float32)
    head = None
    if logits:
        head = (x @ centres.T * 5.0).astype(np.float32)
    samples = make_samples(
        labels,
        CLASS_NAMES,
        sample_ids=split["ids"].tolist(),
        preds=head.argmax(axis=1) if head is not None else None,
        subjects=split["subjects"].tolist(),
        splits="test",
    )
    return write_run(
        path,
        embeddings=x.astype(np.float32),
        samples=samples,
        class_names=CLASS_NAMES,
        logits=head,
        thumbs=split["thumbs"] if thumbs else None,
        head_weight=centres * 5.0 if logits else None,
        head_bias=np.zeros(k, np.float32) if logits else None,
        model={
            "arch": "resnet18",
            "loss": loss,
            "checkpoint": f"checkpoints/{loss}.safetensors",
            "checkpoint_sha256": "0" * 64,
            "embedding_dim": dim,
            "num_params": 11_000_000,
        },
        dataset={
            "name": "synthfer",
            "root": None,
            "split": "test",
            "fold": None,
            "num_folds": None,
            "image_size": 48,
        },
        command=f"synthetic test run ({loss})",
        name=path.name,
    )


#: (name, loss, spread, has logits) of the standard set of runs.
STANDARD_RUNS = (
    ("softmax", "softmax", 0.30, True),
    ("arcface", "arcface", 0.18, True),
    ("supcon", "supcon", 0.24, False),
)


def make_runs(root: Path, n: int, *, dim: int = 32, runs=STANDARD_RUNS) -> list[Path]:
    """The standard runs under ``root`` (one shared split of ``n`` samples)."""
    split = make_split(n)
    return [
        make_run(root / name, split, loss=loss, spread=spread, dim=dim, seed=i + 1, logits=lg)
        for i, (name, loss, spread, lg) in enumerate(runs)
    ]
