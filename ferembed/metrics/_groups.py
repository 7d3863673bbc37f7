"""The metric groups of :func:`~ferembed.metrics.evaluate.evaluate`: one runner per group, each
reading the shared context (validated inputs, the one kNN search) and writing its part of
metrics.json, its per-class values and its per-sample columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import ferembed.metrics.classification as _cls
import ferembed.metrics.collapse as _nc
import ferembed.metrics.geometry as _geo
import ferembed.metrics.silhouette as _sil
from ferembed._engines import SEARCH
from ferembed.metrics._context import _Context
from ferembed.metrics._knn import stratified_sample
from ferembed.metrics.bootstrap import bca_interval, bootstrap_ci
from ferembed.metrics.clustering import clustering_scores
from ferembed.metrics.neighbors import (
    identity_confound,
    identity_samples,
    label_disagreement_samples,
)
from ferembed.metrics.retrieval import compute_retrieval, nanmean

#: The per-class scores of each classification block.
PER_CLASS_SCORES = ("precision", "recall", "f1", "support")


def _per_class_mean(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    ok = np.isfinite(values)
    cnt = np.bincount(labels[ok], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels[ok], weights=values[ok], minlength=k) / cnt


def _confusion_cis(cm: np.ndarray, *, n_boot: int, seed: int, alpha: float = 0.05) -> dict:
    """Class-stratified bootstrap intervals of accuracy, UAR and macro-F1 from a confusion matrix.

    Resampling the rows of each true class with replacement is, for these statistics, drawing
    that class's row of the confusion matrix from Multinomial(n_c, row / n_c): O(n_boot K^2)
    whatever N. The (n_boot, K, K) resampled matrices are scored by ``confusion_scores``.
    """
    rng = np.random.default_rng(seed)
    k = cm.shape[0]
    n_c = cm.sum(axis=1)
    boot = np.zeros((n_boot, k, k))
    for c in np.flatnonzero(n_c):
        boot[:, c, :] = rng.multinomial(n_c[c], cm[c] / n_c[c], size=n_boot)
    scores = _cls.confusion_scores(boot)
    q = [alpha / 2, 1 - alpha / 2]
    out = {
        name: [float(v) for v in np.quantile(scores[name], q)]
        for name in ("accuracy", "mean_class_accuracy")
    }
    # Macro-F1 is not a mean of per-sample values: BCa, with the exact jackknife.
    estimate = float(_cls.confusion_scores(cm.astype(np.float64))["macro_f1"])
    jack = _confusion_jackknife(cm, "macro_f1")
    out["macro_f1"] = list(bca_interval(scores["macro_f1"], estimate, jack, alpha))
    return out


def _confusion_jackknife(cm: np.ndarray, name: str) -> np.ndarray:
    """(N,) leave-one-out values of a confusion score: leaving out a sample removes one count
    from its cell, so each occupied cell gives one value, repeated count times."""
    t, p = np.nonzero(cm)
    k = cm.shape[0]
    values = np.empty(t.size)
    step = max(1, 4_000_000 // (k * k))  # bounded (cells, K, K) batches
    for s in range(0, t.size, step):
        rows = np.arange(s, min(s + step, t.size))
        jack = np.repeat(cm[None].astype(np.float64), rows.size, axis=0)
        jack[np.arange(rows.size), t[rows], p[rows]] -= 1
        values[rows] = _cls.confusion_scores(jack)[name]
    return np.repeat(values, cm[t, p].astype(np.int64))


#: The interval method of each headline interval outside the geometry (``metrics.json``'s
#: ``ci_method``; docs/metrics.md): means of per-sample values use the percentile interval.
CI_METHOD = {"macro_f1": "bca"}


def _k_values(k: int) -> list[int]:
    return sorted({v for v in (1, 5, 10, 20, 50, 100) if v <= k} | {k})


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
    ctx.search = (SEARCH.get() or compute_retrieval)(  # --ray: ferembed._ray
        ctx.xs,
        ctx.y,
        k=k,
        distance=ctx.distance,
        reference=None if ctx.ref is None else ctx.ref.embeddings,
        reference_labels=None if ctx.ref is None else ctx.ref.labels,
        queries=queries,
        r_metrics=r_metrics,
        device=ctx.device,
        backend=ctx.knn_backend,
    )
    ctx.out["knn"] = {"backend": ctx.search.knn.backend, "device": ctx.search.knn.device}
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
    per_class = {
        "precision_at_1": _per_class_mean(p_at_1, ret.labels, nk),
        "r_precision": _per_class_mean(ret.r_precision, ret.labels, nk),
        "map_at_r": _per_class_mean(ret.map_at_r, ret.labels, nk),
    }
    ctx.per_class_update(**per_class)
    for key, values in zip(per_class, (p_at_1, ret.r_precision, ret.map_at_r), strict=True):
        _balanced(ctx, key, values, per_class[key])
    ctx.query_column("precision_at_1", p_at_1)
    ctx.query_column("r_precision", ret.r_precision)
    ctx.query_column("map_at_r", ret.map_at_r)


def _balanced(ctx: _Context, key: str, values: np.ndarray, per_class: np.ndarray) -> None:
    """``{key}_balanced``: the mean over classes of the per-class means (PML's avg_of_avgs).

    Classes without a (non-lone) query are left out. Its interval resamples each class's
    queries and weighs the classes equally (percentile).
    """
    ok = np.isfinite(per_class)
    name = f"{key}_balanced"
    ctx.out[name] = float(per_class[ok].mean()) if ok.any() else None
    ctx.out["retrieval"][name] = ctx.out[name]
    finite = np.isfinite(values)
    if ctx.n_boot and ok.any():
        labels = ctx.search.labels[finite]
        ctx.ci[name] = list(
            bootstrap_ci(
                values[finite],
                n_boot=ctx.n_boot,
                seed=ctx.seed,
                stratify=labels,
                weights=np.ones(np.unique(labels).size),
            )
        )
        ctx.ci_method[name] = "percentile"


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
            ctx.ci_method[key] = CI_METHOD.get(key, "percentile")
        ctx.ci["knn_accuracy"] = blocks["knn"]["ci"]["accuracy"]
        ctx.ci_method["knn_accuracy"] = "percentile"
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
            ctx.ci_method[key] = _geo.GEOMETRY_CI_METHOD
    _scatter_scores(ctx)
    hist = rec.safe(
        "histograms",
        lambda: _geo.distance_histograms(xs, y, distance=dist, max_pairs=ctx.max_pairs, seed=seed),
    )
    if hist is not None:
        ctx.out["histograms"] = hist
        ctx.out["hist_overlap"] = hist["overlap"]
        rec.modes["histograms"] = hist["mode"]


def _scatter_scores(ctx: _Context) -> None:
    """Davies-Bouldin and Calinski-Harabasz, null with a note where the geometry is degenerate.

    scikit-learn scores coinciding class means 0 for Davies-Bouldin (its best value) and zero
    within-class scatter 1.0 for Calinski-Harabasz; neither is a measurement of the embedding.
    """
    xs, y, rec, names = ctx.xs, ctx.y, ctx.rec, ctx.class_names
    pairs = rec.safe("davies_bouldin", lambda: _geo.coinciding_centroids(xs, y)) or []
    if pairs:
        shown = ", ".join(f"{names[a]}={names[b]}" for a, b in pairs[:3])
        more = f" (+{len(pairs) - 3} more)" if len(pairs) > 3 else ""
        rec.notes.append(
            f"davies_bouldin: degenerate geometry, {len(pairs)} pair(s) of classes share one "
            f"centroid ({shown}{more}): the embedding does not separate them (null)"
        )
        ctx.out["davies_bouldin"] = None
    else:
        ctx.out["davies_bouldin"] = rec.safe("davies_bouldin", lambda: _geo.davies_bouldin(xs, y))
    fisher = ctx.out.get("fisher_ratio")
    if fisher is not None and not np.isfinite(fisher):  # tr(S_W) = 0: inf, or NaN (0/0)
        rec.notes.append(
            "calinski_harabasz, fisher_ratio: degenerate geometry, no within-class scatter "
            "(every sample sits on its class centroid) (null)"
        )
        ctx.out["fisher_ratio"] = None
        ctx.out["calinski_harabasz"] = None
    else:
        ctx.out["calinski_harabasz"] = rec.safe(
            "calinski_harabasz", lambda: _geo.calinski_harabasz(xs, y)
        )


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
        ctx.ci_method["silhouette"] = "percentile"
    ctx.rec.modes["silhouette"] = sil["mode"]
    ctx.per_class_update(silhouette=sil["per_class"])
    if not sampled:  # exact mode: every row's value, in row order
        ctx.per_sample["silhouette"] = sil["samples"]


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
