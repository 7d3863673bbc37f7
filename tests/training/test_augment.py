"""Batch augmentation: shapes, determinism and what each step does."""

from __future__ import annotations

import pytest
import torch

from ferembed.training import AugmentConfig, Augmenter

OFF = dict(
    flip=False,
    crop_padding=0,
    rotation=0.0,
    scale=0.0,
    brightness=0.0,
    contrast=0.0,
    erasing=0.0,
)


def _batch(b=6, size=12):
    return torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_shape_dtype_and_range():
    x = _batch()
    y = Augmenter()(x, _gen(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= -1 and y.max() <= 1


def test_same_generator_seed_same_output():
    x = _batch()
    aug = Augmenter()
    assert torch.equal(aug(x, _gen(3)), aug(x, _gen(3)))
    assert not torch.equal(aug(x, _gen(3)), aug(x, _gen(4)))


def test_disabled_or_zero_strength_is_identity():
    x = _batch()
    assert torch.equal(Augmenter(AugmentConfig(enabled=False))(x, _gen(0)), x)
    assert torch.equal(Augmenter(AugmentConfig(**OFF))(x, _gen(0)), x)


def test_flip_only_flips_or_keeps():
    x = _batch(b=16)
    y = Augmenter(AugmentConfig(**{**OFF, "flip": True}))(x, _gen(0))
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(16)]
    kept = [torch.equal(y[i], x[i]) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def _shift(img, dx, dy):
    """Translate by integer pixels, replicating the border (reference for the crop step)."""
    h, w = img.shape[-2:]
    rows = (torch.arange(h) + dy).clamp(0, h - 1)
    cols = (torch.arange(w) + dx).clamp(0, w - 1)
    return img[..., rows[:, None], cols[None, :]]


def test_crop_padding_is_an_integer_translation():
    x = _batch(b=8)
    y = Augmenter(AugmentConfig(**{**OFF, "crop_padding": 2}))(x, _gen(0))
    shifts = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)]
    for i in range(8):
        assert any(torch.allclose(y[i], _shift(x[i], dx, dy), atol=1e-5) for dx, dy in shifts), (
            f"sample {i} is not a translation"
        )


def test_erasing_zeroes_one_rectangle():
    x = _batch(b=8, size=16) * 0.5 + 0.5  # strictly positive, so zeros come from erasing
    x = x.clamp(min=0.01)
    cfg = AugmentConfig(**{**OFF, "erasing": 1.0, "erasing_max_area": 0.25})
    y = Augmenter(cfg)(x, _gen(0))
    for i in range(8):
        zero = y[i, 0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        # The zero set is exactly the box spanned by its rows and columns.
        box = zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and box.numel() == zero.sum()
        assert 0.01 <= zero.float().mean() <= 0.35


def test_brightness_contrast_changes_intensities_only():
    x = _batch()
    y = Augmenter(AugmentConfig(**{**OFF, "brightness": 0.2, "contrast": 0.2}))(x, _gen(0))
    assert not torch.equal(x, y)
    # A per-image affine map of intensities keeps the pixel ordering (before clamping).
    for i in range(x.shape[0]):
        inside = (y[i] > -1) & (y[i] < 1)
        xi, yi = x[i][inside], y[i][inside]
        assert torch.equal(torch.argsort(xi), torch.argsort(yi))


@pytest.mark.parametrize(("key", "value"), [("rotation", -1.0), ("erasing", 2.0), ("scale", 1.0)])
def test_bad_strengths_are_rejected(key, value):
    from ferembed.training import ConfigError

    with pytest.raises(ConfigError, match=f"augment.{key}"):
        Augmenter(AugmentConfig(**{key: value}))
