"""Bootstrap intervals of the geometry scalars: compactness, class separation, Fisher ratio.

:func:`resampled_geometry` evaluates the three scalars on many weighted copies of one embedding at
once (the weights are bootstrap multiplicities), so :func:`geometry_bootstrap` and
:func:`paired_geometry_bootstrap` never materialise a resampled array. Definitions as in
:mod:`ferembed.metrics.geometry`.

How a resample is evaluated: every scalar is a function of each class's weighted count, weighted
sum and weighted sum of squares. Each class's rows are stored once as residuals from the class
mean, ``r_i = x_i - m`` (in the distance's geometry: float64 unit rows for cosine), with one
extra column ``|r_i|^2 - mean |r|^2``; one product ``W @ [r, q]`` per class then gives, for a
whole batch of resamples, the resampled sum ``n_b m + W r`` and sum of squares. Centring keeps
that product accurate in float32 (the bootstrap's products run in float32, a single pass over
the rows per batch of 64+ resamples; the weights are exact integers): the error of a float32 sum
of residuals is relative to the residuals' spread, not to the class mean. The point estimate uses
float64 throughout.

The intervals are recentred percentile intervals (:data:`GEOMETRY_CI_METHOD`,
:func:`~ferembed.metrics.bootstrap.recentred_interval`): a resample's centroids carry extra noise,
which moves the nearest-centroid distance and the between-class scatter away from the estimate
(for a collapsed embedding every resampled separation lies above it), so the plain percentile
interval, and BCa with it, can miss the estimate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ferembed.metrics._kernels import class_slices, class_sums, each_chunk, row_chunks, unit64
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

# The random draws are made in chunks of this many (resample x sample) cells, class by class
# within a chunk: this order fixes the resamples a seed gives, so it must not change.
_BOOT_CELLS = 4_000_000
# Resample weights per product (float32 cells, 256 MB): enough resamples per pass over the rows
# that the products run near BLAS peak.
_BATCH_CELLS = 1 << 26


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
    blocks = _class_blocks(x, y, k, distance, np.float64)
    return _resampled(blocks, [w[:, blk.idx] for blk in blocks], distance)


class _Block(NamedTuple):
    """One present class, prepared once for any number of resamples."""

    label: int
    idx: np.ndarray  # its rows
    m: np.ndarray  # (D,) float64 class mean in the distance's geometry (of unit rows for cosine)
    r: np.ndarray  # (D + 1, n) [rows - m, q - mean(q)]^T in the products' dtype
    q: np.ndarray  # (n,) float64 squared residuals |rows - m|^2
    mg: np.ndarray  # (D,) float64 mean of the vectors as given (Fisher)
    rg: np.ndarray | None  # as ``r`` for the vectors as given, None where they are the same
    qg: np.ndarray  # (n,) float64 squared residuals of the vectors as given


def _class_means(x: np.ndarray, y: np.ndarray, k: int, cos: bool):
    """(K, D) float64 class means of the rows (unit64 rows for cosine) and of the rows as given
    (the class sums are shared with the other geometry metrics inside ``evaluate``)."""
    counts = np.maximum(np.bincount(y, minlength=k), 1)[:, None]
    means_g = class_sums(x, y, k) / counts
    return (class_sums(x, y, k, unit=True) / counts if cos else means_g), means_g


def _unit_rows(x: np.ndarray) -> bool:
    """Whether every row has unit norm to float32 rounding (a cosine run's normalised rows)."""
    for sl in row_chunks(x.shape[0]):
        xb = x[sl].astype(np.float64)
        if np.any(np.abs(np.einsum("ij,ij->i", xb, xb) - 1.0) > 2e-6):
            return False
    return True


def _class_blocks(x: np.ndarray, y: np.ndarray, k: int, distance: str, dtype) -> list[_Block]:
    """The present classes' residual blocks, products in ``dtype`` (two passes over ``x``).

    For cosine on rows that are already unit vectors (to float32 rounding, as ``evaluate``
    passes them), the resampled Fisher ratio reuses the unit rows' residuals instead of a second
    product over the rows as given: the two differ by float32 rounding (~1e-8 relative). The
    point estimate always uses the rows as given.
    """
    cos = distance == "cosine"
    separate = cos and not _unit_rows(x)
    means_d, means_g = _class_means(x, y, k, cos)
    order, starts = class_slices(y, k)
    d = x.shape[1]
    blocks = []
    for c in range(k):
        idx = order[starts[c] : starts[c + 1]]
        if not idx.size:
            continue
        m, mg = means_d[c], means_g[c]
        # Filled row by row (contiguous writes), used transposed: (D + 1, n) @ (n, B) runs several
        # times faster than (B, n) @ (n, D + 1), and BLAS reads the transposed view as it is.
        r = np.empty((idx.size, d + 1), dtype=dtype)
        rg = np.empty((idx.size, d + 1), dtype=dtype) if separate else None
        q, qg = np.empty(idx.size), np.empty(idx.size)

        def fill(sl: slice, idx=idx, m=m, mg=mg, r=r, rg=rg, q=q, qg=qg) -> None:
            xc = x[idx[sl]].astype(np.float64)
            rc = (unit64(xc) if cos else xc) - m
            q[sl] = np.einsum("ij,ij->i", rc, rc)
            r[sl, :d] = rc
            if cos:
                xc -= mg
                qg[sl] = np.einsum("ij,ij->i", xc, xc)
                if separate:
                    rg[sl, :d] = xc

        each_chunk(fill, idx.size)  # on threads (NumPy releases the GIL)
        r[:, d] = q - q.mean()
        if not cos:
            qg = q
        if separate:
            rg[:, d] = qg - qg.mean()
        blocks.append(_Block(c, idx, m, r.T, q, mg, None if rg is None else rg.T, qg))
    return blocks


def _scalars(n_c, comp, within, cent, mean_given, distance: str) -> dict[str, np.ndarray]:
    """The three scalars from per-resample class counts (B, K'), compactness sums (B,), within
    sums of squares (B,), centroids (B, K', D) and means as given (B, K', D)."""
    total = n_c.sum(axis=1)
    kp = n_c.shape[1]
    if distance == "cosine":
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


def _point(blocks: list[_Block], distance: str) -> dict[str, np.ndarray]:
    """The scalars of the embedding itself (every weight 1), in float64 from the class means."""
    cos = distance == "cosine"
    n_c = np.array([[blk.idx.size for blk in blocks]], dtype=np.float64)
    comp, within = np.zeros(1), np.zeros(1)
    cent = np.stack([unit64(blk.m[None])[0] if cos else blk.m for blk in blocks])[None]
    for blk in blocks:
        n = blk.idx.size
        comp += n - n * float(np.sqrt(blk.m @ blk.m)) if cos else np.sqrt(blk.q).sum()
        within += blk.qg.sum()
    mean_given = np.stack([blk.mg for blk in blocks])[None]
    return _scalars(n_c, comp, within, cent, mean_given, distance)


def _resampled(blocks: list[_Block], wblocks: list[np.ndarray], distance: str):
    """:func:`resampled_geometry` on prepared class blocks and each class's (B, n_c) weights."""
    cos = distance == "cosine"
    b, kp, d = wblocks[0].shape[0], len(blocks), blocks[0].m.size
    comp = np.zeros(b)
    within = np.zeros(b)
    cent = np.zeros((b, kp, d))  # for separation (unit directions if cosine)
    mean_given = np.zeros((b, kp, d))  # for Fisher (vectors as given)
    n_c = np.zeros((b, kp))
    for j, (blk, wc) in enumerate(zip(blocks, wblocks, strict=True)):
        nc = wc.sum(axis=1, dtype=np.float64)
        if (nc <= 0).any():
            raise ValueError(f"class {blk.label} has zero total weight in some rows of weights")
        n_c[:, j] = nc
        g = (blk.r @ wc.T).T.astype(np.float64)  # weighted residual sums, and squares minus mean
        e = g[:, :d]
        if cos:
            sums = nc[:, None] * blk.m + e
            norm = np.sqrt(np.einsum("bd,bd->b", sums, sums))
            comp += nc - norm
            cent[:, j] = np.divide(
                sums, norm[:, None], out=np.zeros_like(sums), where=norm[:, None] > 0
            )
        else:
            delta = e / nc[:, None]  # the resampled centroid minus the class mean
            cross = (delta.astype(blk.r.dtype) @ blk.r[:d]).T.astype(np.float64)
            sq = blk.q[:, None] - 2.0 * cross + np.einsum("bd,bd->b", delta, delta)[None, :]
            comp += np.einsum("bi,ib->b", wc, np.sqrt(np.maximum(sq, 0.0)))
            cent[:, j] = blk.m + delta
        if blk.rg is not None:
            gg = (blk.rg @ wc.T).T.astype(np.float64)
            eg, wq = gg[:, :d], gg[:, d] + nc * blk.qg.mean()
        else:
            eg, wq = e, g[:, d] + nc * blk.q.mean()
        within += wq - np.einsum("bd,bd->b", eg, eg) / nc
        mean_given[:, j] = blk.mg + eg / nc[:, None]
    return _scalars(n_c, comp, within, cent, mean_given, distance)


def _stratified_weights(
    blocks: list[_Block], n: int, n_boot: int, seed: int, dtype=np.float32
) -> Iterator[list[np.ndarray]]:
    """Yield batches of class-stratified bootstrap multiplicities, one (rows, n_c) array per
    class block (class sizes kept).

    The draws are made chunk by chunk (:data:`_BOOT_CELLS`) and class by class within a chunk,
    ``rng.integers(0, n_c, size=(rows, n_c))``: a seed always gives the same resamples. Chunks
    are gathered into batches of about :data:`_BATCH_CELLS` weights for the products.
    """
    rng = np.random.default_rng(seed)
    step = max(1, _BOOT_CELLS // n)
    per_batch = max(step, (_BATCH_CELLS // n) // step * step)
    for s0 in range(0, n_boot, per_batch):
        rows_b = min(per_batch, n_boot - s0)
        batch = [np.empty((rows_b, blk.idx.size), dtype=dtype) for blk in blocks]
        for s in range(s0, s0 + rows_b, step):
            rows = min(step, s0 + rows_b - s)
            for out, blk in zip(batch, blocks, strict=True):
                size = blk.idx.size
                draws = rng.integers(0, size, size=(rows, size))
                for r in range(rows):
                    out[s - s0 + r] = np.bincount(draws[r], minlength=size)
        yield batch


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
    estimate. Cost: one float32 product over the rows per batch of resamples
    (O(n_boot N D) multiply-adds in all) plus ``n_boot * N`` integer draws.

    Returns:
        ``{"compactness": (low, high), "class_separation": ..., "fisher_ratio": ...}``.
    """
    x, y, k = _checked(x, y, distance, num_classes, n_boot, alpha, "geometry_bootstrap")
    blocks = _class_blocks(x, y, k, distance, np.float32)
    point = _point(blocks, distance)
    parts = [
        _resampled(blocks, w, distance) for w in _stratified_weights(blocks, y.size, n_boot, seed)
    ]
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
    blocks_a = _class_blocks(xa, y, k, distance, np.float32)
    blocks_b = _class_blocks(xb, y, k, distance, np.float32)
    point_a, point_b = _point(blocks_a, distance), _point(blocks_b, distance)
    diffs: dict[str, list[np.ndarray]] = {}
    for w in _stratified_weights(blocks_a, y.size, n_boot, seed):
        ga, gb = _resampled(blocks_a, w, distance), _resampled(blocks_b, w, distance)
        for key in ga:
            diffs.setdefault(key, []).append(gb[key] - ga[key])
    out = {}
    for key, parts in diffs.items():
        a, b = float(point_a[key][0]), float(point_b[key][0])
        lo, hi = _interval(np.concatenate(parts), b - a, alpha)
        out[key] = {"a": a, "b": b, "diff": b - a, "ci_low": lo, "ci_high": hi}
    return out
