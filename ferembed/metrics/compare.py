"""Paired comparison of two embeddings of the same samples: the array-level statistics.

Row ``i`` of both embeddings is the same sample (``ferembed.runs.compare_runs`` pairs two runs
by ``sample_id`` and calls :func:`compare_embeddings`). Correctness comes from each side's
classifier head when both have logits, else from a leave-one-out kNN vote in each side's own
embedding. All intervals are bootstraps stratified by true class (the test set's class mix
stays fixed) and resample the *pairs*, so they account for the correlation between the two sides:
percentile intervals for the classification differences, recentred ones for the geometry
(:mod:`ferembed.metrics.geometry_bootstrap`).

The geometry runs on the vectors ``evaluate`` uses (unit rows for cosine, :func:`geometry_vectors`),
so each side's compactness, separation and Fisher ratio equal that run's ``metrics.json``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ferembed._io import to_jsonable
from ferembed.metrics._knn import compute_knn
from ferembed.metrics._validation import check_bootstrap_options, check_distance, l2_normalize
from ferembed.metrics.bootstrap import bootstrap_ci, percentile_interval
from ferembed.metrics.classification import classification_metrics, confusion_scores, knn_vote
from ferembed.metrics.geometry import distance_to_centroid, paired_geometry_bootstrap

__all__ = ["compare_embeddings", "geometry_vectors", "mcnemar_test"]

#: McNemar uses the exact binomial test below this many discordant pairs, chi-square above.
EXACT_BELOW = 25


def geometry_vectors(x: np.ndarray, distance: str) -> np.ndarray:
    """The vectors the geometry of a run is computed on, as in ``evaluate``.

    Args:
        x: (N, D) embeddings.
        distance: ``"cosine"`` (float32 L2-normalised rows) or ``"euclidean"`` (float32 ``x``).

    Returns:
        (N, D) float32.
    """
    x = np.asarray(x, dtype=np.float32)
    return l2_normalize(x) if check_distance(distance) == "cosine" else x


def mcnemar_test(b: int, c: int, *, exact: bool | None = None) -> dict:
    """McNemar's test of equal error rates from the two discordant counts.

    Args:
        b: pairs where A is correct and B wrong.
        c: pairs where A is wrong and B correct.
        exact: force the exact test (True) or the chi-square (False); default exact when
            ``b + c < EXACT_BELOW`` (25).

    Returns:
        dict with ``b``, ``c``, ``statistic``, ``pvalue`` and ``method``:

        * ``"exact"``: ``statistic = min(b, c)``, two-sided binomial
          ``p = min(1, 2 * P[Bin(b + c, 1/2) <= min(b, c)])``;
        * ``"chi2-cc"``: ``statistic = (|b - c| - 1)^2 / (b + c)`` (continuity-corrected),
          ``p = P[chi2_1 >= statistic]``.

        (The conventions of ``statsmodels.stats.contingency_tables.mcnemar``.) With no
        discordant pair, ``p = 1``.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    use_exact = n < EXACT_BELOW if exact is None else bool(exact)
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "pvalue": 1.0, "method": "exact"}
    if use_exact:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), n, 0.5)))
        return {"b": b, "c": c, "statistic": float(min(b, c)), "pvalue": p, "method": "exact"}
    stat = (abs(b - c) - 1.0) ** 2 / n
    return {
        "b": b,
        "c": c,
        "statistic": stat,
        "pvalue": float(stats.chi2.sf(stat, 1)),
        "method": "chi2-cc",
    }


def _jaccard(ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """(N,) Jaccard index of the neighbour sets in each row of two (N, k) index arrays."""
    k = ia.shape[1]
    out = np.empty(ia.shape[0])
    step = max(1, (1 << 22) // (k * k))
    for s in range(0, ia.shape[0], step):
        a, b = ia[s : s + step], ib[s : s + step]
        inter = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
        out[s : s + step] = inter / (2 * k - inter)
    return out


def _paired_class_metric_cis(y, pa, pb, k, n_boot, alpha, seed):
    """Bootstrap CIs of B - A for UAR and macro-F1.

    Both depend on the rows only through the counts of ``(true, pred_a, pred_b)`` cells, so a
    class-stratified resample is a multinomial draw over each class's observed cells:
    O(n_boot * cells), independent of N.
    """
    rng = np.random.default_rng(seed)
    cell = (y * k + pa) * k + pb
    boots = np.zeros((n_boot, k, k, k))
    for c in np.unique(y):
        cells, cnt = np.unique(cell[y == c], return_counts=True)
        draw = rng.multinomial(cnt.sum(), cnt / cnt.sum(), size=n_boot)
        t, rem = np.divmod(cells, k * k)
        a, b = np.divmod(rem, k)
        boots[:, t, a, b] = draw  # each (t, a, b) cell belongs to one class only

    sa = confusion_scores(boots.sum(axis=3))  # (n_boot, K, K): true x pred_a
    sb = confusion_scores(boots.sum(axis=2))  # true x pred_b
    return (
        percentile_interval(sb["mean_class_accuracy"] - sa["mean_class_accuracy"], alpha),
        percentile_interval(sb["macro_f1"] - sa["macro_f1"], alpha),
    )


def compare_embeddings(
    xa: np.ndarray,
    xb: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: list[str],
    logits_a: np.ndarray | None = None,
    logits_b: np.ndarray | None = None,
    sample_ids: np.ndarray | None = None,
    distance: str = "cosine",
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Compare two embeddings of the same samples: paired differences, McNemar, flips, overlap.

    Args:
        xa: (N, Da) embeddings of side A (the baseline).
        xb: (N, Db) embeddings of side B; row ``i`` is the same sample as in ``xa``. Every
            difference is ``B - A``.
        labels: (N,) int true labels in ``0..K-1``.
        class_names: the K class names.
        logits_a, logits_b: (N, K) logits of each side; correctness comes from the heads only
            when both are given, else from the kNN vote.
        sample_ids: (N,) ids naming the flipped samples (default the row numbers).
        distance: ``"cosine"`` or ``"euclidean"`` for the kNN searches and compactness.
        k: neighbours for the kNN vote and the neighbour-set overlap (clamped to N - 1).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        alpha: 1 - confidence level of the intervals.

    Returns:
        JSON-ready dict:

        * ``n``, ``class_names``, ``distance``, ``k``, ``n_boot``, ``alpha``;
        * ``correctness``: ``"head"`` (both sides have logits: argmax) or ``"knn"`` (leave-one-out
          k-NN vote, :func:`~ferembed.metrics.classification.knn_vote`);
        * ``metrics``: for ``accuracy``, ``mean_class_accuracy``, ``macro_f1``:
          ``{a, b, diff, ci_low, ci_high}`` (the interval is that of ``diff``);
        * ``geometry``: for ``compactness``, ``class_separation``, ``fisher_ratio``:
          ``{a, b, diff, ci_low, ci_high}``, the paired bootstrap of
          :func:`~ferembed.metrics.geometry.paired_geometry_bootstrap` on
          :func:`geometry_vectors` (unit rows for cosine, as ``evaluate``);
        * ``mcnemar``: :func:`mcnemar_test` on the correctness pairs;
        * ``per_class``: ``{class_name: {n, recall_a, recall_b, recall_delta, f1_a, f1_b,
          f1_delta, compactness_a, compactness_b, compactness_delta}}`` (compactness = mean
          distance to the class centroid);
        * ``flips``: ``{to_correct: [sample_id, ...], to_wrong: [...]}``: wrong in A and
          correct in B, and the reverse;
        * ``knn_overlap``: ``{k, mean_jaccard, ci_low, ci_high}``: per sample, the Jaccard index
          of its k leave-one-out neighbours in A and in B, averaged.

    Raises:
        ValueError: bad options, or fewer than 2 samples.
    """
    check_bootstrap_options(n_boot, alpha)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    distance = check_distance(distance)
    names = list(class_names)
    nc = len(names)
    y = np.asarray(labels, dtype=np.int64)
    n = y.size
    if n < 2:
        raise ValueError(f"compare needs at least 2 samples, got {n}")
    xa, xb = np.asarray(xa), np.asarray(xb)
    if xa.shape[0] != n or xb.shape[0] != n:
        raise ValueError(f"embeddings have {xa.shape[0]} and {xb.shape[0]} rows, labels {n}")
    k = int(min(k, n - 1))
    ids = np.arange(n).astype(str) if sample_ids is None else np.asarray(sample_ids, dtype=str)
    knn_a = compute_knn(xa, k, distance=distance).indices
    knn_b = compute_knn(xb, k, distance=distance).indices
    if logits_a is not None and logits_b is not None:
        source = "head"
        pa = np.asarray(logits_a).argmax(axis=1)
        pb = np.asarray(logits_b).argmax(axis=1)
    else:
        source = "knn"
        pa = knn_vote(knn_a, y, nc)
        pb = knn_vote(knn_b, y, nc)
    ca, cb = (pa == y), (pb == y)
    ma = classification_metrics(y, pa, nc)
    mb = classification_metrics(y, pb, nc)
    acc_ci = bootstrap_ci(
        cb.astype(np.float64) - ca, n_boot=n_boot, alpha=alpha, seed=seed, stratify=y
    )
    uar_ci, f1_ci = _paired_class_metric_cis(y, pa, pb, nc, n_boot, alpha, seed)
    metrics = {}
    for key, ci in (("accuracy", acc_ci), ("mean_class_accuracy", uar_ci), ("macro_f1", f1_ci)):
        metrics[key] = {
            "a": ma[key],
            "b": mb[key],
            "diff": mb[key] - ma[key],
            "ci_low": ci[0],
            "ci_high": ci[1],
        }
    comp = []
    for x in (xa, xb):
        d = distance_to_centroid(x, y, distance=distance, num_classes=nc)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp.append(np.bincount(y, weights=d, minlength=nc) / np.bincount(y, minlength=nc))
    per_class = {}
    support = ma["per_class"]["support"]
    for c, name in enumerate(names):
        row = {"n": int(support[c])}
        for key, va, vb in (
            ("recall", ma["per_class"]["recall"][c], mb["per_class"]["recall"][c]),
            ("f1", ma["per_class"]["f1"][c], mb["per_class"]["f1"][c]),
            ("compactness", comp[0][c], comp[1][c]),
        ):
            va, vb = float(va), float(vb)
            row.update({f"{key}_a": va, f"{key}_b": vb, f"{key}_delta": vb - va})
        per_class[name] = row
    jac = _jaccard(knn_a, knn_b)
    jac_ci = bootstrap_ci(jac, n_boot=n_boot, alpha=alpha, seed=seed, stratify=y)
    geometry = paired_geometry_bootstrap(
        geometry_vectors(xa, distance),
        geometry_vectors(xb, distance),
        y,
        distance=distance,
        num_classes=nc,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
    )
    return to_jsonable(
        {
            "n": int(n),
            "class_names": names,
            "distance": distance,
            "k": k,
            "n_boot": int(n_boot),
            "alpha": float(alpha),
            "correctness": source,
            "metrics": metrics,
            "geometry": geometry,
            "mcnemar": mcnemar_test(int((ca & ~cb).sum()), int((~ca & cb).sum())),
            "per_class": per_class,
            "flips": {"to_correct": ids[~ca & cb].tolist(), "to_wrong": ids[ca & ~cb].tolist()},
            "knn_overlap": {
                "k": k,
                "mean_jaccard": float(jac.mean()),
                "ci_low": jac_ci[0],
                "ci_high": jac_ci[1],
            },
        }
    )
