"""The SynthFER renderer: faces drawn analytically with numpy, a chunk of samples at once.

Each facial part (head, hair, brows, eyes, nose, mouth) is a shape with a signed distance
evaluated on the pixel grid of the whole chunk and composited in painter's order with an
anti-aliased edge. :mod:`ferembed.data.synthfer` draws the parameters; this module only draws.
"""

from __future__ import annotations

import numpy as np


def _paint(img: np.ndarray, dist: np.ndarray, tone, edge: np.ndarray, alpha=1.0) -> None:
    """Composite ``tone`` where the signed distance ``dist`` < 0, anti-aliased over ``edge``."""
    cover = dist / edge
    np.subtract(0.5, cover, out=cover)
    np.clip(cover, 0.0, 1.0, out=cover)
    if not np.isscalar(alpha) or alpha != 1.0:
        cover *= alpha
    delta = tone - img
    delta *= cover
    img += delta


def _ellipse(u, v, cx, cy, a, b):
    """Approximate signed distance to an axis-aligned ellipse (exact on its axes)."""
    return (np.sqrt(((u - cx) / a) ** 2 + ((v - cy) / b) ** 2) - 1.0) * np.minimum(a, b)


def _segment(u, v, x0, y0, x1, y1):
    """Distance to the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(u - x0 - t * dx, v - y0 - t * dy)


def render_faces(p: dict[str, np.ndarray], size: int, noise: np.ndarray) -> np.ndarray:
    """Render one chunk. ``p`` values are (B,) arrays; ``noise`` is (B, S, S). Returns uint8."""
    f32 = np.float32
    q = {k: np.asarray(v, dtype=f32)[:, None, None] for k, v in p.items()}  # (B, 1, 1)
    b = noise.shape[0]
    grid = (np.arange(size, dtype=f32) + f32(0.5)) * f32(2.0 / size) - f32(1.0)
    gx, gy = grid[None, None, :], grid[None, :, None]

    # Image -> face frame: undo translation, rotation and scale of the pose.
    cos, sin = np.cos(q["angle"]), np.sin(q["angle"])
    x0, y0 = gx - q["tx"], gy - q["ty"]
    u = (cos * x0 + sin * y0) / q["scale"]
    v = (-sin * x0 + cos * y0) / q["scale"]
    au = np.abs(u)  # the face is mirror-symmetric: paint each paired feature once
    side = np.sign(u)
    px = f32(2.0 / size)
    edge = px * (f32(1.0) + q["blur"]) / q["scale"]

    img = np.broadcast_to(q["background"], (b, size, size)).astype(f32)
    skin, hair = q["skin"], q["hair"]
    ha, hb, hy = q["head_a"], q["head_b"], q["head_y"]

    # Neck and back hair behind the head.
    neck = np.maximum(au - 0.55 * ha, hy + 0.4 - v)
    _paint(img, neck, skin * 0.8, edge)
    back = _ellipse(u, v, 0.0, hy - 0.08, ha * 1.12 + 0.06 * q["hair_volume"], hb * 1.02)
    back = np.maximum(back, v - (hy + 0.1 + 0.5 * q["hair_volume"]))
    _paint(img, back, hair, edge)

    # Head with radial shading, then the fringe above the hairline.
    head = _ellipse(u, v, 0.0, hy, ha, hb)
    r2 = (u / ha) ** 2 + ((v - hy) / hb) ** 2
    _paint(img, head, skin * (1.0 - 0.3 * r2), edge)
    fringe = np.maximum(back, v - (q["hairline"] + 0.25 * u * u))
    _paint(img, fringe, hair, edge)

    # Brows: a thick quadratic stroke; s runs from -1 (outer end) to +1 (inner end).
    ey = q["eye_y"]
    bx, blen = q["eye_dx"], q["brow_len"]
    s = np.clip((bx - au) / blen, -1.0, 1.0)
    brow_y = (
        ey
        - q["brow_gap"]
        - q["brow_raise"]
        - side * q["brow_asym"]
        - q["brow_tilt"] * s
        - q["brow_arch"] * (1.0 - s * s)
    )
    brow = np.maximum(np.abs(v - brow_y) - 0.5 * q["brow_th"], np.abs(bx - au) - blen)
    _paint(img, brow, hair * 0.6, edge)

    # Eyes: dark lash outline, white, then iris clipped to the lids.
    ex, ew = q["eye_dx"], q["eye_w"]
    eh = q["eye_h"] * q["eye_open"]
    eye = _ellipse(au, v, ex, ey, ew, eh)
    _paint(img, eye - 0.018, skin * 0.35, edge)
    _paint(img, eye, np.float32(0.92), edge, alpha=0.85)
    iris = np.hypot(au - ex - side * q["gaze"], v - ey) - 0.062
    _paint(img, np.maximum(iris, eye), np.float32(0.08), edge)

    # Nose: a shadow on one side, nostrils, and the wrinkle lines of disgust.
    ny = q["nose_y"]
    ridge = _segment(u, v, 0.05, ny - 0.16, 0.07, ny - 0.03) - 0.02
    _paint(img, ridge, skin * 0.75, edge, alpha=0.5)
    nostril = _ellipse(au, v, 0.065, ny, 0.04, 0.022)
    _paint(img, nostril, skin * 0.35, edge)
    # Three slanted lines 0.04 apart on the nose bridge: distance to the nearest line of a
    # periodic family, cut to a box.
    w = v + 0.36 * au - (ey + 0.085)
    lines = np.abs(w - 0.04 * np.round(w / 0.04))
    wrinkle = np.maximum(np.maximum(lines, au - 0.07), np.abs(w - 0.04) - 0.05) - 0.01
    _paint(img, wrinkle, skin * 0.5, edge, alpha=q["wrinkle"])

    # Nasolabial folds, from beside the nostrils towards the mouth corners.
    my = q["mouth_y"] + q["mouth_shift"]
    mw = q["mouth_w"] * q["mouth_width"]
    corner_y = my - q["mouth_curv"]
    fold = _segment(au, v, 0.13, ny - 0.02, mw + 0.05, corner_y + 0.03) - 0.012
    _paint(img, fold, skin * 0.55, edge, alpha=q["fold"])

    # Mouth: the lip-gap centreline yc(t) bends by mouth_curv; the gap is an ellipse of height h.
    t = u / mw
    t2 = np.minimum(t * t, 1.0)
    yc = my + q["mouth_curv"] * (0.3 - t2)
    h = q["mouth_open"] * np.sqrt(1.0 - t2)
    lips = np.maximum(np.abs(v - yc) - (h + 0.045), au - mw * 1.05)
    _paint(img, lips, skin * 0.72, edge)
    gap = np.maximum(np.abs(v - yc) - (h + 0.011), au - mw)
    _paint(img, gap, np.float32(0.08), edge)
    teeth = np.maximum(gap, v - (yc - 0.25 * h))
    _paint(img, teeth, np.float32(0.9), edge, alpha=q["teeth"] * np.clip(h / 0.02, 0.0, 1.0))

    # Occluder (a hand, glasses, a scarf) in image coordinates.
    occ = np.maximum(np.abs(gx - q["occ_x"]) - q["occ_w"], np.abs(gy - q["occ_y"]) - q["occ_h"])
    _paint(img, occ, q["occ_tone"], edge, alpha=q["occluded"])

    # Lighting gradient, global brightness / contrast, sensor noise.
    ramp = np.cos(q["light_dir"]) * gx + np.sin(q["light_dir"]) * gy
    img *= 1.0 + q["light"] * ramp
    img = (img - 0.5) * q["contrast"] + 0.5 + q["brightness"]
    img += q["noise"] * noise
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
