"""Batch samplers whose batches are a pure function of ``(seed, epoch)``.

Neither sampler keeps random state between epochs: epoch ``e`` draws from
``numpy.random.default_rng([seed, e, stream])``. A resumed run therefore sees exactly the batches
an uninterrupted run would have seen, with nothing to save. Both yield arrays of positions in the
training dataset and can be given to a ``DataLoader`` as ``batch_sampler``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_RANDOM_STREAM = 0x5A3
_BALANCED_STREAM = 0xBA1


class _EpochSampler:
    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[np.ndarray]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches(self.epoch):
            yield b.tolist()

    def __len__(self) -> int:
        return len(self.batches(0))


class RandomBatchSampler(_EpochSampler):
    """A fresh permutation each epoch, cut into batches.

    Args:
        n: dataset size N.
        batch_size: samples per batch.
        seed: base seed.
        drop_last: drop the final short batch (keeps BatchNorm away from tiny batches). When
            N < batch_size the whole dataset is one batch regardless.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, drop_last: bool = True) -> None:
        super().__init__(seed)
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.drop_last = int(n), int(batch_size), bool(drop_last)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches: list of (batch_size,) int64 positions."""
        perm = np.random.default_rng([self.seed, int(epoch), _RANDOM_STREAM]).permutation(self.n)
        if self.n <= self.batch_size:
            return [perm]
        stop = self.n - self.n % self.batch_size if self.drop_last else self.n
        return [perm[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __len__(self) -> int:
        if self.n <= self.batch_size:
            return 1
        full, rest = divmod(self.n, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)


class BalancedBatchSampler(_EpochSampler):
    """P classes x K samples per batch (the "PK" sampler of metric learning).

    Each batch picks ``classes_per_batch`` distinct classes uniformly among the non-empty ones,
    then ``samples_per_class`` samples of each (without replacement when the class has enough
    samples, with replacement otherwise). Rare classes are thereby seen as often as common ones.

    Args:
        labels: (N,) int labels of the training set.
        classes_per_batch: P (at most the number of non-empty classes).
        samples_per_class: K.
        num_batches: batches per epoch; default ``N // (P * K)`` (at least 1), i.e. about one
            pass worth of samples.
        seed: base seed.
    """

    def __init__(
        self,
        labels: np.ndarray,
        classes_per_batch: int,
        samples_per_class: int,
        *,
        num_batches: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        labels = np.asarray(labels, dtype=np.int64)
        self.classes = np.unique(labels)
        if classes_per_batch < 1 or samples_per_class < 1:
            raise ValueError(
                f"classes_per_batch and samples_per_class must be >= 1, got {classes_per_batch}, "
                f"{samples_per_class}"
            )
        if classes_per_batch > len(self.classes):
            raise ValueError(
                f"classes_per_batch={classes_per_batch} but only {len(self.classes)} classes have "
                f"samples"
            )
        self.by_class = [np.flatnonzero(labels == c) for c in self.classes]
        self.p, self.k = int(classes_per_batch), int(samples_per_class)
        self.batch_size = self.p * self.k
        self.num_batches = (
            int(num_batches) if num_batches else max(1, len(labels) // self.batch_size)
        )

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches: list of (P * K,) int64 positions, grouped by class."""
        rng = np.random.default_rng([self.seed, int(epoch), _BALANCED_STREAM])
        out = []
        for _ in range(self.num_batches):
            chosen = rng.choice(len(self.classes), size=self.p, replace=False)
            parts = []
            for c in np.sort(chosen):
                pool = self.by_class[c]
                parts.append(rng.choice(pool, size=self.k, replace=len(pool) < self.k))
            out.append(np.concatenate(parts))
        return out

    def __len__(self) -> int:
        return self.num_batches
