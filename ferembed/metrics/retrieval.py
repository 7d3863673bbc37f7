"""Retrieval metrics: precision@k, recall@k, R-precision, MAP@R and kNN-vote accuracy.

Two protocols, as in pytorch-metric-learning's ``AccuracyCalculator``:

* **leave-one-out** (``reference=None``): every query is searched against all the other rows of
  the same run;
* **query vs reference** (``reference=...``, e.g. test vs train): queries are searched against a
  different set; nothing is excluded.

For a query of class ``c``, ``R`` is the number of references of class ``c`` (minus the query
itself in leave-one-out). A *lone* query (``R = 0``: a class with one sample, or a class absent from
the reference) has no relevant item: its precision@k, recall@k, R-precision and MAP@R are NaN and it
is left out of the means, as PML does. kNN-vote accuracy counts every query.

Definitions, for a query with neighbours ordered nearest first and ``rel(i)`` = 1 when the i-th
neighbour has the query's class:

* precision@k = (1/k) sum_{i<=k} rel(i)
* recall@k = 1 if any of the first k neighbours is relevant else 0: the "Recall@K" of deep
  metric learning papers (Oh Song et al., 2016), not the IR ratio |relevant in top k| / R.
* R-precision = (1/R) sum_{i<=R} rel(i)
* MAP@R = (1/R) sum_{i<=R} P(i) rel(i), with P(i) the precision of the first i neighbours
  (Musgrave et al., 2020, "A Metric Learning Reality Check").

How R-precision and MAP@R are computed without an N x R matrix: queries are grouped by class (one R
per group) and searched in blocks of rows; memory is the blocks of scores in flight plus the
temporaries of a few rows at a time. Every score becomes an int32 key that sorts like (score,
irrelevant): the scores are scaled by a power of two into (-1, 1) (exact), their float bits mapped
to an order-preserving 31-bit integer, shifted left, and the freed lowest bit set for references
of another class. One integer partition finds each row's top R keys; sorting those (R log R)
orders them, and the lowest bits say which ranks hold relevant items. The work per query is
O(N + R log R) after the score product, whatever the quality of the embedding.

Ties: kNN order follows ``ferembed._search`` (score desc, reference row asc). For R-precision
and MAP@R an exact score tie between a relevant and an irrelevant reference is ranked
*pessimistically* (the irrelevant one first), which makes them independent of row order. PML
breaks such ties by FAISS's order; the two agree whenever no relevant/irrelevant pair is exactly
tied (in particular with duplicates that share a class).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

import ferembed.metrics._rank_kernel as _rank_kernel
from ferembed._arrays import prepare_embeddings
from ferembed._search import (
    KNN,
    block_plan,
    check_queries,
    compute_knn,
    map_score_blocks,
    nonzero_2d,
    scores_to_distances,
    spans_of,
    sub_rows,
    topk_from_scores,
)
from ferembed.metrics._validation import check_distance, check_embeddings
from ferembed.metrics.classification import knn_vote

__all__ = [
    "Retrieval",
    "compute_retrieval",
    "knn_accuracy",
    "map_at_r",
    "map_at_r_samples",
    "precision_at_k",
    "precision_at_k_samples",
    "r_precision",
    "r_precision_samples",
    "recall_at_k",
    "recall_at_k_samples",
]


@dataclass(frozen=True)
class Retrieval:
    """Per-query results of one search, from which every retrieval metric is read.

    Attributes:
        knn: the k nearest neighbours of each query (:class:`~ferembed._search.KNN`).
        labels: (Q,) int64 query labels.
        neighbor_labels: (Q, k) int64 reference labels of the neighbours.
        r: (Q,) int64 number of relevant references R (0 = lone query).
        r_precision: (Q,) float64 R-precision, NaN for lone queries; None if not computed.
        map_at_r: (Q,) float64 MAP@R, NaN for lone queries; None if not computed.
    """

    knn: KNN
    labels: np.ndarray
    neighbor_labels: np.ndarray
    r: np.ndarray
    r_precision: np.ndarray | None = None
    map_at_r: np.ndarray | None = None

    @property
    def queries(self) -> np.ndarray:
        """(Q,) int64 query rows."""
        return self.knn.queries

    @property
    def lone(self) -> np.ndarray:
        """(Q,) bool: queries without any relevant reference."""
        return self.r == 0

    def precision_at_k(self, k: int = 1) -> np.ndarray:
        """(Q,) float64 precision@k per query (NaN for lone queries)."""
        hits = self._hits(k)
        return np.where(self.lone, np.nan, hits.mean(axis=1))

    def recall_at_k(self, k: int = 1) -> np.ndarray:
        """(Q,) float64 recall@k (hit rate) per query (NaN for lone queries)."""
        hits = self._hits(k)
        return np.where(self.lone, np.nan, hits.any(axis=1).astype(np.float64))

    def _hits(self, k: int) -> np.ndarray:
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.knn.k:
            raise ValueError(
                f"k must be an integer in [1, {self.knn.k}] (the search's k), got {k!r}"
            )
        return self.neighbor_labels[:, :k] == self.labels[:, None]


def compute_retrieval(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: int = 10,
    distance: str = "cosine",
    reference: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
    queries: np.ndarray | None = None,
    device: str | None = None,
    backend: str | None = None,
    r_metrics: bool = True,
    chunk_size: int | None = None,
    compiled: bool | None = None,
) -> Retrieval:
    """One exact search that feeds every retrieval metric (and the kNN-based ones elsewhere).

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.
        k: neighbours kept per query (for precision@k, recall@k, kNN vote).
        distance: ``"cosine"`` or ``"euclidean"``.
        reference: (M, D) reference embeddings, or None for leave-one-out within ``x``.
        reference_labels: (M,) labels of ``reference`` (required with it).
        queries: (Q,) rows of ``x`` to query (e.g. a stratified sample), or None for all.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``: where the search runs
            (:func:`ferembed._search.compute_knn`); None: the engine's default.
        backend: ``"auto"``, ``"numpy"``, ``"faiss"`` or ``"torch"``; None: likewise.
        r_metrics: also compute R-precision and MAP@R (costs a partial sort per query).
        chunk_size: query rows per block (None: about 512 MiB of scores per block).
        compiled: rank the score rows with the numba kernel (:mod:`._rank_kernel`, O(N + R)
            per query) or the NumPy path (a partition and a sort per query); None: the kernel
            when numba is installed. Both give the same results.

    Returns:
        :class:`Retrieval`.

    Raises:
        ValueError: bad shapes, non-finite rows, missing reference labels, ``k`` out of range.
    """
    check_distance(distance)
    x, y = _check_xy(x, y)
    loo = reference is None
    if loo:
        ref_y = y
    else:
        if reference_labels is None:
            raise ValueError("reference_labels are required with reference")
        reference, ref_y = _check_xy(reference, reference_labels, name="reference")
        if reference.shape[1] != x.shape[1]:
            raise ValueError(
                f"reference has dimension {reference.shape[1]}, embeddings have {x.shape[1]}"
            )
    qidx = check_queries(queries, x.shape[0])
    n_ref = x.shape[0] if loo else reference.shape[0]
    n_cand = n_ref - int(loo)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n_cand:
        raise ValueError(
            f"k must be an integer in [1, {n_cand}] (the references available), got {k!r}"
        )
    qy = y[qidx]
    n_lab = int(max(qy.max(), ref_y.max())) + 1
    r = np.bincount(ref_y, minlength=n_lab)[qy] - int(loo)

    if not r_metrics:
        knn = compute_knn(
            x,
            k,
            distance=distance,
            reference=reference,
            queries=queries,
            chunk_size=chunk_size,
            device=device,
            backend=backend,
        )
        return Retrieval(knn=knn, labels=qy, neighbor_labels=ref_y[knn.indices], r=r)

    base = prepare_embeddings(x, distance)
    ref = base if loo else prepare_embeddings(reference, distance)
    indices = np.empty((qidx.size, k), dtype=np.int64)
    scores = np.empty((qidx.size, k), dtype=np.float32)
    r_prec = np.full(qidx.size, np.nan)
    ap = np.full(qidx.size, np.nan)
    # Queries grouped by class, so that every block shares one class and one R.
    order = np.argsort(qy, kind="stable")
    q_bounds = np.concatenate([[0], np.cumsum(np.bincount(qy, minlength=n_lab))])
    ref_counts = np.bincount(ref_y, minlength=n_lab)
    rows, workers = block_plan(n_ref, chunk_size)
    spans = [
        span
        for c in np.flatnonzero(np.diff(q_bounds))
        for span in spans_of(int(q_bounds[c + 1] - q_bounds[c]), rows, int(q_bounds[c]))
    ]
    # One key bit per reference: 1 when it is of another class than the block's queries.
    is_other = {c: (ref_y != c).astype(np.int32) for c in np.unique(qy) if ref_counts[c] > int(loo)}
    q_rows = qidx[order]
    if compiled is None:
        compiled = _rank_kernel.AVAILABLE
    other8 = {c: v.astype(np.uint8) for c, v in is_other.items()} if compiled else {}

    sub = sub_rows(n_ref)

    def block(start: int, stop: int, s_block: np.ndarray, work: dict) -> None:
        c = int(qy[order[start]])
        big_r = int(r[order[start]])
        if compiled:
            p = order[start:stop]
            other = other8.get(c, np.ones(n_ref, np.uint8))
            r_prec[p], ap[p], indices[p], scores[p] = _rank_kernel.rank_rows(
                s_block, other, q_rows[start:stop] if loo else None, k, big_r, work
            )
            return
        for a in range(start, stop, sub):  # post-process in sub-blocks: small temporaries
            b = min(a + sub, stop)
            s = s_block[a - start : b - start]
            p = order[a:b]  # positions in the output arrays
            if big_r == 0:  # lone queries: neighbours only
                indices[p], scores[p] = topk_from_scores(s, k)
                continue
            self_cols = q_rows[a:b] if loo else None
            kth, r_prec[p], ap[p] = _r_metrics_keys(s, is_other[c], self_cols, k, big_r, work)
            indices[p], scores[p] = topk_from_scores(s, k, kth_score=kth)

    engine = map_score_blocks(
        block,
        base[q_rows],
        ref,
        spans,
        distance=distance,
        self_rows=q_rows if loo else None,
        workers=workers,
        device=device,
        backend=backend,
    )
    knn = KNN(
        indices=indices,
        distances=scores_to_distances(scores, distance),
        queries=qidx,
        distance=distance,
        exclude_self=loo,
        backend=engine.backend,
        device=engine.device,
    )
    return Retrieval(
        knn=knn,
        labels=qy,
        neighbor_labels=ref_y[indices],
        r=r,
        r_precision=r_prec,
        map_at_r=ap,
    )


def _r_metrics_keys(
    s: np.ndarray,
    is_other: np.ndarray,
    self_cols: np.ndarray | None,
    k: int,
    big_r: int,
    work: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-precision and AP@R of a block of queries that share one class and one R, plus the k-th
    highest score of each row (for the kNN cut).

    Each score becomes an int32 key ordered like (score, irrelevant): the scores are scaled by a
    power of two into (-1, 1) (exact), the float bits mapped to an order-preserving integer that
    needs only 31 bits there, shifted left, and the lowest bit set for irrelevant references. One
    integer partition then finds the top R keys, whose sorted order gives every rank; an exact
    score tie between a relevant and an irrelevant reference ranks the irrelevant one first.

    Args:
        s: (B, N) float32 scores, own row -inf in leave-one-out (restored on return).
        is_other: (N,) int32, 1 for references of another class.
        self_cols: (B,) own column of each row in leave-one-out, else None.
        k: kNN size.
        big_r: R >= 1.
        work: scratch buffers reused across calls (an empty dict the first time).

    Returns:
        ``(kth_score (B,) float32, r_precision (B,), ap_at_r (B,))``.
    """
    b, n = s.shape
    rows = np.arange(b)
    if self_cols is not None:
        s[rows, self_cols] = 0.0  # the own row's -inf must not set the scale
    exp = int(np.frexp(max(abs(float(s.max())), abs(float(s.min())), 1e-30))[1])
    # In-place passes over two reused (B, N) buffers: fresh large arrays cost page faults.
    scaled, sign = work.get("scaled"), work.get("sign")
    if scaled is None or scaled.shape[0] < b or scaled.shape[1] != n:
        scaled = work["scaled"] = np.empty((b, n), np.float32)
        sign = work["sign"] = np.empty((b, n), np.int32)
    scaled, sign = scaled[:b], sign[:b]
    np.multiply(s, np.float32(2.0**-exp), out=scaled)  # |value| < 1; a power of two is exact
    scaled += np.float32(0.0)  # -0.0 -> +0.0
    if self_cols is not None:
        s[rows, self_cols] = -np.inf
        scaled[rows, self_cols] = -1.0  # below every other score
    keys = scaled.view(np.int32)
    # Order-preserving integer: flip the 31 low bits of negative values. |value| < 1 keeps
    # every key within 31 bits, so the shift below cannot overflow.
    np.right_shift(keys, 31, out=sign)
    sign &= 0x7FFFFFFF
    keys ^= sign
    keys <<= 1
    keys |= is_other[None, :]
    m = max(k, big_r)
    top = np.partition(keys, n - m, axis=1)[:, n - m :]  # the m highest keys, m-th first
    top_r = top if big_r == m else np.partition(top, m - big_r, axis=1)[:, m - big_r :]
    kth = (top[:, 0] if k == m else np.partition(top, m - k, axis=1)[:, m - k]) >> 1
    kth ^= (kth >> 31) & 0x7FFFFFFF  # the bit map is its own inverse
    kth_score = kth.view(np.float32) * np.float32(2.0**exp)
    # Ranks: sort the top R ascending, the nearest is last (rank 1).
    ranked = np.sort(top_r, axis=1)
    rrow, rcol = nonzero_2d((ranked & 1) == 0)  # relevant items, row-major, farthest first
    rank = big_r - rcol
    n_rel = np.bincount(rrow, minlength=b)
    end = np.cumsum(n_rel)
    j = end[rrow] - np.arange(rrow.size)  # 1-based position among the row's relevant items
    r_prec = n_rel / big_r
    ap = np.bincount(rrow, weights=j / rank, minlength=b) / big_r
    return kth_score, r_prec, ap


def _check_xy(x, y, *, name: str = "embeddings") -> tuple[np.ndarray, np.ndarray]:
    if y is None:
        raise ValueError(f"labels are required for {name}")
    x, y = check_embeddings(x, y, name=name)
    if y.min() < 0:
        raise ValueError(f"labels must be >= 0, got {y.min()}")
    return x, y


def nanmean(values: np.ndarray) -> float:
    """Mean over non-NaN entries; NaN (without a warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(values)) if values.size else float("nan")


# ---------------------------------------------------------------------------------------------
# Pure-function API: (embeddings, labels, *, options) -> per-sample array / mean.
# ---------------------------------------------------------------------------------------------


def precision_at_k_samples(x: np.ndarray, y: np.ndarray, *, k: int = 1, **options) -> np.ndarray:
    """Per-query precision@k, (Q,) float64, NaN for lone queries.

    Keyword options (``distance``, ``reference``, ``reference_labels``, ``queries``) as in
    :func:`compute_retrieval`; the same for every function below.
    """
    return _knn_retrieval(x, y, k, **options).precision_at_k(k)


def precision_at_k(x: np.ndarray, y: np.ndarray, *, k: int = 1, **options) -> float:
    """Mean precision@k over non-lone queries (``precision_at_1`` with ``k=1``)."""
    return nanmean(precision_at_k_samples(x, y, k=k, **options))


def recall_at_k_samples(x: np.ndarray, y: np.ndarray, *, k: int = 1, **options) -> np.ndarray:
    """Per-query recall@k (1 if a relevant item is among the k nearest), (Q,) float64, NaN for
    lone queries."""
    return _knn_retrieval(x, y, k, **options).recall_at_k(k)


def recall_at_k(x: np.ndarray, y: np.ndarray, *, k: int = 1, **options) -> float:
    """Mean recall@k (hit rate) over non-lone queries."""
    return nanmean(recall_at_k_samples(x, y, k=k, **options))


def r_precision_samples(x: np.ndarray, y: np.ndarray, **options) -> np.ndarray:
    """Per-query R-precision, (Q,) float64, NaN for lone queries (``chunk_size`` too)."""
    return compute_retrieval(x, y, k=1, **options).r_precision


def r_precision(x: np.ndarray, y: np.ndarray, **options) -> float:
    """Mean R-precision over non-lone queries (PML's ``r_precision``)."""
    return nanmean(r_precision_samples(x, y, **options))


def map_at_r_samples(x: np.ndarray, y: np.ndarray, **options) -> np.ndarray:
    """Per-query average precision at R, (Q,) float64, NaN for lone queries."""
    return compute_retrieval(x, y, k=1, **options).map_at_r


def map_at_r(x: np.ndarray, y: np.ndarray, **options) -> float:
    """MAP@R: mean of AP@R over non-lone queries (PML's ``mean_average_precision_at_r``)."""
    return nanmean(map_at_r_samples(x, y, **options))


def _knn_retrieval(x, y, k: int, **options) -> Retrieval:
    """The k-NN part of :func:`compute_retrieval` (no R-metrics)."""
    return compute_retrieval(x, y, k=k, r_metrics=False, **options)


def knn_accuracy(x: np.ndarray, y: np.ndarray, *, k: int = 10, **options) -> float:
    """Accuracy of the majority vote of the k nearest references (every query counts).

    The vote is :func:`ferembed.metrics.classification.knn_vote`.
    """
    res = _knn_retrieval(x, y, k, **options)
    reference_labels = options.get("reference_labels")
    ref_y = np.asarray(y if options.get("reference") is None else reference_labels, dtype=np.int64)
    num_classes = int(max(ref_y.max(), res.labels.max())) + 1
    pred = knn_vote(res.knn.indices, ref_y, num_classes, knn_distances=res.knn.distances)
    return float(np.mean(pred == res.labels))
