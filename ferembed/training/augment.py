"""Batch augmentation of normalised faces, in torch (no torchvision).

All random draws come from an explicit ``torch.Generator`` (the trainer seeds one per epoch from
``(seed, epoch)``), are made for every sample whatever the probabilities, and in a fixed order, so
a batch's augmentation depends only on the generator state: runs are reproducible and a resumed
run replays exactly the same augmentations.

Pipeline, per sample (each step skipped when its strength is 0):

1. horizontal flip with probability 0.5 (``flip``);
2. one affine warp by :func:`torch.nn.functional.affine_grid` / ``grid_sample`` (bilinear, border
   padding) combining a rotation in ``[-rotation, rotation]`` degrees, an isotropic scale in
   ``[1 - scale, 1 + scale]`` and an integer translation of up to ``crop_padding`` pixels each way
   (the classic "random crop of a padded image", with pixels brought in from outside replicated
   from the border instead of black bars);
3. brightness / contrast jitter: ``x' = (x - mean(x)) * c + mean(x) + b`` with
   ``c ~ U[1 - contrast, 1 + contrast]`` and ``b ~ U[-brightness, brightness] * 2`` (the input
   range [-1, 1] spans 2), clamped to [-1, 1];
4. random erasing with probability ``erasing``: one rectangle of area fraction in
   ``[0.02, erasing_max_area]`` and aspect ratio in [0.3, 3.3] set to 0 (mid-gray).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ferembed.errors import ConfigError


@dataclass
class AugmentConfig:
    """Training-time augmentation (applied to training batches only)."""

    enabled: bool = True  # master switch; False leaves every batch unchanged
    flip: bool = True  # random horizontal flip (p = 0.5)
    crop_padding: int = 4  # random translation of up to this many pixels (crop of a padded image)
    rotation: float = 10.0  # max rotation, degrees
    scale: float = 0.1  # max relative zoom in/out
    brightness: float = 0.2  # max brightness shift, as a fraction of the intensity range
    contrast: float = 0.2  # max relative contrast change
    erasing: float = 0.25  # probability of erasing one random rectangle
    erasing_max_area: float = 0.2  # largest erased area, as a fraction of the image

    def validate(self) -> None:
        checks = {
            "crop_padding": self.crop_padding >= 0,
            "rotation": 0 <= self.rotation <= 180,
            "scale": 0 <= self.scale < 1,
            "brightness": 0 <= self.brightness <= 1,
            "contrast": 0 <= self.contrast < 1,
            "erasing": 0 <= self.erasing <= 1,
            "erasing_max_area": 0.02 <= self.erasing_max_area <= 1,
        }
        ranges = {
            "crop_padding": ">= 0",
            "rotation": "in [0, 180]",
            "scale": "in [0, 1)",
            "brightness": "in [0, 1]",
            "contrast": "in [0, 1)",
            "erasing": "in [0, 1]",
            "erasing_max_area": "in [0.02, 1]",
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"augment.{key} must be {ranges[key]}, got {getattr(self, key)!r}"
                )


class Augmenter:
    """Callable batch augmenter built from an :class:`AugmentConfig`."""

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()
        self.config.validate()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a batch.

        Args:
            x: (B, C, H, W) float normalised faces in [-1, 1].
            generator: CPU generator every random draw comes from.

        Returns:
            (B, C, H, W) float, same device and dtype.
        """
        cfg = self.config
        if not cfg.enabled or x.shape[0] == 0:
            return x
        b, _, h, w = x.shape

        def rand(*shape: int) -> Tensor:
            return torch.rand(shape, generator=generator).to(x.device)

        # Draw everything up front, in a fixed order, whatever is enabled.
        u_flip, u_rot, u_scale, u_tx, u_ty = rand(b), rand(b), rand(b), rand(b), rand(b)
        u_bright, u_contrast = rand(b), rand(b)
        u_erase, u_area, u_aspect, u_top, u_left = rand(b), rand(b), rand(b), rand(b), rand(b)

        if cfg.flip:
            x = torch.where((u_flip < 0.5)[:, None, None, None], x.flip(-1), x)

        if cfg.rotation > 0 or cfg.scale > 0 or cfg.crop_padding > 0:
            angle = (u_rot * 2 - 1) * math.radians(cfg.rotation)
            zoom = 1 + (u_scale * 2 - 1) * cfg.scale
            p = cfg.crop_padding
            # Integer pixel shifts in [-p, p]; affine_grid works in [-1, 1] units (2 / size).
            tx = torch.floor(u_tx * (2 * p + 1)).clamp(max=2 * p) - p
            ty = torch.floor(u_ty * (2 * p + 1)).clamp(max=2 * p) - p
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            theta = torch.stack(
                [
                    torch.stack([cos, -sin, tx * 2 / w], dim=1),
                    torch.stack([sin, cos, ty * 2 / h], dim=1),
                ],
                dim=1,
            ).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

        if cfg.brightness > 0 or cfg.contrast > 0:
            c = 1 + (u_contrast * 2 - 1) * cfg.contrast
            shift = (u_bright * 2 - 1) * cfg.brightness * 2
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * c[:, None, None, None] + mean + shift[:, None, None, None]).clamp(
                -1, 1
            )

        if cfg.erasing > 0:
            area = (0.02 + u_area * (cfg.erasing_max_area - 0.02)) * h * w
            log_r = math.log(0.3) + u_aspect * (math.log(3.3) - math.log(0.3))
            aspect = torch.exp(log_r)
            eh = torch.sqrt(area * aspect).round().clamp(1, h)
            ew = torch.sqrt(area / aspect).round().clamp(1, w)
            top = torch.floor(u_top * (h - eh + 1))
            left = torch.floor(u_left * (w - ew + 1))
            rows = torch.arange(h, device=x.device)[None, :, None]
            cols = torch.arange(w, device=x.device)[None, None, :]
            inside = (
                (rows >= top[:, None, None])
                & (rows < (top + eh)[:, None, None])
                & (cols >= left[:, None, None])
                & (cols < (left + ew)[:, None, None])
                & (u_erase < cfg.erasing)[:, None, None]
            )
            x = x.masked_fill(inside[:, None], 0.0)
        return x
