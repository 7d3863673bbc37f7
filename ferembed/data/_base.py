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
#: Images with more pixels are refused before decoding (a decompression bomb: a small file that
#: expands to gigabytes). 50 megapixels is far above any face dataset's images.
MAX_IMAGE_PIXELS = 50_000_000
#: Modes with an alpha channel (composited over black).
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


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

    Every pixel format is brought to 8-bit gray by its own range (:func:`_gray_pixels`): 16-bit
    images are divided by 257, float images in [0, 1] multiplied by 255, colour and palette
    images take the ITU-R 601 luma, and transparent pixels are composited over black. Other sizes
    are resized (bilinear) and noted once per dataset on stderr.

    Raises:
        DataError: missing, truncated or undecodable file, an image over
            :data:`MAX_IMAGE_PIXELS` (a decompression bomb), or pixels out of their format's
            range (the path is named).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise DataError(
                        f"{path}: image of {w}x{h} pixels is over the limit of "
                        f"{MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
                    )
                im.load()
                gray = _gray_pixels(im, path)
        if gray.shape != (size, size):
            if owner is not None and not owner._resize_noted:
                import sys

                print(
                    f"note: {owner.name}: images are {gray.shape[1]}x{gray.shape[0]}, "
                    f"resizing to {size}x{size} (first: {path})",
                    file=sys.stderr,
                )
                owner._resize_noted = True
            gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.BILINEAR))
        return np.asarray(gray, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or unreadable image ({exc})") from None


def _gray_pixels(im, path: Path) -> np.ndarray:
    """(H, W) uint8 gray pixels of a decoded PIL image, each mode scaled by its own range.

    Pillow's ``convert("L")`` clips 16-bit and float pixels instead of scaling them (a 16-bit
    face turns white, a float one black), so those modes are scaled here: ``v / 257`` for 16-bit
    (65535 -> 255), ``v * 255`` for floats in [0, 1]. 32-bit integer images are read as 16-bit
    values. Alpha (RGBA, LA, transparent palettes) is composited over black:
    ``gray * alpha / 255``.
    """
    mode = im.mode
    if mode.startswith("I;16"):
        values = np.asarray(im).astype(np.float64) / 257.0
    elif mode == "I":
        values = np.asarray(im).astype(np.int64)
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi > 65535:
            raise DataError(
                f"{path}: 32-bit integer pixels in {lo}..{hi}; expected 0..65535 (16-bit)"
            )
        values = values / 257.0
    elif mode == "F":
        values = np.asarray(im).astype(np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"{path}: float image has NaN/Inf pixels")
        lo, hi = float(values.min()), float(values.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{path}: float pixels in {lo:g}..{hi:g}; expected 0..1")
        values = values * 255.0
    elif mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        gray = np.asarray(rgba.convert("L"), dtype=np.float64)
        values = gray * np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
    elif mode == "L":
        return np.asarray(im, dtype=np.uint8)
    else:
        return np.asarray(im.convert("L"), dtype=np.uint8)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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
