"""Partial image (Yu & Bai, IEEE Access 2020): the expression-bearing regions of a face, stacked.

The regions of an aligned face (by default a brows+eyes band and a mouth band of a 48x48 face) are
cropped, each resized to the full output width and to a share of the output height proportional
to its own height, and stacked top to bottom into one ``size x size`` image::

    +------------------+        +------------------+
    |   brows + eyes   |  --->  |   brows + eyes   |  rows [0, o_1)
    |       nose       |        |------------------|
    |      mouth       |  --->  |      mouth       |  rows [o_1, size)
    +------------------+        +------------------+

The paper picks the regions from facial landmarks; the exact regions are UNCONFIRMED, so here
they are fixed boxes on the aligned face, configurable as ``(top, bottom, left, right)`` pixel
bounds (bottom/right exclusive).

This module is a leaf (numpy and torch only): the data package re-exports the image side
(:mod:`ferembed.data.partial`) and the models use :class:`PartialInput` inside their forward pass,
so neither package imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Default regions of an aligned 48x48 face (FER2013-style crops): (top, bottom, left, right).
DEFAULT_REGIONS: tuple[tuple[int, int, int, int], ...] = (
    (6, 26, 2, 46),  # eyebrows and eyes
    (30, 46, 8, 40),  # mouth
)


@dataclass(frozen=True)
class RegionPlacement:
    """Where one source region lands in the partial image.

    Attributes:
        src: (top, bottom, left, right) box in the input face, bottom/right exclusive.
        dst: (top, bottom, left, right) box in the output image, bottom/right exclusive.
    """

    src: tuple[int, int, int, int]
    dst: tuple[int, int, int, int]


def partial_image_layout(
    regions=DEFAULT_REGIONS, size: int = 48, *, input_size: tuple[int, int] | None = None
) -> list[RegionPlacement]:
    """The geometry of a partial image: each region's source box and output box.

    Output rows are shared in proportion to region heights: with heights h_k and H = sum h_k,
    region k fills rows ``[round(size * sum_{l<k} h_l / H), round(size * sum_{l<=k} h_l / H))``
    and all ``size`` columns.

    Args:
        regions: sequence of (top, bottom, left, right) boxes.
        size: output side.
        input_size: (H, W) of the input, to check the boxes fit (None: not checked).

    Raises:
        ValueError: an empty, inverted or out-of-bounds box, or a region that gets no output row.
    """
    regions = [tuple(int(v) for v in r) for r in regions]
    if not regions:
        raise ValueError("regions must list at least one (top, bottom, left, right) box")
    if int(size) < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    for r in regions:
        if len(r) != 4:
            raise ValueError(f"a region is (top, bottom, left, right), got {r}")
        top, bottom, left, right = r
        if not (0 <= top < bottom and 0 <= left < right):
            raise ValueError(f"region {r} must satisfy 0 <= top < bottom and 0 <= left < right")
        if input_size is not None and (bottom > input_size[0] or right > input_size[1]):
            raise ValueError(f"region {r} does not fit a {input_size[0]}x{input_size[1]} image")
    heights = [b - t for t, b, _, _ in regions]
    total = sum(heights)
    cum = np.concatenate([[0], np.cumsum(heights)])
    edges = [int(round(size * c / total)) for c in cum]
    out = []
    for r, y0, y1 in zip(regions, edges[:-1], edges[1:], strict=True):
        if y1 <= y0:
            raise ValueError(f"region {r} is too short to get an output row at size {size}")
        out.append(RegionPlacement(src=r, dst=(y0, y1, 0, int(size))))
    return out


class PartialImage:
    """Build the partial image of a face (see the module docstring).

    Callable on a (H, W) uint8 array (returns (size, size) uint8) or on a (B, C, H, W) float
    tensor (returns (B, C, size, size), same dtype and device; typically (B, 1, 48, 48)).

    Args:
        regions: (top, bottom, left, right) boxes, bottom/right exclusive, in input pixels.
        size: output side (48: the same size as the input face).
        interpolation: "bilinear" (default) or "nearest".
    """

    def __init__(self, regions=DEFAULT_REGIONS, size: int = 48, *, interpolation: str = "bilinear"):
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}"
            )
        self.regions = tuple(tuple(int(v) for v in r) for r in regions)
        self.size = int(size)
        self.interpolation = interpolation
        self.layout = partial_image_layout(self.regions, self.size)

    def __repr__(self) -> str:
        return (
            f"PartialImage(regions={self.regions}, size={self.size}, "
            f"interpolation={self.interpolation!r})"
        )

    def __call__(self, image):
        if isinstance(image, torch.Tensor):
            if image.ndim != 4:
                raise ValueError(f"a tensor input must be (B, C, H, W), got {tuple(image.shape)}")
            return self._apply(image)
        arr = np.asarray(image)
        if arr.ndim != 2:
            raise ValueError(f"an array input must be (H, W), got {arr.shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
        y = self._apply(x)[0, 0].numpy()
        if arr.dtype == np.uint8:
            return np.clip(np.round(y), 0, 255).astype(np.uint8)
        return y.astype(arr.dtype, copy=False)

    def _apply(self, x):
        h, w = x.shape[-2:]
        partial_image_layout(self.regions, self.size, input_size=(h, w))  # bounds check
        dtype = x.dtype if x.is_floating_point() else torch.float32
        pieces = []
        for p in self.layout:
            t, b, left, right = p.src
            y0, y1, x0, x1 = p.dst
            crop = x[..., t:b, left:right].to(dtype)
            if self.interpolation == "bilinear":
                mode, kw = "bilinear", {"align_corners": False}
            else:
                mode, kw = "nearest-exact", {}
            pieces.append(F.interpolate(crop, size=(y1 - y0, x1 - x0), mode=mode, **kw))
        out = torch.cat(pieces, dim=-2)
        if not x.is_floating_point():
            info = torch.iinfo(x.dtype)
            out = out.round().clamp(info.min, info.max).to(x.dtype)
        return out


class PartialInput(nn.Module):
    """Normalised full faces -> normalised partial images, with :class:`PartialImage`.

    The partial image is made of crops resized bilinearly, which commutes with the affine input
    normalisation, so it is applied to the normalised tensor directly. Parameter-free (nothing in
    the state dict); the regions are the defaults, those of an aligned 48x48 face.
    """

    def __init__(self) -> None:
        super().__init__()
        self.partial = PartialImage()

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, 48, 48) float -> (B, 1, 48, 48) float partial images (same value range)."""
        return self.partial(x)
