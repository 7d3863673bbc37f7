"""Every pixel format becomes the right 8-bit gray (issue #14): files made with Pillow, expected
values computed by hand, and decompression bombs refused with one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import ferembed.data._base as base
from ferembed.data._base import read_image
from ferembed.errors import DataError


def _luma(r: int, g: int, b: int) -> float:
    """ITU-R 601-2 luma, as Pillow's convert("L")."""
    return 0.299 * r + 0.587 * g + 0.114 * b


def _read(path, size=4) -> np.ndarray:
    return read_image(path, size)


def test_16bit_png_is_divided_by_257(tmp_path):
    a = np.array([[0, 257, 32896, 65535]] * 4, np.uint16)  # 0, 1, 128, 255 in 8 bits
    Image.fromarray(a).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I;16")
    assert _read(tmp_path / "a.png")[0].tolist() == [0, 1, 128, 255]


def test_32bit_integer_tiff_is_read_as_16bit(tmp_path):
    a = np.array([[0, 514, 65535, 65535]] * 4, np.int32)
    Image.fromarray(a, mode="I").save(tmp_path / "a.tif")
    assert _read(tmp_path / "a.tif")[0].tolist() == [0, 2, 255, 255]


def test_32bit_integer_beyond_16bit_is_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I").save(tmp_path / "a.tif")
    with pytest.raises(DataError, match=r"a\.tif: 32-bit integer pixels in 70000\.\.70000"):
        _read(tmp_path / "a.tif")


def test_float_tiff_in_unit_range_is_times_255(tmp_path):
    a = np.array([[0.0, 0.2, 0.5, 1.0]] * 4, np.float32)  # 0, 51, 127.5 -> 128, 255
    Image.fromarray(a, mode="F").save(tmp_path / "a.tif")
    assert _read(tmp_path / "a.tif")[0].tolist() == [0, 51, 128, 255]


@pytest.mark.parametrize(
    ("value", "message"),
    [(2.0, r"float pixels in 0\.\.2; expected 0\.\.1"), (np.nan, "float image has NaN/Inf")],
)
def test_float_tiff_out_of_range_or_nan_is_refused(tmp_path, value, message):
    a = np.zeros((4, 4), np.float32)
    a[1, 2] = value
    Image.fromarray(a, mode="F").save(tmp_path / "a.tif")
    with pytest.raises(DataError, match=r"a\.tif: " + message):
        _read(tmp_path / "a.tif")


def test_palette_takes_the_luma_of_each_colour(tmp_path):
    im = Image.new("P", (4, 4))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    im.putpixel((0, 0), 1)
    im.putpixel((1, 0), 2)
    im.save(tmp_path / "p.png")
    row = _read(tmp_path / "p.png")[0]
    assert row[:3].tolist() == [round(_luma(255, 0, 0)), round(_luma(0, 0, 255)), 0]  # 76, 29, 0


def test_transparent_palette_is_composited_over_black(tmp_path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 200, 200, 200] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.info["transparency"] = 1  # palette entry 1 (light gray) is fully transparent
    im.save(tmp_path / "p.png", transparency=1)
    assert _read(tmp_path / "p.png").max() == 0


def test_cmyk_is_converted_through_rgb(tmp_path):
    # C=0, M=0, Y=0, K=128: R = G = B = 255 * (1 - 128/255) = 127
    Image.new("CMYK", (4, 4), (0, 0, 0, 128)).save(tmp_path / "c.tif")
    assert (_read(tmp_path / "c.tif") == 127).all()


def test_la_is_composited_over_black(tmp_path):
    Image.new("LA", (4, 4), (200, 128)).save(tmp_path / "la.png")  # 200 * 128/255 = 100.4
    assert (_read(tmp_path / "la.png") == 100).all()


def test_rgba_is_luma_composited_over_black(tmp_path):
    Image.new("RGBA", (4, 4), (0, 255, 0, 255)).save(tmp_path / "opaque.png")
    Image.new("RGBA", (4, 4), (0, 255, 0, 51)).save(tmp_path / "faint.png")
    assert (_read(tmp_path / "opaque.png") == round(_luma(0, 255, 0))).all()  # 150
    assert (_read(tmp_path / "faint.png") == 30).all()  # 150 * 51/255


def test_bilevel_and_rgb_and_gray_are_unchanged(tmp_path):
    a = np.zeros((4, 4), bool)
    a[0, 0] = True
    Image.fromarray(a).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / "rgb.png")
    Image.new("L", (4, 4), 77).save(tmp_path / "l.png")
    assert _read(tmp_path / "b.png")[0, :2].tolist() == [255, 0]
    assert (_read(tmp_path / "rgb.png") == round(_luma(10, 20, 30))).all()  # 18.15 -> 18
    assert (_read(tmp_path / "l.png") == 77).all()


def test_16bit_image_is_scaled_before_resizing(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png", 4)
    assert out.shape == (4, 4) and (out == 255).all()


def test_image_over_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(base, "MAX_IMAGE_PIXELS", 9_999)
    with pytest.raises(DataError, match=r"big\.png: image of 100x100 pixels is over the limit"):
        _read(tmp_path / "big.png")


def test_pillow_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "bomb.png")
    for limit in (6_000, 4_000):  # 10 000 pixels: a DecompressionBombWarning, then an Error
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(DataError, match=r"bomb\.png: refused as a decompression bomb") as e:
            _read(tmp_path / "bomb.png")
        assert "\n" not in str(e.value)
