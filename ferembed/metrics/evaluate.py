"""The metrics orchestrator: every metric of a run, shared inputs computed once, as metrics.json.

:func:`evaluate` takes arrays and returns the ``metrics.json`` dictionary (schema in
docs/metrics.md); :func:`evaluate_run` reads a run directory, evaluates it and writes
``metrics.json`` and ``per_sample.parquet`` into it atomically.

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
import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ferembed import _io
from ferembed._version import __version__
from ferembed.metrics import classification as _cls
from ferembed.metrics import collapse as _nc
from ferembed.metrics import geometry as _geo
from ferembed.metrics import silhouette as _sil
from ferembed.metrics._knn import stratified_sample
from ferembed.metrics._validation import check_distance, check_embeddings, l2_normalize
from ferembed.metrics.bootstrap import bootstrap_ci
from ferembed.metrics.clustering import clustering_scores
from ferembed.metrics.neighbors import (
    identity_confound,
    identity_samples,
    label_disagreement_samples,
)
from ferembed.metrics.retrieval import Retrieval, compute_retrieval, nanmean
from ferembed.runs.format import Run, load_run

__all__ = [
    "GROUPS",
    "HEADLINE",
    "Reference",
    "default_sample_size",
    "evaluate",
    "evaluate_run",
    "to_jsonable",
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
#: Headline scalars, always present at the top level of metrics.json (None when not computed).
HEADLINE = (
    "precision_at_1",
    "r_precision",
    "map_at_r",
    "knn_accuracy",
    "nmi",
    "ami",
    "ari",
    "purity",
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "fisher_ratio",
    "compactness",
    "class_separation",
    "accuracy",
    "mean_class_accuracy",
    "macro_f1",
    "head_accuracy",
    "centroid_accuracy",
    "alignment",
    "uniformity",
    "nc1",
    "nc2_equinorm",
    "nc2_equiangularity",
    "nc3",
    "hist_overlap",
)
METRICS_FILE = "metrics.json"
PER_SAMPLE_FILE = "per_sample.parquet"


class Reference(NamedTuple):
    """A reference set that queries are searched against (e.g. the training run).

    Attributes:
        embeddings: (M, D) embeddings.
        labels: (M,) int labels (same class indexing as the queries).
        subjects: (M,) subject ids or None.
        name: display name (the reference run's name), or None.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray | None = None
    name: str | None = None


def _groups(include: Iterable[str] | None, exclude: Iterable[str] | None) -> list[str]:
    if isinstance(include, str) or isinstance(exclude, str):
        raise ValueError("include/exclude must be lists of group names, not a string")
    inc = list(GROUPS) if include is None else list(include)
    exc = [] if exclude is None else list(exclude)
    unknown = sorted((set(inc) | set(exc)) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; known: {list(GROUPS)}")
    return [g for g in GROUPS if g in inc and g not in exc]


def _check_reference(reference: Reference | None, dim: int, num_classes: int) -> Reference | None:
    if reference is None:
        return None
    rx, ry = check_embeddings(reference.embeddings, reference.labels, name="reference")
    if rx.shape[1] != dim:
        raise ValueError(f"reference has dimension {rx.shape[1]}, embeddings have {dim}")
    if ry.min() < 0 or ry.max() >= num_classes:
        raise ValueError(f"reference labels must lie in 0..{num_classes - 1}")
    subj = reference.subjects
    if subj is not None:
        subj = np.asarray(subj, dtype=object)
        if subj.shape != ry.shape:
            raise ValueError(f"reference subjects must have shape {ry.shape}, got {subj.shape}")
    return Reference(rx, ry, subj, reference.name)


class _Recorder:
    """Collects timings, modes and notes while the groups run."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.modes: dict[str, str] = {}
        self.notes: list[str] = []

    @contextmanager
    def timed(self, group: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[group] = round(self.timings.get(group, 0.0) + time.perf_counter() - t0, 4)

    def safe(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None with a note when the metric is undefined for these data."""
        try:
            return fn()
        except ValueError as exc:
            self.notes.append(f"{name}: {exc}")
            return None


def _mean_ci(
    values: np.ndarray, strata: np.ndarray, *, n_boot: int, seed: int
) -> tuple[float | None, list[float] | None]:
    """Mean of the finite values and a class-stratified bootstrap 95% interval."""
    ok = np.isfinite(values)
    if not ok.any():
        return None, None
    v = values[ok]
    if n_boot < 1:
        return float(v.mean()), None
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed, stratify=strata[ok])
    return float(v.mean()), [lo, hi]


def _per_class_mean(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    ok = np.isfinite(values)
    cnt = np.bincount(labels[ok], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels[ok], weights=values[ok], minlength=k) / cnt


def _confusion_cis(cm: np.ndarray, *, n_boot: int, seed: int, alpha: float = 0.05) -> dict:
    """Class-stratified bootstrap intervals of accuracy, UAR and macro-F1 from a confusion matrix.

    Resampling the rows of each true class with replacement is, for these statistics, drawing
    that class's row of the confusion matrix from Multinomial(n_c, row / n_c): O(n_boot K^2)
    whatever N.
    """
    rng = np.random.default_rng(seed)
    k = cm.shape[0]
    n_c = cm.sum(axis=1)
    boot = np.zeros((n_boot, k, k))
    for c in np.flatnonzero(n_c):
        boot[:, c, :] = rng.multinomial(n_c[c], cm[c] / n_c[c], size=n_boot)
    tp = np.einsum("bkk->bk", boot)
    pred = boot.sum(axis=1)
    present = n_c > 0
    acc = tp.sum(axis=1) / n_c.sum()
    uar = (tp[:, present] / n_c[present]).mean(axis=1)
    denom = n_c[None, :] + pred
    either = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(either, 2 * tp / denom, 0.0)
    mf1 = f1.sum(axis=1) / either.sum(axis=1)
    q = [alpha / 2, 1 - alpha / 2]
    return {
        name: [float(v) for v in np.quantile(vals, q)]
        for name, vals in (("accuracy", acc), ("mean_class_accuracy", uar), ("macro_f1", mf1))
    }


def default_sample_size(n_queries: int, n_ref: int, dim: int) -> int:
    """Queries sampled above ``max_exact_n`` when ``sample_size`` is None.

    10 000, reduced for very large runs so that the sampled search costs about 2.5e12
    multiply-adds (a few minutes on two cores), never below 2 000: 10 000 at 100k x 128,
    4 882 at 1M x 512. The interval in ``ci`` reports the resulting uncertainty.
    """
    budget = int(2.5e12 // max(n_ref * dim, 1))
    return int(min(n_queries, max(2_000, min(10_000, budget))))


def _k_values(k: int) -> list[int]:
    return sorted({v for v in (1, 5, 10, 20, 50, 100) if v <= k} | {k})


@dataclass
class _Context:
    """Validated inputs, shared intermediate results and the output being assembled."""

    x: np.ndarray  # (N, D) float32 as given
    xs: np.ndarray  # (N, D) what geometry runs on: unit rows for cosine, x for euclidean
    y: np.ndarray  # (N,) int64
    class_names: list[str]
    distance: str
    k: int
    seed: int
    n_boot: int
    max_exact_n: int
    sample_size: int
    max_pairs: int
    logits: np.ndarray | None
    head_weight: np.ndarray | None
    subjects: np.ndarray | None
    ref: Reference | None
    rec: _Recorder
    out: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    search: Retrieval | None = None  # the shared kNN search

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def nk(self) -> int:
        return len(self.class_names)

    @cached_property
    def counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.nk)

    @property
    def n_present(self) -> int:
        return int((self.counts > 0).sum())

    @property
    def ref_labels(self) -> np.ndarray:
        return self.y if self.ref is None else self.ref.labels

    def per_class_update(self, **columns: np.ndarray | list) -> None:
        """Add per-class values (each a length-K sequence) to the per_class section."""
        for c, name in enumerate(self.class_names):
            self.per_class[name].update({key: vals[c] for key, vals in columns.items()})

    def query_column(self, name: str, values: np.ndarray, fill: float | int = np.nan) -> None:
        """A per-sample column known for the searched queries only (``fill`` elsewhere)."""
        col = np.full(self.n, fill, dtype=np.result_type(np.asarray(values).dtype, fill))
        col[self.search.queries] = values
        self.per_sample[name] = col

    def headline(self, key: str, values: np.ndarray, strata: np.ndarray) -> None:
        """Headline mean of per-sample values, with its bootstrap interval in ``ci``."""
        self.out[key], interval = _mean_ci(values, strata, n_boot=self.n_boot, seed=self.seed)
        if interval is not None:
            self.ci[key] = interval


def _run_search(ctx: _Context, *, r_metrics: bool) -> None:
    """The shared search: exact over every query, or over a stratified query sample."""
    n_ref = ctx.n if ctx.ref is None else ctx.ref.embeddings.shape[0]
    k = min(ctx.k, n_ref - int(ctx.ref is None))
    if k < 1:
        raise ValueError("need at least 2 samples for leave-one-out neighbours")
    if k < ctx.k:
        ctx.rec.notes.append(f"k reduced from {ctx.k} to {k}: only {k} references available")
    if ctx.n > ctx.max_exact_n:
        queries = stratified_sample(ctx.y, ctx.sample_size, seed=ctx.seed)
        mode = f"sampled(n={queries.size}, seed={ctx.seed}, stratified by class)"
    else:
        queries, mode = None, "exact"
    ctx.rec.modes["retrieval"] = mode
    ctx.search = compute_retrieval(
        ctx.xs,
        ctx.y,
        k=k,
        distance=ctx.distance,
        reference=None if ctx.ref is None else ctx.ref.embeddings,
        reference_labels=None if ctx.ref is None else ctx.ref.labels,
        queries=queries,
        r_metrics=r_metrics,
    )
    is_query = np.zeros(ctx.n, dtype=bool)
    is_query[ctx.search.queries] = True
    ctx.per_sample["knn_query"] = is_query


def _retrieval(ctx: _Context) -> None:
    ret = ctx.search
    kv = _k_values(ret.knn.k)
    p_at_1 = ret.precision_at_k(1)
    ctx.headline("precision_at_1", p_at_1, ret.labels)
    ctx.headline("r_precision", ret.r_precision, ret.labels)
    ctx.headline("map_at_r", ret.map_at_r, ret.labels)
    ctx.out["retrieval"] = {
        "k_values": kv,
        "precision_at_k": {str(k): nanmean(ret.precision_at_k(k)) for k in kv},
        "recall_at_k": {str(k): nanmean(ret.recall_at_k(k)) for k in kv},
        **{key: ctx.out[key] for key in ("precision_at_1", "r_precision", "map_at_r")},
        "n_queries": int(len(ret.labels)),
        "n_lone_queries": int(ret.lone.sum()),
        "mode": ctx.rec.modes["retrieval"],
    }
    nk = ctx.nk
    ctx.per_class_update(
        precision_at_1=_per_class_mean(p_at_1, ret.labels, nk),
        r_precision=_per_class_mean(ret.r_precision, ret.labels, nk),
        map_at_r=_per_class_mean(ret.map_at_r, ret.labels, nk),
    )
    ctx.query_column("precision_at_1", p_at_1)
    ctx.query_column("r_precision", ret.r_precision)
    ctx.query_column("map_at_r", ret.map_at_r)


def _classification(ctx: _Context) -> None:
    ret, nk, y = ctx.search, ctx.nk, ctx.y
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if ctx.logits is not None:
        head = ctx.logits.argmax(axis=1).astype(np.int64)
        pairs["head"] = (y, head)
        ctx.per_sample["head_pred"] = head
    knn_pred = _cls.knn_vote(ret.knn.indices, ctx.ref_labels, nk)
    pairs["knn"] = (ret.labels, knn_pred)
    ctx.query_column("knn_pred", knn_pred, fill=-1)
    if ctx.ref is None:
        cen = _cls.nearest_centroid_predict(
            ctx.xs, y, distance=ctx.distance, leave_one_out=True, num_classes=nk
        )
    else:
        cen = _cls.nearest_centroid_predict(
            ctx.ref.embeddings, ctx.ref.labels, distance=ctx.distance, query=ctx.xs, num_classes=nk
        )
    ctx.per_sample["centroid_pred"] = cen
    ok = cen >= 0
    if not ok.all():
        ctx.rec.notes.append(f"centroid: {int((~ok).sum())} sample(s) without a candidate class")
    if ok.any():
        pairs["centroid"] = (y[ok], cen[ok])
    blocks, confusion = {}, {}
    for name, (y_true, y_pred) in pairs.items():
        m = _cls.classification_metrics(y_true, y_pred, nk)
        confusion[name] = {"counts": m["confusion"], "normalized": m["confusion_normalized"]}
        blocks[name] = {
            "accuracy": m["accuracy"],
            "mean_class_accuracy": m["mean_class_accuracy"],
            "macro_f1": m["macro_f1"],
            "n": int(len(y_true)),
            "per_class": {
                cname: {key: m["per_class"][key][c] for key in PER_CLASS_SCORES}
                for c, cname in enumerate(ctx.class_names)
            },
        }
        if ctx.n_boot:
            blocks[name]["ci"] = _confusion_cis(m["confusion"], n_boot=ctx.n_boot, seed=ctx.seed)
    blocks["knn"].update(k=ret.knn.k, mode=ctx.rec.modes["retrieval"])
    primary = "head" if "head" in blocks else "knn"
    ctx.out["classification"] = {"primary": primary, **blocks}
    ctx.out["confusion"] = confusion
    for key in ("accuracy", "mean_class_accuracy", "macro_f1"):
        ctx.out[key] = blocks[primary][key]
    ctx.out["knn_accuracy"] = blocks["knn"]["accuracy"]
    ctx.out["head_accuracy"] = blocks["head"]["accuracy"] if "head" in blocks else None
    ctx.out["centroid_accuracy"] = blocks["centroid"]["accuracy"] if "centroid" in blocks else None
    if ctx.n_boot:
        for key in ("accuracy", "mean_class_accuracy", "macro_f1"):
            ctx.ci[key] = blocks[primary]["ci"][key]
        ctx.ci["knn_accuracy"] = blocks["knn"]["ci"]["accuracy"]
    scores = blocks[primary]["per_class"]
    ctx.per_class_update(
        **{
            key: [scores[name][key] for name in ctx.class_names]
            for key in ("precision", "recall", "f1")
        }
    )


def _neighbors(ctx: _Context) -> None:
    ret = ctx.search
    dis = label_disagreement_samples(ret.neighbor_labels, ret.labels)
    ctx.query_column("label_disagreement", dis)
    ctx.out["neighbors"] = {
        "k": ret.knn.k,
        "mean_label_disagreement": nanmean(dis),
        "majority_disagree_rate": float(np.mean(dis > 0.5)),
        "mode": ctx.rec.modes["retrieval"],
    }
    ctx.per_class_update(label_disagreement=_per_class_mean(dis, ret.labels, ctx.nk))
    ref_subjects = ctx.subjects if ctx.ref is None else ctx.ref.subjects
    if ctx.subjects is None or ref_subjects is None:
        return
    args = (ret.knn.indices, ret.labels, ctx.subjects[ret.queries])
    kw = {"reference_labels": ctx.ref_labels, "reference_subjects": ref_subjects}
    ident = identity_confound(*args, leave_one_out=ctx.ref is None, **kw)
    if not ident["n_queries"]:
        ctx.rec.notes.append("identity: no sample has a known subject")
        return
    ctx.out["identity"] = {**ident, "k": ret.knn.k, "mode": ctx.rec.modes["retrieval"]}
    per = identity_samples(*args, **kw)
    ctx.query_column("same_subject_rate", per["same_subject"])
    ctx.query_column("same_expression_rate", per["same_expression"])


def _clustering(ctx: _Context) -> None:
    cl = clustering_scores(ctx.xs, ctx.y, distance=ctx.distance, seed=ctx.seed)
    ctx.per_sample["cluster"] = cl.pop("clusters")
    for key in ("nmi", "ami", "ari", "purity"):
        ctx.out[key] = cl[key]
    ctx.out["clustering"] = cl
    trained = "exact" if cl["n_train"] == ctx.n else f"trained on {cl['n_train']} sampled rows"
    ctx.rec.modes["clustering"] = f"kmeans(k={cl['k']}, seed={ctx.seed}, {trained})"


def _geometry(ctx: _Context) -> None:
    xs, y, nk, rec, dist, seed = ctx.xs, ctx.y, ctx.nk, ctx.rec, ctx.distance, ctx.seed
    comp = _geo.compactness(xs, y, distance=dist, num_classes=nk, seed=seed)
    ctx.per_class_update(
        compactness_mean=comp["mean"],
        compactness_median=comp["median"],
        compactness_p90=comp["p90"],
        intra_pairwise_mean=comp["intra_pairwise_mean"],
    )
    if not np.all(comp["intra_pairwise_exact"]):
        rec.modes["intra_pairwise_mean"] = f"sampled per class (10000 members, seed={seed})"
    ctx.per_sample["distance_to_centroid"] = _geo.distance_to_centroid(
        xs, y, distance=dist, num_classes=nk
    )
    ctx.out["compactness"] = float(np.mean(ctx.per_sample["distance_to_centroid"]))
    ctx.out["alignment"] = rec.safe("alignment", lambda: _geo.alignment(xs, y))
    ctx.out["uniformity"] = rec.safe(
        "uniformity", lambda: _geo.uniformity(xs, max_pairs=ctx.max_pairs, seed=seed)
    )
    exact_u = ctx.n * (ctx.n - 1) // 2 <= ctx.max_pairs
    rec.modes["uniformity"] = "exact" if exact_u else f"sampled(n={ctx.max_pairs}, seed={seed})"
    if ctx.n_present < 2:
        return
    sep = _geo.separation(xs, y, distance=dist, num_classes=nk)
    nearest = [ctx.class_names[i] if i >= 0 else None for i in sep["nearest_class"]]
    ctx.out["separation"] = {
        "centroid_distances": sep["centroid_distances"],
        "nearest_class": nearest,
        **{key: sep[key] for key in ("nearest_distance", "margin", "radius", "gap")},
    }
    ctx.per_class_update(
        nearest_class=nearest, nearest_class_distance=sep["nearest_distance"], margin=sep["margin"]
    )
    ctx.out["class_separation"] = float(np.nanmean(sep["nearest_distance"]))
    # Fisher, Davies-Bouldin and Calinski-Harabasz use the vectors as given: unit rows for cosine.
    ctx.out["fisher_ratio"] = rec.safe("fisher_ratio", lambda: _geo.fisher_ratio(xs, y))
    if ctx.n_boot:
        boot = rec.safe(
            "geometry_ci",
            lambda: _geo.geometry_bootstrap(
                xs, y, distance=dist, num_classes=nk, n_boot=ctx.n_boot, seed=seed
            ),
        )
        for key, interval in (boot or {}).items():
            ctx.ci[key] = list(interval)
    ctx.out["davies_bouldin"] = rec.safe("davies_bouldin", lambda: _geo.davies_bouldin(xs, y))
    ctx.out["calinski_harabasz"] = rec.safe(
        "calinski_harabasz", lambda: _geo.calinski_harabasz(xs, y)
    )
    hist = rec.safe(
        "histograms",
        lambda: _geo.distance_histograms(xs, y, distance=dist, max_pairs=ctx.max_pairs, seed=seed),
    )
    if hist is not None:
        ctx.out["histograms"] = hist
        ctx.out["hist_overlap"] = hist["overlap"]
        rec.modes["histograms"] = hist["mode"]


def _silhouette(ctx: _Context) -> None:
    # Cosine is exact in O(NKD) at any size; euclidean is O(N^2 D), sampled above max_exact_n.
    sampled = ctx.distance == "euclidean" and ctx.n > ctx.max_exact_n
    sil = ctx.rec.safe(
        "silhouette",
        lambda: _sil.silhouette_score(
            ctx.xs,
            ctx.y,
            distance=ctx.distance,
            sample_size=ctx.sample_size if sampled else None,
            seed=ctx.seed,
            num_classes=ctx.nk,
            n_boot=max(ctx.n_boot, 1),
        ),
    )
    if sil is None:
        return
    ctx.out["silhouette"] = sil["score"]
    if ctx.n_boot:
        ctx.ci["silhouette"] = [sil["ci_low"], sil["ci_high"]]
    ctx.rec.modes["silhouette"] = sil["mode"]
    ctx.per_class_update(silhouette=sil["per_class"])
    if not sampled:
        ctx.per_sample["silhouette"] = _sil.silhouette_samples(ctx.xs, ctx.y, distance=ctx.distance)


def _collapse(ctx: _Context) -> None:
    # Papyan et al. study the raw penultimate features: no normalisation here.
    x, y, rec = ctx.x, ctx.y, ctx.rec
    section: dict[str, Any] = {"nc1": rec.safe("nc1", lambda: _nc.nc1(x, y))}
    nc2 = rec.safe("nc2", lambda: _nc.nc2(x, y))
    if nc2 is not None:
        section["nc2"] = {key: nc2[key] for key in ("equinorm", "equiangularity", "max_angle")}
        ctx.out["nc2_equinorm"] = nc2["equinorm"]
        ctx.out["nc2_equiangularity"] = nc2["equiangularity"]
    if ctx.head_weight is not None:
        section["nc3"] = rec.safe("nc3", lambda: _nc.nc3(x, y, ctx.head_weight))
        ctx.out["nc3"] = section["nc3"]
    ctx.out["nc1"] = section["nc1"]
    ctx.out["collapse"] = section


#: The group runners, and the groups that need two classes (null + a note with fewer).
_RUNNERS: dict[str, Callable[[_Context], None]] = {
    "retrieval": _retrieval,
    "classification": _classification,
    "neighbors": _neighbors,
    "clustering": _clustering,
    "geometry": _geometry,
    "silhouette": _silhouette,
    "collapse": _collapse,
}
_NEED_TWO_CLASSES = ("clustering", "silhouette", "collapse")
_NEED_SEARCH = ("retrieval", "classification", "neighbors")
PER_CLASS_SCORES = ("precision", "recall", "f1", "support")


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
    if set(_NEED_SEARCH) & set(groups):
        with rec.timed("retrieval"):
            _run_search(ctx, r_metrics="retrieval" in groups)
    for group in groups:
        if ctx.n_present < 2 and group in _NEED_TWO_CLASSES:
            continue
        with rec.timed(group):
            _RUNNERS[group](ctx)
    ctx.out.update(
        per_class=ctx.per_class, ci=ctx.ci, modes=rec.modes, notes=rec.notes, timings_s=rec.timings
    )
    rec.timings["total"] = round(time.perf_counter() - t_start, 4)
    metrics = to_jsonable(ctx.out)
    if return_per_sample:
        return metrics, pd.DataFrame(ctx.per_sample)
    return metrics


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


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON copy: numpy scalars/arrays to numbers/lists, NaN and Inf to None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if np.isfinite(v) else None
    return obj


# ---------------------------------------------------------------------------------------------
# Run directories
# ---------------------------------------------------------------------------------------------


def _as_run(run_or_path: Run | str | os.PathLike) -> Run:
    return run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)


def _subjects(run: Run) -> np.ndarray | None:
    """(N,) subject ids, or None when the run has none."""
    subjects = run.samples["subject"].fillna("").astype(str).to_numpy(dtype=object)
    return subjects if (subjects != "").any() else None


def evaluate_run(
    run_or_path: Run | str | os.PathLike,
    *,
    reference: Run | str | os.PathLike | None = None,
    distance: str | None = None,
    write: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Evaluate a run directory and write ``metrics.json`` and ``per_sample.parquet`` into it.

    Args:
        run_or_path: a :class:`ferembed.runs.Run` or a run directory path.
        reference: another run (or its path) to search the queries against (e.g. the training
            split), or None for leave-one-out within the run. Its class names must match.
        distance: ``"cosine"`` / ``"euclidean"``; None uses the run's own ``distance``.
        write: write the two files (atomically); False only returns the dictionary.
        **kwargs: passed to :func:`evaluate` (``k``, ``include``, ``exclude``, ``max_exact_n``,
            ``sample_size``, ``seed``, ``n_boot``).

    Returns:
        The metrics dictionary (what ``metrics.json`` holds).
    """
    run = _as_run(run_or_path)
    distance = distance or run.distance
    ref = None
    ref_name = None
    if reference is not None:
        rrun = _as_run(reference)
        if rrun.class_names != run.class_names:
            raise ValueError(
                f"reference run {rrun.name!r} has classes {rrun.class_names}, "
                f"run {run.name!r} has {run.class_names}"
            )
        ref_name = rrun.name
        ref = Reference(rrun.embeddings, rrun.labels, _subjects(rrun), ref_name)
    metrics, per_sample = evaluate(
        run.embeddings,
        run.labels,
        class_names=run.class_names,
        logits=run.logits,
        head_weight=run.head_weight,
        subjects=_subjects(run),
        distance=distance,
        reference=ref,
        return_per_sample=True,
        **kwargs,
    )
    metrics["run"] = run.name
    metrics["reference"] = ref_name
    if write:
        per_sample.insert(0, "sample_id", run.samples["sample_id"].astype(str).to_numpy())
        with _io.atomic_path(run.path / PER_SAMPLE_FILE) as tmp:
            per_sample.to_parquet(tmp, index=False)
        _io.write_json(run.path / METRICS_FILE, metrics)
    return metrics
