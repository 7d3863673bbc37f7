"""Partial image (Yu & Bai, IEEE Access 2020): the expression-bearing regions of a face, stacked.

The implementation lives in the leaf module :mod:`ferembed._partial`, which the models import
too (for ``input_mode="partial"``/``"fused"``); this is its dataset-side home.
"""

from ferembed._partial import DEFAULT_REGIONS, PartialImage, RegionPlacement, partial_image_layout

__all__ = ["DEFAULT_REGIONS", "PartialImage", "RegionPlacement", "partial_image_layout"]
