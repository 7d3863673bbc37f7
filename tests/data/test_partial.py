import numpy as np
import pytest
import torch

from ferembed.data.partial import DEFAULT_REGIONS, PartialImage, partial_image_layout

ROWS = np.repeat(np.arange(48, dtype=np.uint8)[:, None], 48, axis=1)  # pixel value = its row
COLS = ROWS.T.copy()  # pixel value = its column


def test_default_layout():
    # heights 20 (brows+eyes) and 16 (mouth): rows split 48 * 20/36 = 26.67 -> 27
    layout = partial_image_layout()
    assert [p.src for p in layout] == list(DEFAULT_REGIONS)
    assert [p.dst for p in layout] == [(0, 27, 0, 48), (27, 48, 0, 48)]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_exact_geometry_without_resizing(interpolation):
    # two full-width bands whose heights add up to 48: a pure crop-and-stack
    pi = PartialImage(regions=[(4, 28, 0, 48), (20, 44, 0, 48)], interpolation=interpolation)
    rows, cols = pi(ROWS), pi(COLS)
    assert rows.shape == (48, 48) and rows.dtype == np.uint8
    expected_rows = np.concatenate([np.arange(4, 28), np.arange(20, 44)])
    assert np.array_equal(rows, np.repeat(expected_rows[:, None], 48, axis=1))
    assert np.array_equal(cols, COLS)


def test_nearest_geometry_default_regions():
    pi = PartialImage(interpolation="nearest")
    rows, cols = pi(ROWS), pi(COLS)
    for p in pi.layout:
        top, bottom, left, right = p.src
        y0, y1, x0, x1 = p.dst
        r, c = rows[y0:y1, x0:x1], cols[y0:y1, x0:x1]
        # every output pixel comes from inside its source box, corners to corners
        assert r.min() == top and r.max() == bottom - 1
        assert c.min() == left and c.max() == right - 1
        assert np.all(r == r[:, :1]) and np.all(c == c[:1, :])  # rows from rows, cols from cols
        assert np.all(np.diff(r[:, 0].astype(int)) >= 0)
        assert np.all(np.diff(c[0].astype(int)) >= 0)


def test_bilinear_stays_inside_boxes():
    pi = PartialImage()
    rows, cols = pi(ROWS), pi(COLS)
    for p in pi.layout:
        top, bottom, left, right = p.src
        y0, y1, x0, x1 = p.dst
        assert top <= rows[y0:y1].min() and rows[y0:y1].max() <= bottom - 1
        assert left <= cols[y0:y1].min() and cols[y0:y1].max() <= right - 1


def test_tensor_batch_matches_array():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    pi = PartialImage()
    batch = torch.from_numpy(images.astype(np.float32))[:, None]
    out = pi(batch)
    assert out.shape == (3, 1, 48, 48) and out.dtype == torch.float32
    for i in range(3):
        ref = pi(images[i]).astype(np.float32)
        assert np.abs(out[i, 0].numpy() - ref).max() <= 0.5 + 1e-4
    as_uint8 = pi(torch.from_numpy(images)[:, None])
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (3, 1, 48, 48)


def test_output_size():
    assert PartialImage(size=32)(ROWS).shape == (32, 32)


def test_bad_regions():
    with pytest.raises(ValueError, match="top < bottom"):
        PartialImage(regions=[(10, 5, 0, 48)])
    with pytest.raises(ValueError, match="does not fit"):
        PartialImage(regions=[(0, 50, 0, 48)])(ROWS)
    with pytest.raises(ValueError, match="at least one"):
        PartialImage(regions=[])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        PartialImage()(np.zeros((2, 48, 48), np.uint8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        PartialImage()(torch.zeros(48, 48))
