"""Bootstrap intervals of the geometry scalars: compactness, class separation, Fisher ratio.

:func:`resampled_geometry` evaluates the three scalars on many weighted copies of one embedding at
once (the weights are bootstrap multiplicities), so :func:`geometry_bootstrap` and
:func:`paired_geometry_bootstrap` never materialise a resampled array. Definitions as in
:mod:`ferembed.metrics.geometry`.

The intervals are recentred percentile intervals (:data:`GEOMETRY_CI_METHOD`,
:func:`~ferembed.metrics.bootstrap.recentred_interval`): a resample's centroids carry extra noise,
which moves the nearest-centroid distance and the between-class scatter away from the estimate
(for a collapsed embedding every resampled separation lies above it), so the plain percentile
interval, and BCa with it, can miss the estimate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ferembed.metrics._kernels import class_slices, unit64
from ferembed.metrics._validation import (
    check_bootstrap_options,
    check_embeddings,
    check_labelled,
    require_classes,
)
from ferembed.metrics.bootstrap import recentred_interval

__all__ = [
    "GEOMETRY_CI_METHOD",
    "geometry_bootstrap",
    "paired_geometry_bootstrap",
    "resampled_geometry",
]

#: The interval method of every geometry scalar (``metrics.json``'s ``ci_method``).
GEOMETRY_CI_METHOD = "recentred"


_BOOT_CELLS = 4_000_000  # resample weights held at once (rows x samples), ~32 MB of float64


def resampled_geometry(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Compactness, class separation and Fisher ratio of weighted copies of one embedding.

    Row ``b`` of ``weights`` gives each sample its multiplicity in copy ``b`` (the counts of a
    bootstrap resample), so ``weights[b] = bincount(idx, minlength=N)`` gives exactly the values
    of the plain functions on ``x[idx], y[idx]``; centroids are recomputed for every copy.

    * ``compactness``: mean distance of a sample to its own class centroid
      (:func:`distance_to_centroid`, averaged over samples);
    * ``class_separation``: mean over present classes of the distance from the class centroid
      to the nearest other class centroid (:func:`separation`'s ``nearest_distance``);
    * ``fisher_ratio``: :func:`fisher_ratio` of the vectors as given.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.
        weights: (B, N) non-negative sample multiplicities; every class present in ``y`` must
            keep a positive total weight in every row.
        distance: ``"cosine"`` or ``"euclidean"`` (compactness and separation).
        num_classes: K (default ``max(y) + 1``).

    Returns:
        ``{"compactness", "class_separation", "fisher_ratio"}``, each a (B,) float64 array.
    """
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    require_classes(counts, "resampled_geometry")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != x.shape[0] or (w < 0).any():
        raise ValueError(f"weights must be a non-negative (B, {x.shape[0]}) array, got {w.shape}")
    return _resampled(_class_blocks(x, y, k, distance), w, distance)


class _Block(NamedTuple):
    """One present class, prepared once for any number of weight chunks."""

    label: int
    idx: np.ndarray  # its rows
    xg: np.ndarray  # the vectors as given, float64 (Fisher)
    xd: np.ndarray  # the vectors in the distance's geometry (unit rows for cosine)
    sq_given: np.ndarray  # squared norms of xg


def _class_blocks(x: np.ndarray, y: np.ndarray, k: int, distance: str) -> list[_Block]:
    order, starts = class_slices(y, k)
    blocks = []
    for c in range(k):
        idx = order[starts[c] : starts[c + 1]]
        if idx.size:
            xg = x[idx].astype(np.float64)
            xd = unit64(xg) if distance == "cosine" else xg
            blocks.append(_Block(c, idx, xg, xd, np.einsum("ij,ij->i", xg, xg)))
    return blocks


def _resampled(blocks: list[_Block], w: np.ndarray, distance: str) -> dict[str, np.ndarray]:
    """:func:`resampled_geometry` on prepared class blocks and validated (B, N) weights."""
    cos = distance == "cosine"
    b, kp, d = w.shape[0], len(blocks), blocks[0].xg.shape[1]
    total = w.sum(axis=1)
    comp = np.zeros(b)
    within = np.zeros(b)
    cent = np.zeros((b, kp, d))  # for separation (unit directions if cosine)
    mean_given = np.zeros((b, kp, d))  # for Fisher (vectors as given)
    n_c = np.zeros((b, kp))
    for j, blk in enumerate(blocks):
        wc = w[:, blk.idx]
        nc = wc.sum(axis=1)
        if (nc <= 0).any():
            raise ValueError(f"class {blk.label} has zero total weight in some rows of weights")
        n_c[:, j] = nc
        sums = wc @ blk.xd
        m = sums / nc[:, None]
        if cos:
            u = unit64(m)
            comp += nc - np.einsum("bd,bd->b", sums, u)
            cent[:, j] = u
        else:
            xd = blk.xd
            sq = blk.sq_given[:, None] - 2 * xd @ m.T + (m * m).sum(1)[None, :]
            comp += np.einsum("bi,ib->b", wc, np.sqrt(np.maximum(sq, 0.0)))
            cent[:, j] = m
        mg = (wc @ blk.xg if cos else sums) / nc[:, None]
        within += wc @ blk.sq_given - nc * np.einsum("bd,bd->b", mg, mg)
        mean_given[:, j] = mg
    if cos:
        dm = 1.0 - np.einsum("bkd,bld->bkl", cent, cent)
    else:
        diff = cent[:, :, None, :] - cent[:, None, :, :]
        dm = np.sqrt(np.einsum("bkld,bkld->bkl", diff, diff))
    eye = np.eye(kp, dtype=bool)
    sep = np.where(eye[None], np.inf, dm).min(axis=2).mean(axis=1)
    mu = np.einsum("bk,bkd->bd", n_c, mean_given) / total[:, None]
    dc = mean_given - mu[:, None, :]
    between = np.einsum("bk,bkd,bkd->b", n_c, dc, dc)
    with np.errstate(divide="ignore", invalid="ignore"):
        fisher = np.where(within > 0, between / within, np.where(between > 0, np.inf, np.nan))
    return {"compactness": comp / total, "class_separation": sep, "fisher_ratio": fisher}


def _stratified_weights(y: np.ndarray, k: int, n_boot: int, seed: int):
    """Yield (rows, N) chunks of class-stratified bootstrap multiplicities (class sizes kept)."""
    rng = np.random.default_rng(seed)
    order, starts = class_slices(y, k)
    n = y.size
    step = max(1, _BOOT_CELLS // n)
    for s in range(0, n_boot, step):
        rows = min(step, n_boot - s)
        w = np.zeros((rows, n))
        for c in range(k):
            idx = order[starts[c] : starts[c + 1]]
            if idx.size == 0:
                continue
            draws = rng.integers(0, idx.size, size=(rows, idx.size))
            flat = (draws + np.arange(rows)[:, None] * idx.size).ravel()
            w[:, idx] = np.bincount(flat, minlength=rows * idx.size).reshape(rows, idx.size)
        yield w


def _interval(values: np.ndarray, estimate: float, alpha: float) -> tuple[float, float]:
    """Recentred percentile interval of the finite resampled values (NaN, NaN when none)."""
    if not np.isfinite(estimate):
        return float("nan"), float("nan")
    return recentred_interval(values, estimate, alpha)


def _checked(x, y, distance, num_classes, n_boot, alpha, what: str):
    """Validate the inputs and options of a bootstrap: ``(x, y, K)``."""
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    check_bootstrap_options(n_boot, alpha)
    require_classes(counts, what)
    return x, y, k


def geometry_bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Class-stratified bootstrap intervals of the :func:`resampled_geometry` scalars.

    Each resample draws every class's members with replacement (class sizes kept), and the
    centroids are recomputed, so the intervals include the centroids' own sampling error. The
    interval is the recentred percentile one (:data:`GEOMETRY_CI_METHOD`), which contains the
    estimate.

    Returns:
        ``{"compactness": (low, high), "class_separation": ..., "fisher_ratio": ...}``.
    """
    x, y, k = _checked(x, y, distance, num_classes, n_boot, alpha, "geometry_bootstrap")
    blocks = _class_blocks(x, y, k, distance)
    point = _resampled(blocks, np.ones((1, y.size)), distance)
    parts = [_resampled(blocks, w, distance) for w in _stratified_weights(y, k, n_boot, seed)]
    return {
        key: _interval(np.concatenate([p[key] for p in parts]), float(point[key][0]), alpha)
        for key in point
    }


def paired_geometry_bootstrap(
    xa: np.ndarray,
    xb: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    num_classes: int | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired difference ``B - A`` of the geometry scalars of two embeddings of the same samples.

    Both embeddings are resampled with the same class-stratified multiplicities, so the interval
    of the difference reflects only what differs between the two embeddings (recentred on the
    difference, :data:`GEOMETRY_CI_METHOD`). Fisher uses the vectors as given: pass unit rows for
    a cosine run, as ``evaluate`` does (``ferembed.metrics.compare`` does).

    Returns:
        ``{key: {"a", "b", "diff", "ci_low", "ci_high"}}`` for ``compactness``,
        ``class_separation`` and ``fisher_ratio``.
    """
    xa, y, k = _checked(xa, y, distance, num_classes, n_boot, alpha, "paired_geometry_bootstrap")
    xb, _ = check_embeddings(xb, y)
    blocks_a, blocks_b = _class_blocks(xa, y, k, distance), _class_blocks(xb, y, k, distance)
    ones = np.ones((1, y.size))
    point_a, point_b = _resampled(blocks_a, ones, distance), _resampled(blocks_b, ones, distance)
    diffs: dict[str, list[np.ndarray]] = {}
    for w in _stratified_weights(y, k, n_boot, seed):
        ga, gb = _resampled(blocks_a, w, distance), _resampled(blocks_b, w, distance)
        for key in ga:
            diffs.setdefault(key, []).append(gb[key] - ga[key])
    out = {}
    for key, parts in diffs.items():
        a, b = float(point_a[key][0]), float(point_b[key][0])
        lo, hi = _interval(np.concatenate(parts), b - a, alpha)
        out[key] = {"a": a, "b": b, "diff": b - a, "ci_low": lo, "ci_high": hi}
    return out
