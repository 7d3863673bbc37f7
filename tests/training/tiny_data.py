"""A tiny in-memory dataset for training tests: the class is a bright band, so it is learnable."""

from __future__ import annotations

import numpy as np

from ferembed.data._base import ArrayDataset, Sample
from ferembed.training import TrainConfig


def banded(split: str, classes: list[str], *, n: int, seed: int = 0, name: str) -> ArrayDataset:
    """16x16 faces whose class c is a bright horizontal band at rows 5c..5c+3, plus noise."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    labels = np.arange(n) % len(classes)
    images = rng.integers(0, 90, size=(n, 16, 16)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 5 * c : 5 * c + 4, 2:14] += 150
    samples = [Sample(f"{split}_{i}", int(c), split=split) for i, c in enumerate(labels)]
    ds = ArrayDataset(images, samples, classes, split=split, image_size=16)
    ds.name = name
    return ds


def tiny_train_config(out, **changes) -> TrainConfig:
    """A 4-8-8-8 VGG with 8-d embeddings, softmax, batch 16, lr 0.05, writing to ``out``."""
    base = dict(
        arch="vgg",
        model_kwargs={"widths": [4, 8, 8, 8]},
        embedding_dim=8,
        loss="softmax",
        batch_size=16,
        lr=0.05,
        out=str(out),
    )
    return TrainConfig(**{**base, **changes})
