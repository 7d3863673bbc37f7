"""Compare runs of the same samples (``ferembed compare RUN_A RUN_B [RUN_C ...]``).

The runs are paired here by ``sample_id``; the paired statistics on the aligned arrays are
:func:`ferembed.metrics.compare.compare_embeddings`. Several challengers against one baseline
(:func:`compare_many`) get Holm-adjusted McNemar p-values
(:func:`ferembed.metrics.multitest.holm_adjust`).
"""

from __future__ import annotations

import os

import numpy as np

from ferembed import _format
from ferembed.metrics.compare import compare_embeddings
from ferembed.metrics.multitest import holm_adjust
from ferembed.runs.cache import CacheEntry, cache_entry, load_cached, save_cached
from ferembed.runs.evaluate import as_run
from ferembed.runs.format import Run


def pair_rows(ra: Run, rb: Run) -> np.ndarray:
    """(N,) int64 row of B for each row of A, pairing by ``sample_id``.

    Raises:
        ValueError: different class lists, different sample sets, duplicate sample ids or labels
            that disagree -- the message names what differs.
    """
    if ra.class_names != rb.class_names:
        raise ValueError(
            f"runs have different class lists: {ra.name!r} has {ra.class_names}, "
            f"{rb.name!r} has {rb.class_names}"
        )
    ids = []
    for r in (ra, rb):
        s = r.sample_ids
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


#: Bumped when a comparison's numbers change for the same runs and options, so that cached
#: comparisons computed before are not served (2: geometry on unit rows for cosine, as
#: ``evaluate``; recentred geometry intervals).
COMPARE_VERSION = 2


def _entry(
    ra: Run, rb: Run, *, distance: str | None, k: int, n_boot: int, seed: int, alpha: float
) -> CacheEntry:
    """A comparison's cache entry, in A's ``cache/``, keyed by both runs and every option."""
    options = {
        "distance": distance or ra.distance,
        "k": k,
        "n_boot": n_boot,
        "seed": seed,
        "alpha": alpha,
        "compare_version": COMPARE_VERSION,
    }
    return cache_entry(ra, "compare", options, inputs=[rb])


def is_comparison_cached(
    run_a: Run | str | os.PathLike,
    run_b: Run | str | os.PathLike,
    *,
    distance: str | None = None,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> bool:
    """Whether ``compare_runs(run_a, run_b, cache=True, ...)`` with these options is on disk."""
    entry = _entry(
        as_run(run_a), as_run(run_b), distance=distance, k=k, n_boot=n_boot, seed=seed, alpha=alpha
    )
    return load_cached(entry) is not None


def compare_runs(
    run_a: Run | str | os.PathLike,
    run_b: Run | str | os.PathLike,
    *,
    distance: str | None = None,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    cache: bool = False,
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
        cache: read / write the result in A's ``cache/`` (:mod:`ferembed.runs.cache`), keyed by
            both runs' identity and these options: the exact kNN searches take minutes at 100k.

    Returns:
        JSON-ready dict: ``run_a``, ``run_b`` (the names) and everything
        :func:`ferembed.metrics.compare.compare_embeddings` returns (correctness from both heads
        when both runs have logits, else the kNN vote; flips named by ``sample_id``).

    Raises:
        ValueError: different class lists, different sample sets, duplicate sample ids or
            labels that disagree -- the message names what differs; bad options.
    """
    ra, rb = as_run(run_a), as_run(run_b)
    opts = {"distance": distance, "k": k, "n_boot": n_boot, "seed": seed, "alpha": alpha}
    entry = _entry(ra, rb, **opts) if cache else None
    hit = load_cached(entry) if entry is not None else None
    if hit is not None:
        return hit
    pos_b = pair_rows(ra, rb)
    both_heads = ra.logits is not None and rb.logits is not None
    result = compare_embeddings(
        np.asarray(ra.embeddings),
        np.asarray(rb.embeddings)[pos_b],
        ra.labels,
        class_names=ra.class_names,
        logits_a=np.asarray(ra.logits) if both_heads else None,
        logits_b=np.asarray(rb.logits)[pos_b] if both_heads else None,
        sample_ids=ra.sample_ids,
        distance=distance or ra.distance,
        k=k,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )
    result = {"run_a": ra.name, "run_b": rb.name, **result}
    if entry is not None:
        save_cached(entry, result)
    return result


def compare_many(
    run_a: Run | str | os.PathLike,
    runs_b: list[Run | str | os.PathLike],
    **options,
) -> dict:
    """Compare several runs against one baseline, with Holm-adjusted p-values.

    Each challenger is compared with :func:`compare_runs` (same ``options``); the McNemar
    p-values of the family are adjusted by Holm-Bonferroni, which keeps the chance of any false
    "significant" at ``alpha`` whatever the number of challengers.

    Args:
        run_a: the baseline run (or its directory).
        runs_b: one or more challengers on the same samples.
        **options: keyword options of :func:`compare_runs` (``distance``, ``k``, ``n_boot``,
            ``seed``, ``alpha``, ``cache``).

    Returns:
        JSON-ready ``{"baseline": name, "correction": "holm", "comparisons": [...]}``: one
        :func:`compare_runs` result per challenger, in the order given, whose ``mcnemar`` also
        holds ``pvalue_holm``.
    """
    ra = as_run(run_a)
    results = [compare_runs(ra, rb, **options) for rb in runs_b]
    adjusted = holm_adjust([r["mcnemar"]["pvalue"] for r in results])
    for r, p in zip(results, adjusted, strict=True):
        r["mcnemar"] = {**r["mcnemar"], "pvalue_holm": float(p)}
    return {"baseline": ra.name, "correction": "holm", "comparisons": results}


def format_comparisons(result: dict) -> str:
    """A plain-text table of :func:`compare_many`'s result: one row per challenger."""
    first = result["comparisons"][0]
    level = round(100 * (1 - first["alpha"]))
    lines = [
        f"baseline A = {result['baseline']}; {len(result['comparisons'])} runs B, "
        f"{first['n']} paired samples, McNemar p-values Holm-adjusted over the family",
        "",
        f"{'run B':<24}{'acc A':>8}{'acc B':>8}{'B - A':>9}  {f'{level}% CI':<19}"
        f"{'p':>9}{'p (Holm)':>10}",
    ]
    for r in result["comparisons"]:
        m, mc = r["metrics"]["accuracy"], r["mcnemar"]
        ci = f"[{_num(m['ci_low'], True)}, {_num(m['ci_high'], True)}]"
        lines.append(
            f"{r['run_b'][:23]:<24}{_num(m['a']):>8}{_num(m['b']):>8}{_num(m['diff'], True):>9}"
            f"  {ci:<19}{mc['pvalue']:>9.4g}{mc['pvalue_holm']:>10.4g}"
        )
    return "\n".join(lines)


def _num(v: float | None, signed: bool = False) -> str:
    return _format.number(v, "+.4f" if signed else ".4f", missing="-")


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
