"""docs/results.md is rendered from docs/results.json alone, and the JSON holds every number."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _report.analyze import analyze, paired_verdict, spearman_rho
from _report.render import render
from report import with_analysis
from results_study import run_study

from ferembed._format import number
from ferembed._io import to_jsonable

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads((DOCS / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page() -> str:
    return (DOCS / "results.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ (a) the page is the JSON's


def test_page_is_rendered_from_the_json(results, page):
    assert render(results) == page


def test_stored_analysis_is_analyze_of_the_stored_raw_numbers(results):
    again = json.loads(json.dumps(to_jsonable(with_analysis(results))))
    assert again["analysis"] == results["analysis"]


def test_report_from_json_rewrites_the_same_files(tmp_path, capsys):
    shutil.copy(DOCS / "results.json", tmp_path / "results.json")
    assert run_study(["report", "--from-json", "--docs", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").read_bytes() == (DOCS / "results.md").read_bytes()
    assert (tmp_path / "results.json").read_bytes() == (DOCS / "results.json").read_bytes()


def test_report_from_json_without_a_results_file_is_one_line(tmp_path, capsys):
    assert run_study(["report", "--from-json", "--docs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "results.json not found" in err and "\n" not in err


def test_report_from_json_rejects_another_schema(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps({"schema": "ferembed.results/1"}))
    assert run_study(["report", "--from-json", "--docs", str(tmp_path)]) == 2
    assert "expected schema ferembed.results/2" in capsys.readouterr().err


# ------------------------------------------------------------------ (b) every number is in the JSON

#: A number as the page prints it: optional sign, thousands separators, decimals, exponent. Not
#: digits inside a name (FER2013, CK+48, L2, P@1, x86_64, round-0) nor part of a longer number.
NUMBER = re.compile(
    r"(?<![\w.+\-@/])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?(?!\w|\.\d)"
)
#: every format the page uses for a number (through ferembed._format.number), and those it uses
#: for a fraction shown as a percentage
SPECS = (".0f", ".1f", ".2f", ".3f", ".4f", "+.3f", ".3g", ",.0f", "g")
PERCENT_SPECS = (".0f", ".1f", "+.1f")
#: arrays in results.json that only the figures draw (the page prints none of their numbers)
FIGURE_DATA = {"confusion", "per_class_recall", "pooled_per_class_recall", "folds"}
#: the parts of results.json that each section of the page reports (by heading)
SECTIONS = {
    "# Results": ("analysis.setup",),
    "## Setup and budget": ("facts", "cpu_count", "machine", "zoo_command", "analysis.setup"),
    "## FER2013 test": ("fer2013", "facts", "analysis.fer2013"),
    "### Paired against softmax": ("compare", "analysis.compare"),
    "## The losses' claims": ("facts", "analysis.claims"),
    "## Seeds": ("seeds", "extra_seeds", "compare", "analysis.seeds", "analysis.compare"),
    "## Clustering pseudo-labels": ("pseudo", "analysis.pseudo"),
    "## CK+ subject-independent": ("ckplus", "ckplus_budget", "facts.ckplus", "analysis.ckplus"),
    "## Cross-dataset": ("cross", "facts.ckplus", "analysis.cross"),
    "## Leakage": ("leakage", "analysis.leakage"),
    "## A longer budget": ("long", "fer2013", "facts", "analysis.long"),
    "## Against the literature": (
        "fer2013",
        "ckplus",
        "cpu_count",
        "facts.literature",
        "analysis.setup",
        "analysis.literature",
        "analysis.ckplus",
        "long.runs.softmax",
    ),
    "## What did not work": (
        "fer2013",
        "facts.metric_loss_defaults",
        "analysis.fer2013",
        "analysis.setup",
    ),
    "## Reproduce": ("zoo_command", "analysis.ckplus"),
}


def _subtree(results: dict, dotted: str):
    node = results
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _formatted(node) -> set[str]:
    """Every text the page could print for the numbers under ``node``: each number in each of the
    page's formats (as a fraction: also as a percentage), and the numbers inside its strings."""
    out: set[str] = set()
    if isinstance(node, dict):
        node = [v for k, v in node.items() if k not in FIGURE_DATA]
    if isinstance(node, list):
        for v in node:
            out |= _formatted(v)
    elif isinstance(node, str):
        out |= set(NUMBER.findall(node))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out.add(str(node))
        out |= {number(node, spec) for spec in SPECS}
        out |= {number(node, spec, percent=True) for spec in PERCENT_SPECS}
    return out


def _sections(page: str) -> list[tuple[str, str]]:
    """(heading, text) per heading of the page (the text before the first heading has none)."""
    parts = re.split(r"^(#+ .*)$", page, flags=re.M)
    return [(parts[i], parts[i] + parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def _only(node, method: str, methods: set[str]):
    """``node`` with every dict keyed by method ("island", "island-s1") cut to ``method``'s
    entries."""
    if not isinstance(node, dict):
        return node

    def owner(key: str) -> str:
        return key if key in methods else key.rsplit("-s", 1)[0]

    if any(owner(k) in methods for k in node):
        node = {k: v for k, v in node.items() if owner(k) == method}
    return {k: _only(v, method, methods) for k, v in node.items()}


def unmatched(page: str, results: dict) -> list[tuple[str, str]]:
    """(heading, number) for every number of the page that its section's JSON does not hold; a
    table row of one loss is matched against that loss's numbers only."""
    methods = set(results["methods"])
    missing = []
    for heading, text in _sections(page):
        keys = [v for k, v in SECTIONS.items() if heading.startswith(k)]
        assert len(keys) == 1, f"no JSON parts listed for the section {heading!r}"
        parts = [_subtree(results, k) for k in keys[0]]
        pool = set().union(*map(_formatted, parts))
        for line in text.splitlines():
            row = re.match(r"\| \**(\w+)\**[ ,]", line)
            if row and row[1] in methods:
                line_pool = set().union(*(_formatted(_only(p, row[1], methods)) for p in parts))
            else:
                line_pool = pool
            missing += [(heading, t) for t in NUMBER.findall(line) if t not in line_pool]
    return missing


def test_every_number_on_the_page_is_in_the_json(results, page):
    assert len(NUMBER.findall(page)) > 700  # the tables are read, not skipped
    assert unmatched(page, results) == []


def test_the_number_check_finds_a_number_that_is_not_in_the_json(results, page):
    # a printed number that the JSON does not hold
    assert unmatched(page.replace("(Spearman ρ = 0.82)", "(Spearman ρ = 0.83)"), results) == [
        ("## FER2013 test", "0.83")
    ]
    # and a number that moved to the wrong section is not found in the other section's JSON
    forged = page.replace("## Reproduce\n", "## Reproduce\n\nρ = 0.87\n")
    assert unmatched(forged, results) == [("## Reproduce", "0.87")]


@pytest.mark.parametrize(
    ("path", "printed"),
    [
        ("analysis.fer2013.compactness_separation_spearman", "0.82"),
        ("analysis.cross.rank_correlation", "0.26"),
        ("analysis.cross.rank_correlation", "0.87"),
        ("analysis.setup.train_hours_total", "1.5"),
        ("analysis.compare", "0.0487"),
        ("analysis.pseudo.round1_wrong_fraction", "54"),
    ],
)
def test_numbers_missing_from_the_json_are_reported(results, page, path, printed):
    """The numbers the old results.json lacked: without them the check fails."""
    broken = copy.deepcopy(results)
    *parents, leaf = path.split(".")
    del _subtree(broken, ".".join(parents))[leaf]
    assert printed in {t for _, t in unmatched(page, broken)}


def test_number_pattern_reads_the_page_formats():
    text = "x86_64 FER2013 CK+48 P@1 L2 round-0 [-2.0, +0.4] 2.15e-10 14,355 lr 3e-3 0.0049. 57.9%"
    assert NUMBER.findall(text) == ["-2.0", "+0.4", "2.15e-10", "14,355", "3e-3", "0.0049", "57.9"]


# ------------------------------------------------------------------ (c) analyze() pieces


def test_spearman_rho_equals_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for n in (4, 8, 10, 50):
        x, y = rng.normal(size=n), rng.normal(size=n)
        y[: n // 2] = np.round(y[: n // 2], 0)  # ties
        assert spearman_rho(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman_rho([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman_rho([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_rho_validates():
    with pytest.raises(ValueError, match="one length >= 2"):
        spearman_rho([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="one length >= 2"):
        spearman_rho([1], [1])


def test_correlations_of_the_study_equal_scipy(results):
    from scipy.stats import spearmanr

    fer, cross, an = results["fer2013"], results["cross"], results["analysis"]
    live = [m for m in fer if fer[m]["class_separation"] >= 0.01]
    assert live == an["fer2013"]["live"] and len(live) == 10
    rho = spearmanr(
        [fer[m]["compactness"] for m in live], [fer[m]["class_separation"] for m in live]
    )
    assert an["fer2013"]["compactness_separation_spearman"] == pytest.approx(rho.statistic)
    ck = [cross[m]["accuracy"] for m in cross]
    rc = an["cross"]["rank_correlation"]
    for key, fer_key in (("fer_accuracy", "accuracy"), ("fer_mean_class", "mean_class_accuracy")):
        expected = spearmanr(ck, [fer[m][fer_key] for m in cross]).statistic
        assert rc[key] == pytest.approx(expected)


def test_holm_pvalues_of_the_study_equal_statsmodels(results):
    from statsmodels.stats.multitest import multipletests

    cmp_, an = results["compare"], results["analysis"]["compare"]
    for seed in (0, 1, 2):
        keys = [k for k in cmp_ if k.endswith(f"-s{seed}")]
        expected = multipletests([cmp_[k]["mcnemar"]["pvalue"] for k in keys], method="holm")[1]
        got = [an[k]["mcnemar_pvalue_holm"] for k in keys]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert all(an[k]["family_size"] == len(keys) for k in keys)
    assert len([k for k in cmp_ if k.endswith("-s0")]) == 9


def _diff(diff, lo, hi):
    return {"diff": diff, "ci_low": lo, "ci_high": hi}


def test_verdicts_follow_the_interval_and_the_direction():
    assert paired_verdict(_diff(-0.1, -0.2, -0.05), "compactness") == "better"  # lower is better
    assert paired_verdict(_diff(-0.1, -0.2, -0.05), "class_separation") == "worse"
    assert paired_verdict(_diff(0.1, 0.05, 0.2), "accuracy") == "better"
    assert paired_verdict(_diff(0.1, -0.01, 0.2), "accuracy") == "n.s."
    assert paired_verdict(None, "accuracy") == "–"


def _raw(results: dict) -> dict:
    return {k: v for k, v in results.items() if k != "analysis"}


def test_claims_and_seed_summaries_from_hand_computed_cases(results):
    raw = copy.deepcopy(_raw(results))
    c = raw["compare"]["center-s0"]
    c["geometry"]["compactness"] = _diff(-0.1, -0.2, -0.05)  # tighter: the claim holds
    c["metrics"]["accuracy"] = _diff(0.02, 0.01, 0.03)  # and more accurate
    an = analyze(raw)
    row = next(r for r in an["claims"]["rows"] if r["method"] == "center")
    assert row["verdict"] == "geometry yes, accuracy yes"
    assert an["claims"]["groups"]["geo_and_acc"] == ["center"]
    runs = raw["seeds"]["softmax"]["runs"]
    acc = [r["accuracy"] for r in runs]
    mean, sd = sum(acc) / 3, (sum((a - sum(acc) / 3) ** 2 for a in acc) / 2) ** 0.5
    s = an["seeds"]["summary"]["softmax"]["accuracy"]
    assert s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(sd)
    assert an["seeds"]["vs_softmax"]["weighted_cluster"]["significant_sign"] == "negative"


def test_pseudo_label_analysis(results):
    p = results["pseudo"]
    an = results["analysis"]["pseudo"]
    assert an["shipped_round"] == 0  # round 0 has the best validation score of the record
    assert an["val_gain"] == pytest.approx(p["rounds"][2]["val_acc"] - p["rounds"][0]["val_acc"])
    assert an["round1_wrong_fraction"] == pytest.approx(1 - p["rounds"][1]["kept_acc"])
