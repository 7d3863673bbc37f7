"""R-precision, AP@R and the k nearest neighbours of score rows, compiled with numba.

The same results as the NumPy path of :func:`ferembed.metrics.retrieval.compute_retrieval`
(``_r_metrics_keys`` + ``topk_from_scores``), with the same ranking rules, in O(N + R) per row
instead of a partition over N and a comparison sort of R: every score becomes a 32-bit key that
sorts like the float (``-0.0`` as ``+0.0``), shifted left with the lowest bit set for an
irrelevant reference (so an exact tie ranks the irrelevant one first). A histogram of the keys'
top bits (about N / 4 bins) finds which keys can be among the top ``max(R, k)``; only those
candidates are collected and radix-sorted (11 bits per pass). The k nearest neighbours are the
candidates at or above the k-th score, ordered by (score desc, column asc).

numba comes with umap-learn (a requirement); :data:`AVAILABLE` is False without it, and the
caller then uses the NumPy path. The first call compiles the kernel (cached on disk afterwards).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba ships with umap-learn
    numba = None

#: Whether the compiled kernel can be used.
AVAILABLE = numba is not None

_MAX_TOP_BITS = 16  # histogram of the keys' top bits: at most 65,536 bins, about N / 4
_RADIX = 11  # bits per radix pass


def _key32(bits):  # order-preserving map of float32 bits to uint32, -0.0 onto +0.0
    key = bits ^ (np.uint32(0x80000000) | ((bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF)))
    return key + np.uint32(bits == np.uint32(0x80000000))


def _radix_sort(a, tmp, n, counts):
    """Sort ``a[:n]`` (uint64) ascending, LSD radix on the span above the minimum; returns the
    buffer (``a`` or ``tmp``) that holds the result."""
    lo = a[0]
    hi = a[0]
    for i in range(n):
        if a[i] < lo:
            lo = a[i]
        if a[i] > hi:
            hi = a[i]
    span = hi - lo
    src, dst = a, tmp
    shift = np.uint64(0)
    mask = np.uint64((1 << _RADIX) - 1)
    while shift == 0 or (span >> shift) > 0:
        counts[:] = 0
        for i in range(n):
            counts[((src[i] - lo) >> shift) & mask] += 1
        total = 0
        for d in range(counts.size):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(n):
            d = ((src[i] - lo) >> shift) & mask
            dst[counts[d]] = src[i]
            counts[d] += 1
        src, dst = dst, src
        shift += np.uint64(_RADIX)
        if shift >= 64:
            break
    return src


def _rank_rows(
    s, other, self_cols, has_self, k, big_r, top_bits, r_prec, ap, indices, scores, work
):
    """For each row of ``s`` (B, N) float32: R-precision, AP@R, top-k columns and scores.

    ``other`` (N,) uint8: 1 for references of another class; ``self_cols`` (B,) int64 own
    column of each row (ignored unless ``has_self``); ``work`` a (3, N) uint64 scratch buffer.
    """
    b, n = s.shape
    m = max(k, big_r)
    hist = np.zeros(1 << top_bits, np.int64)
    counts = np.zeros(1 << _RADIX, np.int64)
    cand, tmp, cols = work[0], work[1], work[2]
    bits = s.view(np.uint32)
    sel_key = np.empty(n, np.int64)
    sel_col = np.empty(n, np.int64)
    shift = np.uint32(32 - top_bits)
    for i in range(b):
        row = bits[i]
        hist[:] = 0
        for j in range(n):
            hist[_key32(row[j]) >> shift] += 1
        own = self_cols[i] if has_self else -1
        if own >= 0:
            hist[_key32(row[own]) >> shift] -= 1
        top = hist.size - 1
        cum = hist[top]
        while cum < m:
            top -= 1
            cum += hist[top]
        c = 0
        for j in range(n):  # branch-free append of the candidates
            u = _key32(row[j])
            cand[c] = (np.uint64(u) << np.uint64(1)) | np.uint64(other[j])
            cols[c] = j
            c += ((u >> shift) >= top) & (j != own)
        ranked = _radix_sort(cand, tmp, c, counts)
        n_rel = 0
        acc = 0.0
        for t in range(big_r):
            rel = 1 - np.int64(ranked[c - 1 - t] & np.uint64(1))
            n_rel += rel
            acc += rel * n_rel / (t + 1.0)
        if big_r > 0:
            r_prec[i] = n_rel / big_r
            ap[i] = acc / big_r
        kth = ranked[c - k] >> np.uint64(1)
        # the candidates at or above the k-th score, in column order (cols ascending)
        g = 0
        for t in range(c):
            col = cols[t]
            u = np.uint64(_key32(row[col]))
            if u >= kth:
                sel_key[g] = -np.int64(u)
                sel_col[g] = col
                g += 1
        order = np.argsort(sel_key[:g], kind="mergesort")  # stable: column asc within ties
        for t in range(k):
            col = sel_col[order[t]]
            indices[i, t] = col
            scores[i, t] = s[i, col]


if AVAILABLE:
    _key32 = numba.njit(inline="always", nogil=True, cache=True)(_key32)
    _radix_sort = numba.njit(nogil=True, cache=True)(_radix_sort)
    _rank_rows = numba.njit(nogil=True, cache=True)(_rank_rows)


def rank_rows(
    s: np.ndarray,
    other: np.ndarray,
    self_cols: np.ndarray | None,
    k: int,
    big_r: int,
    work: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(r_precision (B,), ap_at_r (B,), indices (B, k) int64, scores (B, k) float32)`` of the
    score rows ``s`` (B, N) float32 (own column ignored when ``self_cols`` is given).

    ``big_r = 0`` (lone queries) gives NaN R-metrics and the neighbours only. ``work`` is a dict
    of scratch buffers reused across calls of one thread.
    """
    b, n = s.shape
    buf = work.get("rank")
    if buf is None or buf.shape[1] < n:
        buf = work["rank"] = np.empty((3, n), np.uint64)
    r_prec = np.full(b, np.nan)
    ap = np.full(b, np.nan)
    indices = np.empty((b, k), np.int64)
    scores = np.empty((b, k), np.float32)
    has_self = self_cols is not None
    own = np.asarray(self_cols, np.int64) if has_self else np.zeros(b, np.int64)
    top_bits = int(np.clip(np.log2(max(n, 1)) - 2, 8, _MAX_TOP_BITS))
    _rank_rows(
        np.ascontiguousarray(s),
        other,
        own,
        has_self,
        k,
        big_r,
        top_bits,
        r_prec,
        ap,
        indices,
        scores,
        buf,
    )
    return r_prec, ap, indices, scores
