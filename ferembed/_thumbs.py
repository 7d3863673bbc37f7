"""Face thumbnails as PNG bytes and ``data:`` URIs (for tables, HTML and the dashboard).

Thumbnails are the (N, h, w) uint8 grayscale arrays of a run's ``thumbs.npy``. A data URI embeds
the PNG in the page itself, so an image column or an HTML report needs no file server.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np


def _as_image(thumb: np.ndarray, scale: int):
    from PIL import Image

    a = np.asarray(thumb)
    if a.ndim != 2:
        raise ValueError(f"a thumbnail must be a 2-D (h, w) array, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if int(scale) < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if scale > 1:
        # Nearest-neighbour upscaling keeps the pixels crisp in browsers that smooth small images.
        a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
    return Image.fromarray(np.ascontiguousarray(a))  # uint8 2-D -> mode "L"


def to_png(thumb: np.ndarray, *, scale: int = 1) -> bytes:
    """PNG bytes of one (h, w) uint8 grayscale thumbnail, optionally upscaled ``scale`` times."""
    buf = io.BytesIO()
    _as_image(thumb, scale).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def to_data_uri(thumb: np.ndarray, *, scale: int = 1) -> str:
    """``data:image/png;base64,...`` URI of one thumbnail."""
    return "data:image/png;base64," + base64.b64encode(to_png(thumb, scale=scale)).decode("ascii")


def data_uris(thumbs: np.ndarray, rows: Sequence[int] | np.ndarray, *, scale: int = 1) -> list[str]:
    """Data URIs of ``thumbs[rows]`` (rows < 0 give an empty string)."""
    return [to_data_uri(thumbs[int(r)], scale=scale) if int(r) >= 0 else "" for r in rows]


def placeholder(size: tuple[int, int] = (48, 48)) -> np.ndarray:
    """A mid-grey tile for runs without thumbnails."""
    return np.full(size, 128, dtype=np.uint8)
