"""The dataset interface every loader implements.

A dataset is a list of :class:`Sample` records plus a way to load each image as a uint8 grayscale
array of ``image_size x image_size``. It is a plain map-style dataset (``__len__``/``__getitem__``)
so it works with ``torch.utils.data.DataLoader`` without this module importing torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferembed.errors import DataError

DEFAULT_IMAGE_SIZE = 48


@dataclass(frozen=True)
class Sample:
    """One labelled face.

    Attributes:
        sample_id: unique within the dataset split, stable across runs (e.g. the file stem).
        label: index into the dataset's ``class_names``.
        path: image path relative to the dataset root ("" for in-memory datasets).
        subject: subject / identity id, "" when unknown.
        split: split name ("train", "val", "test", ...).
    """

    sample_id: str
    label: int
    path: str = ""
    subject: str = ""
    split: str = ""


class FERDataset:
    """Base class: subclasses fill ``samples``/``class_names`` and may override ``load_image``.

    ``dataset[i]`` returns ``(image, label)`` with image uint8 (image_size, image_size).
    """

    name: str = "base"

    def __init__(
        self,
        samples: list[Sample],
        class_names: list[str],
        *,
        root: str | os.PathLike | None = None,
        split: str = "",
        image_size: int = DEFAULT_IMAGE_SIZE,
    ) -> None:
        if not samples:
            where = f" under {root}" if root is not None else ""
            raise DataError(f"{self.name}: split {split!r} is empty{where}")
        self.samples = samples
        self.class_names = list(class_names)
        self.root = Path(root) if root is not None else None
        self.split = split
        self.image_size = int(image_size)
        self._resize_noted = False

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.load_image(i), self.samples[i].label

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter((s.label for s in self.samples), dtype=np.int64, count=len(self.samples))

    def class_counts(self) -> np.ndarray:
        """(C,) int64 number of samples per class."""
        return np.bincount(self.labels, minlength=len(self.class_names))

    def load_image(self, i: int) -> np.ndarray:
        """Read sample ``i`` from disk as uint8 grayscale ``(image_size, image_size)``."""
        assert self.root is not None
        return read_image(self.root / self.samples[i].path, self.image_size, self)

    def load_all(self) -> np.ndarray:
        """(N, S, S) uint8 stack of every image (for small sets and descriptor caching)."""
        return np.stack([self.load_image(i) for i in range(len(self))])


def read_image(path: Path, size: int, owner: FERDataset | None = None) -> np.ndarray:
    """Decode an image file to uint8 grayscale ``(size, size)``.

    RGB/RGBA/palette images are converted to grayscale; other sizes are resized (bilinear) and
    noted once per dataset on stderr.

    Raises:
        DataError: missing, truncated or undecodable file (the path is named).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "L":
                im = im.convert("L")
            if im.size != (size, size):
                if owner is not None and not owner._resize_noted:
                    import sys

                    print(
                        f"note: {owner.name}: images are {im.size[0]}x{im.size[1]}, "
                        f"resizing to {size}x{size} (first: {path})",
                        file=sys.stderr,
                    )
                    owner._resize_noted = True
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or unreadable image ({exc})") from None


class ArrayDataset(FERDataset):
    """A dataset held in memory (SynthFER, CSV pixel strings)."""

    name = "array"

    def __init__(self, images: np.ndarray, samples: list[Sample], class_names, **kw) -> None:
        super().__init__(samples, class_names, **kw)
        if images.shape[0] != len(samples):
            raise DataError(f"{self.name}: {images.shape[0]} images for {len(samples)} samples")
        self.images = images

    def load_image(self, i: int) -> np.ndarray:
        return self.images[i]

    def load_all(self) -> np.ndarray:
        return self.images
