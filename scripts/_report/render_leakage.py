"""The page's leakage section: near-duplicate faces between FER2013's splits, formatting only."""

from __future__ import annotations

from ferembed._format import number

from ._text import DASH, pct_text


def _int(v) -> str:
    return number(v, ",.0f", missing=DASH)


def leakage_section(res: dict, figs: dict, L: list[str]) -> None:
    leak = res.get("leakage")
    if not leak:
        return
    an = res["analysis"]["leakage"]
    splits = [s for s in ("test", "val") if s in an]
    test = leak["test"]
    L += [
        "## Leakage: near-duplicate faces across FER2013's splits",
        "",
        "FER2013 holds the same photograph more than once, sometimes in two splits. "
        f"`ferembed leakage` (docs/leakage.md) pairs faces whose thumbnails' perceptual hashes "
        f"differ by at most {leak['max_hamming']} bits; the runs are FER2013 test, val and train "
        f"embedded with the shipped {leak['model']} checkpoint. Test against train: "
        f"**{_int(test['pairs'])} pairs; {_int(test['duplicated'])} of {_int(test['n'])} test "
        f"faces ({pct_text(an['test']['fraction'])}%) have at least one near-duplicate in "
        f"train**, {_int(test['identical_pairs'])} of the pairs pixel-identical.",
        "",
        "| class | " + " | ".join(f"{s} n | {s} duplicated | fraction" for s in splits) + " |",
        "|---|" + "---:|---:|---:|" * len(splits),
    ]
    for name in test["per_class"]:
        cells = []
        for s in splits:
            row = leak[s]["per_class"][name]
            frac = an[s]["per_class_fraction"][name]
            cells += [_int(row["n"]), _int(row["duplicated"]), f"{pct_text(frac)}%"]
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    total = []
    for s in splits:
        total += [_int(leak[s]["n"]), _int(leak[s]["duplicated"])]
        total.append(f"{pct_text(an[s]['fraction'])}%")
    L += [
        "| all | " + " | ".join(total) + " |",
        "",
        f"Accuracy of {leak['model']} (stored predictions) with and without the duplicated faces:",
        "",
        "| split | all | without the duplicated faces | duplicated faces only | change |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in splits:
        acc = leak[s]["accuracy"]
        if acc is None:
            continue
        L.append(
            f"| {s} | {pct_text(acc['accuracy'])}% (n = {_int(acc['n'])}) | "
            f"**{pct_text(acc['accuracy_clean'])}%** (n = {_int(acc['n_clean'])}) | "
            f"{pct_text(acc['accuracy_duplicated'])}% (n = {_int(acc['n_duplicated'])}) | "
            f"{number(an[s]['accuracy_change'], '+.1f', percent=True)} pts |"
        )
    acc = test["accuracy"]
    text = ""
    if acc is not None and acc["accuracy_duplicated"] > acc["accuracy_clean"]:
        text = (
            "The duplicated test faces are easier than the rest, which fits the model having seen "
            "the same photograph in training: the test accuracies on this page are inflated by "
            "the duplicates (by the change above for this model). "
        )
    agree = an["test"]["label_agreement"]
    L += [
        "",
        text + f"The copies' labels disagree in {_int(test['label_disagreeing_pairs'])} of the "
        f"{_int(test['pairs'])} test pairs ({pct_text(agree, '.1f')}% agree): label noise in "
        "FER2013 itself.",
        "",
    ]
