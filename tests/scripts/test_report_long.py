"""The longer-budget section of docs/results.md: its analysis (gain over the 4-epoch checkpoint,
Holm over the losses against the longer softmax, the pseudo-label control) and that every number
it prints is in the JSON. The longer-budget numbers here are made up; the expected values are
computed by hand or by statsmodels."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from _report.analyze import analyze
from _report.render import render
from test_report import unmatched

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _diff(diff, lo, hi):
    return {"diff": diff, "ci_low": lo, "ci_high": hi}


def _run(acc, epochs=30, pseudo=None):
    keys = ("mean_class_accuracy", "compactness", "class_separation", "fisher_ratio")
    return {
        "arch": "vgg_small",
        "epochs": epochs,
        "best_epoch": epochs - 2,
        "val_mean_class_acc": 0.5,
        "wall_time_s": 61.0,
        "device": "cuda",
        "pseudo": pseudo,
        "n": 3589,
        "accuracy": acc,
        **{k: 0.25 for k in keys},
        "silhouette": 0.05,
        "precision_at_1": 0.5,
        "map_at_r": 0.25,
        "ci": {"accuracy": [acc - 0.011, acc + 0.011]},
    }


def _cmp(d_acc, p):
    geo = {k: _diff(0.01, -0.005, 0.02) for k in ("compactness", "class_separation")}
    return {
        "metrics": {"accuracy": _diff(d_acc, d_acc - 0.0125, d_acc + 0.0125)},
        "geometry": {**geo, "fisher_ratio": _diff(-0.04, -0.06, -0.02)},
        "mcnemar": {"b": 10, "c": 20, "statistic": 3.0, "pvalue": p, "method": "chi2-cc"},
    }


PSEUDO = {"pseudo_rounds": 3, "pseudo_epochs": 4, "pseudo_control": False}
ROUNDS = [
    {"round": 0, "n_trained": 14354, "epochs": 12, "val_acc": 0.5331, "best_score": 0.45},
    {"round": 1, "n_trained": 21532, "n_kept": 7178, "kept_acc": 0.6124, "pool_acc": 0.4870},
    {"round": 2, "n_trained": 21532, "n_kept": 7178, "kept_acc": 0.6230, "pool_acc": 0.4911},
    {"round": 3, "n_trained": 21532, "n_kept": 7178, "kept_acc": 0.6001, "pool_acc": 0.4902},
]
for _r, (_score, _best) in zip(ROUNDS[1:], [(0.47, 4), (0.47, 3), (0.46, 2)], strict=True):
    _r.update(epochs=4, best_score=_score, best_epoch=_best)  # round 1 ships: the first best


@pytest.fixture(scope="module")
def results() -> dict:
    raw = json.loads((DOCS / "results.json").read_text(encoding="utf-8"))
    raw.pop("analysis")
    raw["long"] = {
        "runs": {
            "softmax": _run(0.6375),
            "handcrafted": _run(0.6500),
            "separate": _run(0.6250),
            "affinity_cluster": {**_run(0.5880, epochs=12, pseudo=PSEUDO), "rounds": ROUNDS},
            "affinity_cluster_control": _run(
                0.6010, epochs=12, pseudo={**PSEUDO, "pseudo_control": True}
            ),
        },
        "compare": {
            "handcrafted-vs-softmax": _cmp(0.0125, 0.04),
            "separate-vs-softmax": _cmp(-0.0125, 0.03),
            "affinity_cluster-vs-softmax": _cmp(-0.05, 0.0001),
            "affinity_cluster-vs-affinity_cluster_control": _cmp(-0.0125, 0.2),
        },
    }
    return {**raw, "analysis": analyze(raw)}


def test_gain_over_the_4_epoch_checkpoint_is_the_difference_of_accuracies(results):
    gain = results["analysis"]["long"]["gain_over_4_epochs"]
    for m in ("softmax", "handcrafted", "separate", "affinity_cluster"):
        assert gain[m] == pytest.approx(
            results["long"]["runs"][m]["accuracy"] - results["fer2013"][m]["accuracy"]
        )
    assert "affinity_cluster_control" not in gain  # no 4-epoch checkpoint of that name


def test_holm_over_the_losses_against_the_longer_softmax_equals_statsmodels(results):
    from statsmodels.stats.multitest import multipletests

    an = results["analysis"]["long"]["compare"]
    family = ["handcrafted-vs-softmax", "separate-vs-softmax", "affinity_cluster-vs-softmax"]
    expected = multipletests([0.04, 0.03, 0.0001], method="holm")[1]
    np.testing.assert_allclose([an[k]["mcnemar_pvalue_holm"] for k in family], expected)
    assert all(an[k]["family_size"] == 3 for k in family)
    # the control comparison is its own family: unadjusted
    control = an["affinity_cluster-vs-affinity_cluster_control"]
    assert control["family_size"] == 1 and control["mcnemar_pvalue_holm"] == 0.2
    assert control["significant"]["accuracy"] is False  # [-2.5, 0.0] touches 0
    assert an["handcrafted-vs-softmax"]["significant"]["fisher_ratio"] is True


def test_the_section_lists_runs_by_accuracy_and_states_the_control(results):
    page = render(results)
    section = page.split("## A longer budget", 1)[1].split("\n## ", 1)[0]
    rows = [
        line.split("|")[1].strip(" *") for line in section.splitlines() if line.startswith("| **")
    ]
    assert rows == ["handcrafted", "softmax", "separate", "affinity_cluster"]
    # round-0 epochs + rounds × epochs (the shipped round: the first best on validation)
    assert "| 12 + 3×4 (round 1, epoch 4) |" in section
    assert "| 30 (28) |" in section  # the other losses: epochs (best epoch)
    assert "58.8 [57.7, 59.9] with pseudo-labels, 60.1 [59.0, 61.2] without" in section
    assert "paired Δ -1.2 [-2.5, +0.0] points, McNemar p = 0.2." in section
    short = results["pseudo"]["rounds"][0]["val_acc"]  # the shipped 4-epoch loop's round 0
    assert "Round 0 ends at 53.3% validation accuracy (the 4-epoch loop's round 0: " in section
    assert f"{100 * short:.1f}%)" in section
    assert "61.2% correct in round 1, 62.3% correct in round 2, 60.0% correct in round 3" in section
    assert "(k-means on the whole pool: 48.7%, 49.1%, 49.0%)" in section


def test_every_number_of_the_section_is_in_the_json(results):
    assert unmatched(render(results), results) == []
    forged = copy.deepcopy(results)
    forged["long"]["runs"]["handcrafted"]["accuracy"] = 0.7
    # the page of the forged results, checked against the true ones: the changed cells are found
    assert unmatched(render(forged), results)


def test_no_longer_budget_no_section(results):
    raw = {k: v for k, v in results.items() if k != "analysis"}
    raw["long"] = None
    assert "## A longer budget" not in render({**raw, "analysis": analyze(raw)})
