"""The whole report stage on a study rebuilt from docs/results.json: collect reads back exactly the
raw numbers of the JSON, the figures are drawn, and the written page is docs/results.md."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from report import with_analysis, write_report
from results_study import Study

from ferembed._io import write_json
from ferembed.metrics.catalog import HEADLINE

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: what the report stage fills in beside the runs' numbers: the machine it ran on, the figures
NOT_FROM_RUNS = ("machine", "cpu_count", "figures", "analysis")


def _materialise(res: dict, root: Path) -> Study:
    """Checkpoint sidecars, run metrics, comparisons and records holding ``res``'s raw numbers."""
    ckpt, work = root / "checkpoints", root / "work"
    runs = work / "runs"
    for m, v in res["fer2013"].items():
        write_json(
            ckpt / f"{m}.json",
            {
                "arch": v["arch"],
                "num_params": v["params"],
                "train": {"epochs": v["epochs"], "init_checkpoint": v.get("init_checkpoint")},
                "metrics": {k: v[k] for k in ("best_epoch", "val_mean_class_acc", "val_acc")},
                "wall_time_s": v["wall_time_s"],
                "device": v["device"],
            },
        )
        card = {"test_accuracy": v["card_test_accuracy"]}
        if v.get("card_class_separation") is not None:
            card["class_separation"] = v["card_class_separation"]
        if m == "softmax":
            card["command"] = res["zoo_command"]
        write_json(ckpt / f"{m}.card.json", card)
        write_json(
            runs / "fer2013-test" / f"{m}-s0" / "metrics.json",
            {
                "n": v["n"],
                **{k: v.get(k) for k in HEADLINE},
                "ci": v["ci"],
                "confusion": {"head": {"normalized": v["confusion"]}},
                "class_names": v["class_names"],
                "per_class": {c: {"recall": r} for c, r in v["per_class_recall"].items()},
            },
        )
    for m, s in res["seeds"].items():
        for row in s["runs"]:
            path = runs / "fer2013-test" / f"{m}-s{row['seed']}" / "metrics.json"
            if row["seed"] == 0:  # the shipped checkpoint's run: the same file as above
                met = json.loads(path.read_text())
                assert all(met[k] == row[k] for k in row if k != "seed")
                continue
            write_json(path, {k: x for k, x in row.items() if k != "seed"})
    for key, c in res["compare"].items():
        flips = {k: list(range(n)) for k, n in c["flips"].items()}
        write_json(work / "compare" / f"{key}.json", {**c, "flips": flips})
    for m, k in res["ckplus"].items():
        rec = {"folds": k["folds"], "summary": k["summary"], "num_folds": k["n_folds"]}
        if k.get("carried_over"):
            rec["carried_over"] = k["carried_over"]
        write_json(work / "ckplus" / m / "kfold.json", {**rec, "config": res["ckplus_budget"]})
    for m, v in res["cross"].items():
        write_json(runs / "ckplus-all" / f"{m}-s0" / "metrics.json", v)
    p = res["pseudo"]
    write_json(ckpt / "affinity_cluster.pseudo_labels.json", {**p["record"], "rounds": p["rounds"]})
    for r, t in zip(p["rounds"], p["round_test"], strict=True):
        run = runs / "fer2013-test" / f"affinity_cluster-round_{r['round']}-s0"
        met = {"accuracy": t["accuracy"], "ci": {"accuracy": t["ci"]}}
        write_json(run / "metrics.json", {**met, "carried_over": t.get("carried_over")})
    write_json(work / "leakage" / "leakage.json", res["leakage"])
    _materialise_long(res.get("long"), root / "checkpoints-long", work)
    args = argparse.Namespace(
        checkpoints=str(ckpt),
        work=str(work),
        fer2013="",
        ckplus="",
        docs=str(root / "docs"),
        quiet=True,
        device="cpu",
        methods=None,
        reverse=False,
    )
    return Study(args)


def _materialise_long(lg: dict | None, folder: Path, work: Path) -> None:
    """The longer budget's sidecars, configs, test metrics and comparisons (``Study.long_ckpt``
    is the checkpoints folder's name + ``-long``, beside it)."""
    if not lg:
        return
    for m, v in lg["runs"].items():
        train = {"epochs": v["epochs"], **(v["pseudo"] or {})}
        train["init_checkpoint"] = v.get("init_checkpoint")
        if v["pseudo"]:
            train["method"] = "pseudo_label"
        side = {k: v[k] for k in ("arch", "wall_time_s", "device")}
        metrics = {k: v[k] for k in ("best_epoch", "val_mean_class_acc")}
        write_json(folder / f"{m}.json", {**side, "train": train, "metrics": metrics})
        write_json(folder / f"{m}.config.json", train)
        if v.get("rounds") is not None:
            write_json(folder / f"{m}.pseudo_labels.json", {"rounds": v["rounds"]})
        drop = ("arch", "epochs", "pseudo", "rounds", *side, *metrics)
        met = {k: x for k, x in v.items() if k not in drop}
        write_json(work / "runs" / "fer2013-test" / f"{m}-long-s0" / "metrics.json", met)
    for key, c in lg["compare"].items():
        write_json(work / "compare-long" / f"{key}.json", c)


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads((DOCS / "results.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_report_stage_round_trip(stored, tmp_path, monkeypatch):
    study = _materialise(stored, tmp_path)
    # A method's description is the registry's text when the study ran, not a number read from
    # the runs; the registry may have moved on since (retrained triplet/ArcFace recipes).
    import ferembed.zoo

    described = {m: v["description"] for m, v in stored["fer2013"].items()}
    monkeypatch.setattr(ferembed.zoo, "DESCRIPTIONS", {**ferembed.zoo.DESCRIPTIONS, **described})
    assert study.methods == stored["methods"]
    assert study.seeded_methods() == stored["seeded_methods"]
    write_report(study)
    written = json.loads((tmp_path / "docs" / "results.json").read_text(encoding="utf-8"))
    raw = {k: v for k, v in written.items() if k not in NOT_FROM_RUNS}
    assert raw == {k: v for k, v in stored.items() if k not in NOT_FROM_RUNS}
    assert written["analysis"] == json.loads(json.dumps(with_analysis(stored)["analysis"]))
    # no run.json in these runs: every figure but the UMAP
    figs = {"fer2013_accuracy", "fer2013_geometry", "fer2013_confusion", "ckplus_folds"}
    figs.add("pseudo_label_rounds")
    assert set(written["figures"]) == figs
    assert all((tmp_path / "docs" / p).stat().st_size > 0 for p in written["figures"].values())
    # the page, with the machine and figures of the shipped one, is the shipped page
    written.update({k: stored[k] for k in ("machine", "cpu_count", "figures")})
    write_json(tmp_path / "docs" / "results.json", written)
    from report import rerender

    text = rerender(tmp_path / "docs").read_text(encoding="utf-8")
    assert text == (DOCS / "results.md").read_text(encoding="utf-8")
