"""Every derived number of the report, computed from the raw numbers that ``collect`` read.

``analyze(raw)`` returns the ``analysis`` block of docs/results.json: orders, verdicts, claim
checks, seed summaries, Holm-adjusted p-values, rank correlations, gaps. The renderer only
formats what is here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ferembed.metrics.catalog import metric_info
from ferembed.metrics.multitest import holm_adjust

from .collect import GEOMETRY, SEED_KEYS

#: what each method's paper claims its loss does to the embedding (checked against softmax)
CLAIMS = {
    "center": ("compactness",),
    "island": ("compactness", "class_separation"),
    "weighted_cluster": ("compactness",),
    "separate": ("compactness", "class_separation"),
    "emlf": ("compactness", "class_separation"),
    "handcrafted": (),
    "affinity_cluster": (),
    "triplet": ("class_separation",),
    "arcface": ("compactness", "class_separation"),
}
#: +1 where a larger value is better, -1 where a smaller one is (from the metric catalog)
BETTER = {
    k: 1 if metric_info(k).higher_is_better else -1
    for k in ("compactness", "class_separation", "fisher_ratio", "accuracy", "mean_class_accuracy")
}
BASELINE = "softmax"


def spearman_rho(x, y) -> float:
    """Spearman's rank correlation of two (n,) samples: Pearson's r of their ranks, tied values
    sharing the mean of their ranks. NaN when either sample is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-D of one length >= 2, got {x.shape} and {y.shape}")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.arange(1, v.size + 1)
    for value in np.unique(v):  # ties share their mean rank
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def excludes_zero(d: dict | None) -> bool:
    """True when the paired 95% interval of a difference excludes 0."""
    return bool(d) and (d["ci_low"] > 0 or d["ci_high"] < 0)


def paired_verdict(d: dict | None, key: str) -> str:
    """'better' / 'worse' (the interval of loss - softmax excludes 0) or 'n.s.'; '–' if absent."""
    if not d:
        return "–"
    if excludes_zero(d):
        return "better" if np.sign(d["diff"]) == BETTER[key] else "worse"
    return "n.s."


def analyze(raw: dict[str, Any]) -> dict[str, Any]:
    """The derived numbers of the report (the ``analysis`` block of results.json)."""
    fer = raw["fer2013"]
    return {
        "setup": _setup(fer),
        "fer2013": _fer2013(fer, raw["facts"]),
        "compare": _compare(raw["compare"]),
        "paired_order": [f"{m}-s0" for m in _by_accuracy(fer) if f"{m}-s0" in raw["compare"]],
        "claims": _claims(fer, raw["compare"]),
        "seeds": _seeds(raw["seeds"], raw["compare"], raw["seeded_methods"]),
        "pseudo": _pseudo(raw["pseudo"]),
        "ckplus": _ckplus(raw["ckplus"]),
        "cross": _cross(raw["cross"], fer),
        "literature": _literature(fer, raw["facts"]),
        "leakage": _leakage(raw.get("leakage")),
        "long": _long(raw.get("long"), fer),
    }


def _by_accuracy(d: dict) -> list[str]:
    """Keys of ``d`` by decreasing ``d[key]["accuracy"]`` (ties keep their order)."""
    return sorted(d, key=lambda m: -(d[m]["accuracy"] or 0))


def _setup(fer: dict) -> dict[str, Any]:
    if not fer:
        return {}
    walls = [v["wall_time_s"] or 0 for v in fer.values()]
    params = [v["params"] for v in fer.values() if v["arch"] == "vgg_small" and v["params"]]
    return {
        "epochs": next(iter(fer.values()))["epochs"],
        "train_minutes": [min(walls) / 60, max(walls) / 60],
        "train_hours_total": sum(walls) / 3600,
        "backbone_params_millions": params[0] / 1e6 if params else None,
    }


def _card_differs(entry: dict) -> bool:
    """The shipped checkpoint's card gives another test accuracy than the study's run (by more
    than half a face of FER2013 test): the checkpoint was replaced after the study ran."""
    card, measured = entry.get("card_test_accuracy"), entry.get("accuracy")
    return card is not None and measured is not None and abs(card - measured) > 1.5e-4


def _fer2013(fer: dict, facts: dict) -> dict[str, Any]:
    floor = facts["collapse_separation"]
    live = [m for m in fer if (fer[m]["class_separation"] or 0) >= floor]
    out: dict[str, Any] = {
        "order": _by_accuracy(fer),
        "live": live,
        "n_live": len(live),
        "collapsed": [m for m in fer if (fer[m]["class_separation"] or 0) < floor],
        # shipped checkpoints retrained since the study measured them (their card disagrees)
        "superseded": [m for m in fer if _card_differs(fer[m])],
        # compactness vs separation across the losses that did not collapse
        "compactness_separation_spearman": None,
        "n_classes": {m: len(fer[m]["class_names"]) for m in fer},
        "chance_accuracy": {m: 1 / len(fer[m]["class_names"]) for m in fer},
    }
    if len(live) >= 4:
        out["compactness_separation_spearman"] = spearman_rho(
            [fer[m]["compactness"] for m in live], [fer[m]["class_separation"] for m in live]
        )
    others = [m for m in fer if m != BASELINE]
    best_other = max(others, key=lambda m: fer[m]["accuracy"] or 0, default=None)
    out["confusion_methods"] = [m for m in (BASELINE, best_other) if m and fer[m].get("confusion")]
    return out


def _compare(cmp_: dict) -> dict[str, Any]:
    """Per comparison: which differences are significant, and the McNemar p-value Holm-adjusted
    within its family (every loss tested against the softmax of one seed)."""
    out: dict[str, Any] = {}
    families: dict[str, list[str]] = {}
    for key in cmp_:
        families.setdefault(f"{BASELINE}-s{key.rsplit('-s', 1)[1]}", []).append(key)
    for baseline, keys in families.items():
        holm = holm_adjust([cmp_[k]["mcnemar"]["pvalue"] for k in keys])
        for k, p in zip(keys, holm, strict=True):
            c = cmp_[k]
            diffs = {**c["metrics"], **(c.get("geometry") or {})}
            out[k] = {
                "baseline": baseline,
                "family_size": len(keys),
                "mcnemar_pvalue_holm": float(p),
                "significant": {m: excludes_zero(d) for m, d in diffs.items()},
            }
    return out


def _claims(fer: dict, cmp_: dict) -> dict[str, Any]:
    rows = []
    groups: dict[str, list[str]] = {"geo": [], "geo_no": [], "acc": [], "acc_worse": []}
    for m in [m for m in CLAIMS if m in fer]:
        c = cmp_.get(f"{m}-s0")
        if not c:
            continue
        g = c["geometry"] or {}
        v = {k: paired_verdict(g.get(k), k) for k in GEOMETRY}
        v["accuracy"] = paired_verdict(c["metrics"]["accuracy"], "accuracy")
        claimed = list(CLAIMS[m])
        geo_ok = all(v[k] == "better" for k in claimed) if claimed else None
        acc_ok = v["accuracy"] == "better"
        acc_text = "accuracy yes" if acc_ok else "accuracy no"
        text = f"{'geometry yes' if geo_ok else 'geometry no'}, {acc_text}" if claimed else acc_text
        if claimed:
            groups["geo" if geo_ok else "geo_no"].append(m)
        if acc_ok:
            groups["acc"].append(m)
        elif v["accuracy"] == "worse":
            groups["acc_worse"].append(m)
        rows.append(
            {
                "method": m,
                "claims": claimed,
                "verdicts": v,
                "geometry_holds": geo_ok,
                "accuracy_holds": acc_ok,
                "verdict": text,
            }
        )
    groups["geo_and_acc"] = [m for m in groups["geo"] if m in groups["acc"]]
    return {"rows": rows, "groups": groups}


def _seeds(seeds: dict, cmp_: dict, seeded: list[str]) -> dict[str, Any]:
    summary = {}
    for m, s in seeds.items():
        summary[m] = {"n_runs": len(s["runs"])}
        for k in SEED_KEYS:
            v = np.array([r[k] for r in s["runs"] if r[k] is not None], dtype=float)
            summary[m][k] = {
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if v.size > 1 else None,
            }
    vs_softmax = {}
    for m in seeded[1:]:
        keys = sorted(k for k in cmp_ if k.startswith(f"{m}-s"))
        if not keys:
            continue
        diffs = [cmp_[k]["metrics"]["accuracy"] for k in keys]
        sig = [d for d in diffs if excludes_zero(d)]
        signs = {d["diff"] < 0 for d in sig}
        vs_softmax[m] = {
            "keys": keys,
            "seeds": [int(k.rsplit("-s", 1)[1]) for k in keys],
            "n_seeds": len(keys),
            "accuracy_diff": [d["diff"] for d in diffs],
            "n_significant": len(sig),
            # the sign shared by every significant difference (None: none, or mixed)
            "significant_sign": (
                ("negative" if signs.pop() else "positive") if len(signs) == 1 else None
            ),
        }
    return {"summary": summary, "vs_softmax": vs_softmax}


def _pseudo(p: dict | None) -> dict[str, Any] | None:
    if not p:
        return None
    rounds, tests = p["rounds"], p["round_test"]
    kept = rounds[1].get("kept_acc", 0.0) if len(rounds) > 1 else 0.0
    v0 = rounds[0]["val_acc"]
    return {
        # the loop ships the round with the best validation score (pseudo_label._pick_best)
        "shipped_round": int(np.argmax([r.get("best_score") or 0 for r in rounds])),
        "last_round": rounds[-1]["round"],
        "val_gain": rounds[-1]["val_acc"] - v0,
        "test_gain": (
            tests[-1]["accuracy"] - tests[0]["accuracy"] if tests[0] and tests[-1] else None
        ),
        "round1_kept_acc": kept,
        "round0_val_acc": v0,
        "kept_below_round0": kept < v0,
        "round1_wrong_fraction": 1 - kept,
        # the loop lowered validation accuracy (then the page says why)
        "val_dropped": rounds[-1]["val_acc"] - v0 < 0 and len(rounds) > 1,
    }


def _long(lg: dict | None, fer: dict) -> dict[str, Any] | None:
    """The longer budget: runs by accuracy, the gain over the 4-epoch checkpoint of the same loss,
    and per comparison its significant differences; the McNemar p-values of the losses against
    the longer-budget softmax are Holm-adjusted as one family (the pseudo-label loop against its
    control is a family of one)."""
    if not lg:
        return None
    runs, cmp_ = lg["runs"], lg["compare"]
    family = [k for k in cmp_ if k.endswith(f"-vs-{BASELINE}")]
    holm = dict(
        zip(family, holm_adjust([cmp_[k]["mcnemar"]["pvalue"] for k in family]), strict=True)
    )
    compare = {}
    for k, c in cmp_.items():
        diffs = {**c["metrics"], **(c.get("geometry") or {})}
        compare[k] = {
            "family_size": len(family) if k in holm else 1,
            "mcnemar_pvalue_holm": float(holm.get(k, c["mcnemar"]["pvalue"])),
            "significant": {m: excludes_zero(d) for m, d in diffs.items()},
        }
    gain = {
        m: r["accuracy"] - fer[m]["accuracy"]
        for m, r in runs.items()
        if m in fer and r["accuracy"] is not None and fer[m]["accuracy"] is not None
    }
    return {"order": _by_accuracy(runs), "compare": compare, "gain_over_4_epochs": gain}


def _ckplus(ck: dict) -> dict[str, Any]:
    if not ck:
        return {}
    order = sorted(ck, key=lambda m: -ck[m]["summary"]["accuracy"]["mean"])
    n_folds = next(iter(ck.values()))["n_folds"]
    return {"order": order, "best": order[0], "n_folds": n_folds, "train_folds": n_folds - 1}


def _cross(cross: dict, fer: dict) -> dict[str, Any]:
    if not cross:
        return {}
    out: dict[str, Any] = {
        "order": _by_accuracy(cross),
        "n": next(iter(cross.values()))["n"],
        "rank_correlation": None,
    }
    shared = [m for m in cross if m in fer and cross[m]["accuracy"] is not None]
    if len(shared) >= 4:
        ck_acc = [cross[m]["accuracy"] for m in shared]
        rho_acc = spearman_rho(ck_acc, [fer[m]["accuracy"] for m in shared])
        rho_mca = spearman_rho(ck_acc, [fer[m]["mean_class_accuracy"] for m in shared])
        out["rank_correlation"] = {
            "n_losses": len(shared),
            "fer_accuracy": rho_acc,
            "fer_mean_class": rho_mca,
            "mean_class_closer": rho_mca > rho_acc,
        }
    return out


def _literature(fer: dict, facts: dict) -> dict[str, Any]:
    if not fer:
        return {}
    best = _by_accuracy(fer)[0]
    lo = facts["literature"]["fer2013_accuracy"][0]
    out: dict[str, Any] = {
        "best": best,
        "gap": lo - fer[best]["accuracy"],
        "n_losses": len(fer),
        "last_epoch_best": sum(fer[m]["best_epoch"] == fer[m]["epochs"] for m in fer),
    }
    return out


def _leakage(leak: dict | None) -> dict[str, Any] | None:
    """Per split: the share of faces with a copy in train (overall and per class), the accuracy
    change without them (points), and the share of pairs whose two copies agree on the label."""
    if not leak:
        return None
    out: dict[str, Any] = {}
    for split in ("test", "val"):
        d = leak.get(split)
        if not d:
            continue
        acc = d["accuracy"]
        out[split] = {
            "fraction": d["duplicated"] / d["n"],
            "per_class_fraction": {
                c: v["duplicated"] / v["n"] if v["n"] else None for c, v in d["per_class"].items()
            },
            "label_agreement": 1 - d["label_disagreeing_pairs"] / d["pairs"]
            if d["pairs"]
            else None,
            "accuracy_change": None if acc is None else acc["accuracy_clean"] - acc["accuracy"],
        }
    return out
