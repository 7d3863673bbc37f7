"""The page's longer-budget section (``checkpoints/fer2013-long``): formatting only, from the
results dict."""

from __future__ import annotations

from ferembed._format import number
from ferembed.training.pseudo_label import best_round

from ._text import DASH, cell, cell_ci, diff_cell, pct_text

BASELINE = "softmax"
CONTROL = "affinity_cluster_control"
PSEUDO = "affinity_cluster"
GEOMETRY = ("compactness", "class_separation", "fisher_ratio")


def _vs_softmax(res: dict, m: str) -> str:
    """Δ accuracy [CI] | McNemar p | Holm p | Δ geometry cells against the longer softmax."""
    key = f"{m}-vs-{BASELINE}"
    c = res["long"]["compare"].get(key)
    if c is None:
        return " | ".join([DASH] * (3 + len(GEOMETRY)))
    an = res["analysis"]["long"]["compare"][key]
    sig, g = an["significant"], c.get("geometry") or {}
    cells = [
        diff_cell(c["metrics"]["accuracy"], True, sig["accuracy"]),
        number(c["mcnemar"]["pvalue"], ".3g"),
        number(an["mcnemar_pvalue_holm"], ".3g"),
    ]
    return " | ".join(
        cells + [diff_cell(g[k], False, sig[k]) if k in g else DASH for k in GEOMETRY]
    )


def _epochs(r: dict) -> str:
    """``epochs (best)``; the pseudo-label loop's as ``8 + 2×2 (round 2, epoch 1)``."""
    epochs = number(r["epochs"], ".0f", missing=DASH)
    best = number(r["best_epoch"], ".0f", missing=DASH)
    p = r.get("pseudo")
    if not p:
        return f"{epochs} ({best})"
    epochs += f" + {p.get('pseudo_rounds', DASH)}×{p.get('pseudo_epochs', DASH)}"
    rounds = r.get("rounds")
    if not rounds:
        return f"{epochs} ({best})"
    shipped = rounds[best_round([x.get("best_score") for x in rounds])]
    return f"{epochs} (round {shipped['round']}, epoch {shipped.get('best_epoch', DASH)})"


def _initialised(runs: dict) -> str:
    """The sentence naming the runs whose recipe starts from another checkpoint."""
    init = {m: r["init_checkpoint"] for m, r in runs.items() if r.get("init_checkpoint")}
    if not init:
        return ""
    names = ", ".join(f"{m} (from `{p}`)" for m, p in sorted(init.items()))
    return (
        f" Initialised from a checkpoint by their recipe, so their epochs come on top of that "
        f"checkpoint's: {names}."
    )


def long_section(res: dict, figs: dict, L: list[str]) -> None:
    lg = res.get("long")
    if not lg:
        return
    an, runs, fer = res["analysis"]["long"], lg["runs"], res["fer2013"]
    level = pct_text(res["facts"]["bootstrap"]["confidence"], ".0f")
    devices = sorted({str(r.get("device")) for r in runs.values()})
    L += [
        "## A longer budget",
        "",
        "The 4-epoch differences above might not survive training nearer convergence. These "
        "checkpoints (`checkpoints/fer2013-long`, each with its card and the command that made it) "
        "were trained with the shipped recipe of each loss and only the number of epochs changed "
        f"(device: {', '.join(devices)}). The best epoch by validation "
        "mean class accuracy is kept, as for the shipped ones."
        + _initialised(runs)
        + " Δ columns are paired against the "
        "longer-budget softmax on the same test faces "
        f"({level}% bootstrap intervals; * when the interval excludes 0); the McNemar "
        "p-values are Holm-adjusted over the losses of this "
        "table.",
        "",
        "| loss | arch | epochs (best) | acc | 4-epoch acc | gain | Δ acc vs softmax | McNemar p "
        "| Holm p | Δ compactness | Δ separation | Δ Fisher |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in an["order"]:
        if m == CONTROL:
            continue
        r = runs[m]
        short = fer.get(m, {}).get("accuracy")
        gain = an["gain_over_4_epochs"].get(m)
        L.append(
            f"| **{m}** | {r['arch']} | {_epochs(r)} | "
            f"{cell_ci(r['accuracy'], r['ci'].get('accuracy'), True)} | {cell(short, True)} | "
            f"{number(gain, '+.1f', percent=True, missing=DASH)} | "
            + (" | ".join([DASH] * 6) if m == BASELINE else _vs_softmax(res, m))
            + " |"
        )
    _control(res, L)
    L.append("")


def _control(res: dict, L: list[str]) -> None:
    """The pseudo-label loop against the same rounds on the labelled half alone."""
    lg, an = res["long"], res["analysis"]["long"]
    key = f"{PSEUDO}-vs-{CONTROL}"
    if key not in lg["compare"]:
        return
    pl, ctl = lg["runs"][PSEUDO], lg["runs"][CONTROL]
    c, sig = lg["compare"][key], an["compare"][key]["significant"]
    cfg = pl.get("pseudo") or {}
    acc_pl, acc_ctl = (cell_ci(r["accuracy"], r["ci"].get("accuracy"), True) for r in (pl, ctl))
    L += [
        "",
        f"**Pseudo-labels against their control.** `{PSEUDO}` here trains round 0 on the "
        f"labelled half for {number(pl['epochs'], '.0f', missing=DASH)} epochs, then "
        f"{number(cfg.get('pseudo_rounds'), '.0f', missing=DASH)} pseudo-label rounds of "
        f"{number(cfg.get('pseudo_epochs'), '.0f', missing=DASH)} epochs; `{CONTROL}` runs the "
        "same schedule on the labelled half alone (no pseudo-labels), so the difference is what "
        f"the pseudo-labels add. Test accuracy: {acc_pl} with pseudo-labels, {acc_ctl} without; "
        f"paired Δ {diff_cell(c['metrics']['accuracy'], True, sig['accuracy'])} points, McNemar "
        f"p = {number(c['mcnemar']['pvalue'], '.3g')}"
        + _mean_class_text(c, sig)
        + "."
        + _rounds_text(res, pl.get("rounds")),
    ]


def _mean_class_text(c: dict, sig: dict) -> str:
    """The paired Δ of mean class accuracy, when the comparison has it."""
    mca = c["metrics"].get("mean_class_accuracy")
    if mca is None:
        return ""
    return (
        f"; mean class accuracy Δ {diff_cell(mca, True, sig.get('mean_class_accuracy', False))} "
        "points"
    )


def _rounds_text(res: dict, rounds: list[dict] | None) -> str:
    """Round 0's validation accuracy (against the 4-epoch loop's) and how correct the kept
    pseudo-labels were, round by round."""
    if not rounds:
        return ""
    r0 = next((r for r in rounds if r.get("round") == 0), None)
    kept = [r for r in rounds if r.get("kept_acc") is not None]
    txt = ""
    if r0 is not None and r0.get("val_acc") is not None:
        txt += f" Round 0 ends at {pct_text(r0['val_acc'])}% validation accuracy"
        short = ((res.get("pseudo") or {}).get("rounds") or [{}])[0].get("val_acc")
        if short is not None:
            txt += f" (the 4-epoch loop's round 0: {pct_text(short)}%)"
        txt += "."
    if kept:
        txt += " The pseudo-labels kept were " + ", ".join(
            f"{pct_text(r['kept_acc'])}% correct in round {r['round']}" for r in kept
        )
        txt += " (k-means on the whole pool: " + ", ".join(
            f"{pct_text(r['pool_acc'])}%" for r in kept if r.get("pool_acc") is not None
        )
        txt += ")."
    return txt
