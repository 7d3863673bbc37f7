"""A view of a dataset restricted to some of its samples, optionally relabelled."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ferembed.data._base import FERDataset


class SubsetDataset(FERDataset):
    """A view of ``base`` restricted to ``indices``, optionally with replaced labels.

    Used for the seeded ``max_train_samples`` subset and for the pseudo-label loop's labelled
    part, unlabelled pool and pseudo-labelled training sets.

    Args:
        base: the dataset viewed.
        indices: (M,) positions in ``base``.
        labels: (M,) labels to use instead of the base's (pseudo-labels), or None.
    """

    def __init__(self, base: FERDataset, indices, labels=None) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        samples = [base.samples[int(i)] for i in self.indices]
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != self.indices.shape:
                raise ValueError(f"{labels.shape[0]} labels for {self.indices.shape[0]} indices")
            samples = [replace(s, label=int(y)) for s, y in zip(samples, labels, strict=True)]
        super().__init__(
            samples, base.class_names, root=base.root, split=base.split, image_size=base.image_size
        )
        self.name = base.name
        # Images come from the innermost dataset (views of views read it directly).
        self._source, self._source_idx = base, self.indices
        if isinstance(base, SubsetDataset):
            self._source, self._source_idx = base._source, base._source_idx[self.indices]

    def load_image(self, i: int) -> np.ndarray:
        return self._source.load_image(int(self._source_idx[i]))

    def load_all(self) -> np.ndarray:
        images = getattr(self._source, "images", None)
        if isinstance(images, np.ndarray):
            return images[self._source_idx]
        return np.stack([self.load_image(i) for i in range(len(self))])
