"""The metrics orchestrator: every metric of a run, shared inputs computed once, as metrics.json.

:func:`evaluate` takes arrays and returns the ``metrics.json`` dictionary (schema in
docs/metrics.md) and, on request, the per-sample table; ``ferembed.runs.evaluate_run`` runs it on
a run directory and writes both files. The groups themselves are in ``_groups``, the context they
share in ``_context``.

Shared inputs (PML ``AccuracyCalculator`` style): one exact kNN search (with R-precision and MAP@R
computed in the same pass over the score blocks) feeds retrieval, the kNN vote, label disagreement
and the identity confound; one k-means feeds NMI/AMI/ARI/purity; the L2-normalised embeddings are
made once for a cosine run.

Scale: when there are more than ``max_exact_n`` queries, the kNN-based groups run on a
class-stratified sample of ``sample_size`` queries (each searched exactly against *every*
reference, so each per-query value is exact and only the mean is estimated), with stratified
bootstrap intervals; ``modes`` says which. Silhouette is exact in O(NKD) for cosine at any size
(euclidean is O(N^2 D) and sampled the same way). Geometry, clustering and collapse are O(NKD) or
O(ND^2) and always use every sample (k-means trains on at most 100 000 rows, then assigns all).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ferembed._io import to_jsonable
from ferembed._version import __version__
from ferembed.metrics._context import Reference, _check_reference, _Context, _Recorder
from ferembed.metrics._groups import _NEED_SEARCH, _NEED_TWO_CLASSES, _RUNNERS, _run_search
from ferembed.metrics._kernels import shared_passes
from ferembed.metrics._validation import check_distance, check_embeddings, l2_normalize
from ferembed.metrics.catalog import HEADLINE

__all__ = [
    "GROUPS",
    "HEADLINE",
    "Reference",
    "default_sample_size",
    "evaluate",
]

SCHEMA = "ferembed.metrics/1"
#: Metric groups, in the order they run; ``include`` / ``exclude`` take these names.
GROUPS = (
    "retrieval",
    "classification",
    "neighbors",
    "clustering",
    "geometry",
    "silhouette",
    "collapse",
)
# HEADLINE (the headline scalars, always present at the top level of metrics.json, None when not
# computed) is the metric catalog's; it is re-exported here where it has always been public.


def _groups(include: Iterable[str] | None, exclude: Iterable[str] | None) -> list[str]:
    if isinstance(include, str) or isinstance(exclude, str):
        raise ValueError("include/exclude must be lists of group names, not a string")
    inc = list(GROUPS) if include is None else list(include)
    exc = [] if exclude is None else list(exclude)
    unknown = sorted((set(inc) | set(exc)) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; known: {list(GROUPS)}")
    return [g for g in GROUPS if g in inc and g not in exc]


def default_sample_size(n_queries: int, n_ref: int, dim: int) -> int:
    """Queries sampled above ``max_exact_n`` when ``sample_size`` is None.

    10 000, reduced for very large runs so that the sampled search costs about 2.5e12
    multiply-adds (a few minutes on two cores), never below 2 000: 10 000 at 100k x 128,
    4 882 at 1M x 512. The interval in ``ci`` reports the resulting uncertainty.
    """
    budget = int(2.5e12 // max(n_ref * dim, 1))
    return int(min(n_queries, max(2_000, min(10_000, budget))))


def evaluate(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: list[str] | None = None,
    logits: np.ndarray | None = None,
    head_weight: np.ndarray | None = None,
    subjects: np.ndarray | None = None,
    distance: str = "cosine",
    k: int = 10,
    reference: Reference | tuple | dict | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    max_exact_n: int = 20_000,
    sample_size: int | None = None,
    max_pairs: int = 500_000,
    seed: int = 0,
    n_boot: int = 1000,
    return_per_sample: bool = False,
    device: str | None = None,
    knn_backend: str | None = None,
) -> dict[str, Any] | tuple[dict[str, Any], pd.DataFrame]:
    """Compute every metric of an embedding set and return the metrics.json dictionary.

    Args:
        embeddings: (N, D) float embeddings (a memory-mapped array is fine).
        labels: (N,) int labels in ``0..K-1``.
        class_names: K class names (default ``["0", "1", ...]`` up to the largest label of the
            queries or the reference).
        logits: (N, K) classifier logits, when the model has a head (head accuracy etc.).
        head_weight: (K, D) linear-head weight (for NC3).
        subjects: (N,) subject ids, ``""`` = unknown (for the identity confound).
        distance: ``"cosine"`` or ``"euclidean"``.
        k: neighbours for the kNN vote, label disagreement, identity and precision/recall@k.
        reference: a :class:`Reference` (or ``(embeddings, labels[, subjects[, name]])`` tuple /
            dict) to search queries against instead of leave-one-out. Geometry, clustering,
            silhouette and collapse always describe ``embeddings`` itself.
        include: metric groups to compute (default all of :data:`GROUPS`).
        exclude: metric groups to skip.
        max_exact_n: above this many queries the kNN-based groups use a stratified sample.
        sample_size: number of sampled queries (and euclidean silhouette samples); None:
            :func:`default_sample_size` (10 000, fewer for very large N x D).
        max_pairs: pairs drawn for the distance histograms and uniformity when there are more.
        seed: seed of every sampler, k-means and bootstrap.
        n_boot: bootstrap resamples for the intervals in ``ci`` (0 disables them).
        return_per_sample: also return the per-sample table.
        device: where the kNN search runs, ``"auto"``, ``"cpu"`` or ``"cuda"``
            (:func:`ferembed._search.compute_knn`; None: the engine's default). Recorded with
            the backend that ran under ``knn`` in the result.
        knn_backend: ``"auto"``, ``"numpy"``, ``"faiss"`` or ``"torch"`` (None: the default).

    Returns:
        The metrics dictionary (JSON-ready: plain numbers, lists, None for NaN), or
        ``(metrics, per_sample)`` with ``return_per_sample``; ``per_sample`` has one row per
        embedding (columns described in docs/metrics.md).

    Raises:
        ValueError: non-finite rows (the first one is named), mismatched shapes, labels out of
            range, an unknown distance or group, bad options.
    """
    t_start = time.perf_counter()
    ctx = _validated_context(
        embeddings,
        labels,
        class_names=class_names,
        logits=logits,
        head_weight=head_weight,
        subjects=subjects,
        distance=distance,
        k=k,
        reference=reference,
        max_exact_n=max_exact_n,
        sample_size=sample_size,
        max_pairs=max_pairs,
        seed=seed,
        n_boot=n_boot,
    )
    ctx.device, ctx.knn_backend = device, knn_backend
    groups = _groups(include, exclude)
    rec = ctx.rec
    ctx.out = {
        "schema": SCHEMA,
        "run": None,
        "n": ctx.n,
        "dim": int(ctx.x.shape[1]),
        "num_classes": ctx.nk,
        "class_names": ctx.class_names,
        "distance": distance,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ferembed_version": __version__,
        "reference": None if ctx.ref is None else (ctx.ref.name or "reference"),
        "k": int(k),
        "seed": int(seed),
        "groups": groups,
        **dict.fromkeys(HEADLINE),
    }
    ctx.per_class = {
        name: {"n": int(n_c)} for name, n_c in zip(ctx.class_names, ctx.counts, strict=True)
    }
    ctx.per_sample["label"] = ctx.y
    if ctx.n_present < 2:
        skipped = [g for g in groups if g in _NEED_TWO_CLASSES] + (
            ["separation, Davies-Bouldin, Calinski-Harabasz, Fisher ratio, histograms"]
            if "geometry" in groups
            else []
        )
        if skipped:
            rec.notes.append(
                f"{ctx.n_present} class present: {', '.join(skipped)} need at least 2 (null)"
            )
    collapsed = _all_rows_equal(ctx.x)
    if collapsed:
        rec.notes.append(
            f"embeddings: all {ctx.n} rows are the same vector (a collapsed embedding): "
            "geometry, clustering, silhouette and collapse scores are undefined (null)"
        )
    if set(_NEED_SEARCH) & set(groups):
        with rec.timed("retrieval"):
            _run_search(ctx, r_metrics="retrieval" in groups)
    with shared_passes():  # class sums, norms, centroid distances: one pass each for all groups
        for group in groups:
            if (ctx.n_present < 2 or collapsed) and group in _NEED_TWO_CLASSES:
                continue
            with rec.timed(group):
                _RUNNERS[group](ctx)
    if collapsed:  # distances are all 0: "perfectly compact" describes nothing
        ctx.out.update(dict.fromkeys(_COLLAPSED_NULL))
        for key in _COLLAPSED_NULL:
            ctx.ci.pop(key, None)
    ctx.out.update(
        per_class=ctx.per_class,
        ci=ctx.ci,
        ci_method=ctx.ci_method,
        modes=rec.modes,
        notes=rec.notes,
        timings_s=rec.timings,
    )
    rec.timings["total"] = round(time.perf_counter() - t_start, 4)
    metrics = to_jsonable(ctx.out)
    if return_per_sample:
        return metrics, pd.DataFrame(ctx.per_sample)
    return metrics


#: Geometry scores that a collapsed embedding (every row equal) would get as perfect values.
_COLLAPSED_NULL = (
    "compactness",
    "class_separation",
    "alignment",
    "uniformity",
    "fisher_ratio",
    "davies_bouldin",
    "calinski_harabasz",
    "hist_overlap",
)


def _all_rows_equal(x: np.ndarray) -> bool:
    """Whether every row of ``x`` equals the first (checked in bounded chunks)."""
    first = x[:1]
    return all(
        np.array_equal(x[i : i + 65_536], np.broadcast_to(first, x[i : i + 65_536].shape))
        for i in range(0, x.shape[0], 65_536)
    )


def _check_cosine_rows(x: np.ndarray, name: str) -> None:
    """Refuse all-zero rows under cosine: a zero vector has no direction, and would score
    distance 1 to everything (compactness and separation 1) instead of being measured."""
    # The rows l2_normalize cannot scale to unit length (its eps): zero, or as good as zero.
    zero = np.concatenate(
        [np.linalg.norm(x[i : i + 65_536], axis=1) < 1e-12 for i in range(0, x.shape[0], 65_536)]
    )
    if zero.any():
        rows = np.flatnonzero(zero)
        raise ValueError(
            f"{name} has {rows.size} all-zero row(s), first at row {rows[0]} (norm < 1e-12): "
            "a zero vector has no cosine distance (use the euclidean distance, or drop those rows)"
        )


def _validated_context(
    embeddings,
    labels,
    *,
    class_names,
    logits,
    head_weight,
    subjects,
    distance,
    k,
    reference,
    max_exact_n,
    sample_size,
    max_pairs,
    seed,
    n_boot,
) -> _Context:
    """Check every input (ValueError naming the offending one) and build the context."""
    check_distance(distance)
    x, y = check_embeddings(embeddings, labels)
    n, d = x.shape
    if y.min() < 0:
        raise ValueError(f"labels must be >= 0, got {y.min()}")
    if reference is not None and not isinstance(reference, Reference):
        reference = Reference(**reference) if isinstance(reference, dict) else Reference(*reference)
    if class_names is None:
        top = int(y.max())
        if reference is not None:  # the reference may hold classes the queries lack
            top = max(top, int(np.max(reference.labels)))
        class_names = [str(c) for c in range(top + 1)]
    class_names = [str(c) for c in class_names]
    nk = len(class_names)
    if y.max() >= nk:
        raise ValueError(f"labels must lie in 0..{nk - 1} ({nk} class names), got {y.max()}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    ref = _check_reference(reference, d, nk)
    if distance == "cosine":
        _check_cosine_rows(x, "embeddings")
        if ref is not None:
            _check_cosine_rows(ref.embeddings, "reference")
    if sample_size is None:
        sample_size = default_sample_size(n, n if ref is None else ref.embeddings.shape[0], d)
    for name, v in (
        ("max_exact_n", max_exact_n),
        ("sample_size", sample_size),
        ("max_pairs", max_pairs),
    ):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if logits is not None:
        logits = np.asarray(logits)
        if logits.shape != (n, nk):
            raise ValueError(f"logits must have shape ({n}, {nk}), got {logits.shape}")
        if not np.isfinite(logits).all():
            raise ValueError("logits has NaN/Inf")
    if head_weight is not None:
        head_weight = np.asarray(head_weight)
        if head_weight.shape != (nk, d):
            raise ValueError(f"head_weight must have shape ({nk}, {d}), got {head_weight.shape}")
        if not np.isfinite(head_weight).all():
            raise ValueError("head_weight has NaN/Inf")
    if subjects is not None:
        subjects = np.asarray(subjects, dtype=object)
        if subjects.shape != (n,):
            raise ValueError(f"subjects must have shape ({n},), got {subjects.shape}")
    return _Context(
        x=x,
        # Cosine geometry runs on unit vectors: normalise once, share (searches reuse it uncopied).
        xs=l2_normalize(x) if distance == "cosine" else x,
        y=y,
        class_names=class_names,
        distance=distance,
        k=int(k),
        seed=int(seed),
        n_boot=int(n_boot),
        max_exact_n=int(max_exact_n),
        sample_size=int(sample_size),
        max_pairs=int(max_pairs),
        logits=logits,
        head_weight=head_weight,
        subjects=subjects,
        ref=ref,
        rec=_Recorder(),
    )
