"""Handcrafted face descriptors (HOG, LBP histograms), standardisation and the on-disk cache.

Descriptors are computed once per dataset on the *un-augmented* aligned images, z-scored per
dimension with that dataset's statistics, and cached as ``.npy`` files keyed by a hash of
(dataset name, split, length, sample ids, descriptor name and parameters, image size).
scikit-image is imported only when a descriptor is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ferembed._io import save_npy

CACHE_FORMAT = 1  # bump when descriptor code changes in a way that changes the numbers


@dataclass(frozen=True)
class HOGParams:
    orientations: int = 9  # gradient orientation bins
    pixels_per_cell: int = 8  # square cells of this many pixels
    cells_per_block: int = 2  # square blocks of this many cells, L2-Hys normalised


@dataclass(frozen=True)
class LBPParams:
    points: int = 8  # P, sampling points on the circle
    radius: float = 1.0  # R, circle radius in pixels
    grid: int = 6  # the face is split into grid x grid cells, one histogram each


def hog_dim(image_size: int, p: HOGParams) -> int:
    """Length of the HOG vector of an ``image_size`` square image (skimage's layout)."""
    cells = image_size // p.pixels_per_cell
    blocks = cells - p.cells_per_block + 1
    if blocks < 1:
        raise ValueError(
            f"HOG: a {image_size}px image has {cells} cells of {p.pixels_per_cell}px, fewer than "
            f"cells_per_block={p.cells_per_block}"
        )
    return blocks * blocks * p.cells_per_block**2 * p.orientations


def lbp_dim(image_size: int, p: LBPParams) -> int:
    """Length of the LBP-histogram vector: grid^2 cells x (P + 2) uniform-pattern bins."""
    if not 1 <= p.grid <= image_size:
        raise ValueError(f"LBP: grid must be in [1, {image_size}], got {p.grid}")
    return p.grid * p.grid * (p.points + 2)


def compute_hog(images: np.ndarray, p: HOGParams) -> np.ndarray:
    """HOG descriptors (skimage ``hog``, L2-Hys block normalisation).

    Args:
        images: (N, S, S) uint8.

    Returns:
        (N, hog_dim(S, p)) float32.
    """
    from skimage.feature import hog

    out = np.empty((len(images), hog_dim(images.shape[1], p)), dtype=np.float32)
    for i, im in enumerate(images):
        out[i] = hog(
            im,
            orientations=p.orientations,
            pixels_per_cell=(p.pixels_per_cell, p.pixels_per_cell),
            cells_per_block=(p.cells_per_block, p.cells_per_block),
            block_norm="L2-Hys",
            feature_vector=True,
            channel_axis=None,
        )
    return out


def compute_lbp(images: np.ndarray, p: LBPParams) -> np.ndarray:
    """Spatial LBP histograms: uniform LBP codes (skimage ``local_binary_pattern``, values
    0..P+1), a (P+2)-bin histogram per cell of a grid x grid split, each summing to 1,
    concatenated row-major.

    Args:
        images: (N, S, S) uint8.

    Returns:
        (N, grid * grid * (P + 2)) float32.
    """
    from skimage.feature import local_binary_pattern

    s = images.shape[1]
    bins = p.points + 2
    # cell index of every pixel: row-major over the grid x grid split
    edges = np.linspace(0, s, p.grid + 1).round().astype(int)
    band = np.searchsorted(edges, np.arange(s), side="right") - 1
    cell = (band[:, None] * p.grid + band[None, :]).ravel() * bins
    n_cells = p.grid * p.grid
    pixels = np.bincount(cell // bins, minlength=n_cells).astype(np.float32)
    out = np.empty((len(images), lbp_dim(s, p)), dtype=np.float32)
    for i, im in enumerate(images):
        codes = local_binary_pattern(im, p.points, p.radius, method="uniform").astype(np.int64)
        h = np.bincount(cell + codes.ravel(), minlength=n_cells * bins).astype(np.float32)
        out[i] = (h.reshape(n_cells, bins) / pixels[:, None]).ravel()
    return out


@dataclass(frozen=True)
class Descriptor:
    name: str
    params: HOGParams | LBPParams
    dim_fn: Callable[[int, object], int]
    compute_fn: Callable[[np.ndarray, object], np.ndarray]

    def dim(self, image_size: int) -> int:
        return self.dim_fn(image_size, self.params)

    def compute(self, images: np.ndarray) -> np.ndarray:
        return self.compute_fn(images, self.params)


DESCRIPTOR_NAMES = ("hog", "lbp")


def make_descriptor(name: str, params: HOGParams | LBPParams | None = None) -> Descriptor:
    """Build descriptor ``name`` ("hog" or "lbp") with ``params`` (defaults when None)."""
    if name == "hog":
        return Descriptor("hog", params or HOGParams(), hog_dim, compute_hog)
    if name == "lbp":
        return Descriptor("lbp", params or LBPParams(), lbp_dim, compute_lbp)
    raise ValueError(f"unknown descriptor {name!r}; known: {list(DESCRIPTOR_NAMES)}")


def standardize(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score each dimension: ``(f - mean) / std``; constant dimensions (std < 1e-8) become 0.

    Args:
        features: (N, D) float.

    Returns:
        (z (N, D) float32, mean (D,) float64, std (D,) float64 with constant dims set to 1).
    """
    f = np.asarray(features, dtype=np.float64)
    mean = f.mean(axis=0)
    std = f.std(axis=0)
    std = np.where(std < 1e-8, 1.0, std)
    return ((f - mean) / std).astype(np.float32), mean, std


def cache_key(dataset, descriptor: Descriptor, image_size: int) -> str:
    """Hex sha256 of what determines a dataset's descriptor array.

    Keyed by (dataset ``name``, ``split``, length, every ``samples[i].sample_id`` in order,
    descriptor name and parameters, image size, cache format).
    """
    ids = "\n".join(str(s.sample_id) for s in dataset.samples)
    payload = {
        "format": CACHE_FORMAT,
        "dataset": str(getattr(dataset, "name", "")),
        "split": str(getattr(dataset, "split", "")),
        "n": len(dataset),
        "sample_ids": hashlib.sha256(ids.encode("utf-8")).hexdigest(),
        "descriptor": descriptor.name,
        "params": asdict(descriptor.params),
        "image_size": int(image_size),
    }
    blob = json.dumps(payload, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def descriptor_cache_path(
    cache_dir: str | os.PathLike, dataset, descriptor: Descriptor, image_size: int
) -> Path:
    """``<cache_dir>/handcrafted-<descriptor>-<key[:24]>.npy``."""
    key = cache_key(dataset, descriptor, image_size)
    return Path(cache_dir) / f"handcrafted-{descriptor.name}-{key[:24]}.npy"


def load_images(dataset, image_size: int) -> np.ndarray:
    """(N, S, S) uint8 images of a FERDataset, checked against ``image_size``."""
    images = np.asarray(dataset.load_all())
    if images.ndim != 3 or images.shape[1:] != (image_size, image_size):
        raise ValueError(
            f"handcrafted descriptors expect ({len(dataset)}, {image_size}, {image_size}) images, "
            f"got {images.shape}; set image_size to the dataset's size"
        )
    if images.dtype != np.uint8:
        images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    return images


def prepare_descriptors(
    dataset, descriptors: list[Descriptor], *, image_size: int, cache_dir=None
) -> dict[str, np.ndarray]:
    """Standardised descriptor arrays of ``dataset``, read from / written to ``cache_dir``.

    Args:
        dataset: a FERDataset (``samples``, ``name``, ``split``, ``load_all()``).
        descriptors: the descriptors to compute.
        image_size: S, the expected image side.
        cache_dir: folder for the ``.npy`` cache; None computes without caching.

    Returns:
        name -> (N, D_k) float32 z-scored array, row i for ``dataset[i]``.
    """
    out: dict[str, np.ndarray] = {}
    images = None
    n = len(dataset)
    for desc in descriptors:
        path = None
        if cache_dir is not None:
            path = descriptor_cache_path(cache_dir, dataset, desc, image_size)
            if path.is_file():
                try:
                    arr = np.load(path, allow_pickle=False)
                except (OSError, ValueError):
                    arr = None  # unreadable cache: recompute and overwrite
                if arr is not None and arr.shape == (n, desc.dim(image_size)):
                    out[desc.name] = arr.astype(np.float32, copy=False)
                    continue
        if images is None:
            images = load_images(dataset, image_size)
        z, _, _ = standardize(desc.compute(images))
        if path is not None:
            save_npy(path, z)
        out[desc.name] = z
    return out
