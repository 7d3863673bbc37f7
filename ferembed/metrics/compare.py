"""Paired comparison of two runs on the same samples (``ferembed compare RUN_A RUN_B``).

Rows are paired by ``sample_id``. Correctness comes from each run's classifier head when both
runs have logits, else from a leave-one-out kNN vote in each run's own embedding. All intervals
are percentile bootstraps stratified by true class (the test set's class mix stays fixed) and
resample the *pairs*, so they account for the correlation between the two runs.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import stats

from ferembed.metrics._validation import check_distance
from ferembed.metrics.bootstrap import _check_options, _percentiles, bootstrap_ci
from ferembed.metrics.classification import classification_metrics, knn_vote
from ferembed.metrics.geometry import distance_to_centroid, paired_geometry_bootstrap

__all__ = ["compare_runs", "format_comparison", "mcnemar_test"]

#: McNemar uses the exact binomial test below this many discordant pairs, chi-square above.
EXACT_BELOW = 25


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


def _as_run(run):
    from ferembed.runs import Run, load_run

    return run if isinstance(run, Run) else load_run(os.fspath(run))


def _pair(ra, rb) -> np.ndarray:
    """Row of B for each row of A; ValueError naming what differs."""
    if ra.class_names != rb.class_names:
        raise ValueError(
            f"runs have different class lists: {ra.name!r} has {ra.class_names}, "
            f"{rb.name!r} has {rb.class_names}"
        )
    ids = []
    for r in (ra, rb):
        s = r.samples["sample_id"].astype(str).to_numpy()
        uniq, cnt = np.unique(s, return_counts=True)
        if (cnt > 1).any():
            raise ValueError(f"run {r.name!r} has duplicate sample_id {uniq[cnt > 1][0]!r}")
        ids.append(s)
    ia, ib = ids
    only_a = np.setdiff1d(ia, ib)
    only_b = np.setdiff1d(ib, ia)
    if only_a.size or only_b.size:
        raise ValueError(
            f"runs are not on the same samples: {only_a.size} sample_id(s) only in "
            f"{ra.name!r} (e.g. {only_a[:3].tolist()}), {only_b.size} only in {rb.name!r} "
            f"(e.g. {only_b[:3].tolist()})"
        )
    pos = {s: i for i, s in enumerate(ib)}
    pos_b = np.fromiter((pos[s] for s in ia), dtype=np.int64, count=ia.size)
    ya, yb = ra.labels, rb.labels[pos_b]
    bad = np.flatnonzero(ya != yb)
    if bad.size:
        raise ValueError(
            f"runs disagree on the label of {bad.size} sample(s), e.g. sample_id {ia[bad[0]]!r}"
        )
    return pos_b


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

    def scores(cm):  # (n_boot, K, K) -> uar, macro-F1 per resample
        tp = np.diagonal(cm, axis1=1, axis2=2)
        sup, pred = cm.sum(axis=2), cm.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rec = np.where(sup > 0, tp / sup, np.nan)
            f1 = np.where(sup + pred > 0, 2 * tp / (sup + pred), np.nan)
        return np.nanmean(rec, axis=1), np.nanmean(f1, axis=1)

    uar_a, f1_a = scores(boots.sum(axis=3))
    uar_b, f1_b = scores(boots.sum(axis=2))
    return _percentiles(uar_b - uar_a, alpha), _percentiles(f1_b - f1_a, alpha)


def compare_runs(
    run_a,
    run_b,
    *,
    distance: str | None = None,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Compare two runs of the same samples: paired differences, McNemar, flips, kNN overlap.

    Args:
        run_a: a :class:`ferembed.runs.Run` or a run directory (the baseline).
        run_b: the same for the challenger; every difference is ``B - A``.
        distance: ``"cosine"`` or ``"euclidean"`` for the kNN searches and compactness
            (default: run A's distance).
        k: neighbours for the kNN vote and the neighbour-set overlap (clamped to N - 1).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        alpha: 1 - confidence level of the intervals.

    Returns:
        JSON-ready dict:

        * ``run_a``, ``run_b``, ``n``, ``class_names``, ``distance``, ``k``, ``n_boot``, ``alpha``;
        * ``correctness``: ``"head"`` (both runs have logits: argmax) or ``"knn"`` (leave-one-out
          k-NN vote, :func:`~ferembed.metrics.classification.knn_vote`);
        * ``metrics``: for ``accuracy``, ``mean_class_accuracy``, ``macro_f1``:
          ``{a, b, diff, ci_low, ci_high}`` (the interval is that of ``diff``);
        * ``geometry``: for ``compactness``, ``class_separation``, ``fisher_ratio``:
          ``{a, b, diff, ci_low, ci_high}``, the paired bootstrap of
          :func:`~ferembed.metrics.geometry.paired_geometry_bootstrap`;
        * ``mcnemar``: :func:`mcnemar_test` on the correctness pairs;
        * ``per_class``: ``{class_name: {n, recall_a, recall_b, recall_delta, f1_a, f1_b,
          f1_delta, compactness_a, compactness_b, compactness_delta}}`` (compactness = mean
          distance to the class centroid);
        * ``flips``: ``{to_correct: [sample_id, ...], to_wrong: [...]}``: wrong in A and
          correct in B, and the reverse;
        * ``knn_overlap``: ``{k, mean_jaccard, ci_low, ci_high}``: per sample, the Jaccard index
          of its k leave-one-out neighbours in A and in B, averaged.

    Raises:
        ValueError: different class lists, different sample sets, duplicate sample ids or
            labels that disagree -- the message names what differs.
    """
    from ferembed.metrics._knn import compute_knn

    _check_options(n_boot, alpha)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    ra, rb = _as_run(run_a), _as_run(run_b)
    pos_b = _pair(ra, rb)
    distance = check_distance(distance or ra.distance)
    names = ra.class_names
    nc = len(names)
    y = ra.labels
    n = y.size
    if n < 2:
        raise ValueError(f"compare needs at least 2 samples, got {n}")
    k = int(min(k, n - 1))
    xa = np.asarray(ra.embeddings)
    xb = np.asarray(rb.embeddings)[pos_b]
    knn_a = compute_knn(xa, k, distance=distance).indices
    knn_b = compute_knn(xb, k, distance=distance).indices
    if ra.logits is not None and rb.logits is not None:
        source = "head"
        pa = np.asarray(ra.logits).argmax(axis=1)
        pb = np.asarray(rb.logits)[pos_b].argmax(axis=1)
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
    ids = ra.samples["sample_id"].astype(str).to_numpy()
    jac = _jaccard(knn_a, knn_b)
    jac_ci = bootstrap_ci(jac, n_boot=n_boot, alpha=alpha, seed=seed, stratify=y)
    geometry = paired_geometry_bootstrap(
        xa, xb, y, distance=distance, num_classes=nc, n_boot=n_boot, alpha=alpha, seed=seed
    )
    return _json_ready(
        {
            "run_a": ra.name,
            "run_b": rb.name,
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


def _json_ready(obj):
    """Non-finite floats (an absent class's compactness) become None, numpy scalars Python."""
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _num(v: float, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def format_comparison(result: dict) -> str:
    """A plain-text report of :func:`compare_runs`'s result, for the CLI."""
    level = round(100 * (1 - result["alpha"]))
    lines = [
        f"A = {result['run_a']}    B = {result['run_b']}",
        f"{result['n']} paired samples, correctness from {result['correctness']}, "
        f"distance {result['distance']}, k = {result['k']}",
        "",
        f"{'metric':<22}{'A':>9}{'B':>9}{'B - A':>10}   {level}% CI of B - A",
    ]
    for key, m in [*result["metrics"].items(), *(result.get("geometry") or {}).items()]:
        lines.append(
            f"{key:<22}{_num(m['a']):>9}{_num(m['b']):>9}{_num(m['diff'], True):>10}   "
            f"[{_num(m['ci_low'], True)}, {_num(m['ci_high'], True)}]"
        )
    mc = result["mcnemar"]
    lines += [
        "",
        f"McNemar ({mc['method']}): A right/B wrong = {mc['b']}, A wrong/B right = {mc['c']}, "
        f"statistic = {mc['statistic']:.4g}, p = {mc['pvalue']:.4g}",
        f"flips: {len(result['flips']['to_correct'])} wrong -> correct, "
        f"{len(result['flips']['to_wrong'])} correct -> wrong",
    ]
    ko = result["knn_overlap"]
    lines += [
        f"kNN-set overlap (k = {ko['k']}): mean Jaccard {_num(ko['mean_jaccard'])} "
        f"[{_num(ko['ci_low'])}, {_num(ko['ci_high'])}]",
        "",
        f"{'class':<14}{'n':>6}{'recall A':>10}{'recall B':>10}{'delta':>9}"
        f"{'F1 A':>8}{'F1 B':>8}{'delta':>9}{'compact A':>11}{'compact B':>11}{'delta':>9}",
    ]
    for name, r in result["per_class"].items():
        lines.append(
            f"{name[:13]:<14}{r['n']:>6}{_num(r['recall_a']):>10}{_num(r['recall_b']):>10}"
            f"{_num(r['recall_delta'], True):>9}{_num(r['f1_a']):>8}{_num(r['f1_b']):>8}"
            f"{_num(r['f1_delta'], True):>9}{_num(r['compactness_a']):>11}"
            f"{_num(r['compactness_b']):>11}{_num(r['compactness_delta'], True):>9}"
        )
    return "\n".join(lines)
