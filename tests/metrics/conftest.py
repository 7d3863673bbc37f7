"""Session-scoped, seeded synthetic data for the metrics tests (shared by every metrics module).

Each fixture returns a :class:`Blobs` ``(x, y, subjects, num_classes)``: ``x`` is float32 (N, D),
``y`` int64 (N,), ``subjects`` an object array of subject ids (``""`` = unknown) or None.
Treat them as read-only (they are shared across the session); copy before modifying.

=====================  ====================================================================
fixture                what it is
=====================  ====================================================================
``blobs_small``        N=600, D=16, K=5 balanced Gaussian blobs, overlapping (imperfect
                       retrieval), no subjects.
``blobs_imbalanced``   N=900, D=24, K=7 with sizes 400..3 (FER-like imbalance), subjects:
                       30 subjects, each sample's subject drawn at random, 5% unknown ("").
``blobs_ties``         N=300, D=8, K=4 plus a one-sample class (label 4): 40 rows are exact
                       duplicates of other rows *of the same class* (exact distance ties that
                       cannot change a label-based metric) and the singleton class.
``blobs_single_class`` N=50, D=8, one class (label 0).
``blobs_separated``    N=200, D=8, K=4 far-apart tight blobs: perfect retrieval/clustering.
``blobs_large``        N=6000, D=32, K=7 imbalanced (for chunking / sampling paths).
``run_small``          a run directory (``ferembed.runs.write_run``) built from
                       ``blobs_imbalanced`` with logits, a linear head and subjects.
=====================  ====================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest


class Blobs(NamedTuple):
    x: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int64
    subjects: np.ndarray | None  # (N,) object of str, "" = unknown
    num_classes: int


def make_blobs(
    sizes: list[int], dim: int, *, spread: float, scale: float = 1.0, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: class means drawn N(0, spread^2), samples N(mean, scale^2), rows shuffled."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, size=(len(sizes), dim))
    x = np.concatenate(
        [rng.normal(m, scale, size=(n, dim)) for m, n in zip(means, sizes, strict=True)]
    )
    y = np.repeat(np.arange(len(sizes)), sizes)
    perm = rng.permutation(len(y))
    return x[perm].astype(np.float32), y[perm].astype(np.int64)


def _frozen(b: Blobs) -> Blobs:
    for a in (b.x, b.y, b.subjects):
        if a is not None:
            a.setflags(write=False)
    return b


@pytest.fixture(scope="session")
def blobs_small() -> Blobs:
    x, y = make_blobs([120] * 5, 16, spread=0.6, seed=0)
    return _frozen(Blobs(x, y, None, 5))


@pytest.fixture(scope="session")
def blobs_imbalanced() -> Blobs:
    sizes = [400, 200, 120, 80, 60, 37, 3]
    x, y = make_blobs(sizes, 24, spread=0.5, seed=1)
    rng = np.random.default_rng(11)
    subjects = np.array([f"s{i:02d}" for i in rng.integers(0, 30, len(y))], dtype=object)
    subjects[rng.random(len(y)) < 0.05] = ""
    return _frozen(Blobs(x, y, subjects, 7))


@pytest.fixture(scope="session")
def blobs_ties() -> Blobs:
    rng = np.random.default_rng(2)
    x, y = make_blobs([65] * 4, 8, spread=0.7, seed=2)
    # 40 extra rows, each an exact copy of a random existing row (same class by construction).
    src = rng.choice(len(y), 40, replace=False)
    x = np.concatenate([x, x[src], rng.normal(0, 1, (1, 8)).astype(np.float32)])
    y = np.concatenate([y, y[src], [4]])
    perm = rng.permutation(len(y))
    return _frozen(Blobs(np.ascontiguousarray(x[perm]), y[perm], None, 5))


@pytest.fixture(scope="session")
def blobs_single_class() -> Blobs:
    x, y = make_blobs([50], 8, spread=1.0, seed=3)
    return _frozen(Blobs(x, y, None, 1))


@pytest.fixture(scope="session")
def blobs_separated() -> Blobs:
    x, y = make_blobs([50] * 4, 8, spread=10.0, scale=0.1, seed=4)
    return _frozen(Blobs(x, y, None, 4))


@pytest.fixture(scope="session")
def blobs_large() -> Blobs:
    sizes = [2400, 1200, 900, 600, 450, 300, 150]
    x, y = make_blobs(sizes, 32, spread=0.4, seed=5)
    return _frozen(Blobs(x, y, None, 7))


@pytest.fixture(scope="session")
def run_small(blobs_imbalanced: Blobs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ferembed.runs.format import make_samples, write_run

    b = blobs_imbalanced
    rng = np.random.default_rng(6)
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    w = rng.normal(0, 1, (b.num_classes, b.x.shape[1])).astype(np.float32)
    bias = rng.normal(0, 0.1, b.num_classes).astype(np.float32)
    logits = b.x @ w.T + bias
    samples = make_samples(
        b.y,
        names,
        sample_ids=[f"img{i:04d}" for i in range(len(b.y))],
        preds=logits.argmax(1),
        subjects=list(b.subjects),
        splits="test",
    )
    path = tmp_path_factory.mktemp("runs") / "run_small"
    return write_run(
        path,
        embeddings=b.x,
        samples=samples,
        class_names=names,
        logits=logits,
        head_weight=w,
        head_bias=bias,
        source="import",
    )
