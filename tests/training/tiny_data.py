"""A tiny in-memory dataset for training tests: the class is a bright band, so it is learnable."""

from __future__ import annotations

import numpy as np

from ferembed.data._base import ArrayDataset, Sample


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
