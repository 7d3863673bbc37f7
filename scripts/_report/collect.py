"""Raw numbers of the study, read from its runs and records (no derived quantities here)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from ferembed.runs import METRICS_FILE

SCHEMA = "ferembed.results/2"

#: headline metrics of the FER2013 table, read from each test run's metrics.json
FER_KEYS = (
    "accuracy",
    "mean_class_accuracy",
    "compactness",
    "class_separation",
    "fisher_ratio",
    "silhouette",
    "precision_at_1",
    "map_at_r",
)
GEOMETRY = ("compactness", "class_separation", "fisher_ratio")
SEED_KEYS = ("accuracy", "mean_class_accuracy", *GEOMETRY, "map_at_r")

#: Facts of the study's design that the page states (the shared recipe, dataset sizes, the
#: literature it compares with). They are inputs, not measurements, but they are numbers the page
#: prints, so they travel in results.json with everything else.
FACTS: dict[str, Any] = {
    "fer2013_faces": {"train": 28709, "val": 3589, "test": 3589},
    # the training recipe shared by every loss, as `ferembed zoo` ran it (see zoo_command)
    "recipe": (
        "batch 64, AdamW (lr 3e-3, cosine, 1 warm-up epoch), augmentation (flip, 4-pixel shifts, "
        "±10° rotation, ±10% scale, brightness/contrast, random erasing), seed 0"
    ),
    "embedding_dim": 128,
    "bootstrap": {"confidence": 0.95, "resamples": 1000},
    # a run whose separation is below this has collapsed (its class centroids coincide)
    "collapse_separation": 0.01,
    "ckplus": {"faces": 981, "subjects": 118, "classes": 7, "contempt_faces": 54, "shared": 6},
    # ferembed's defaults for the two metric-only losses
    "metric_loss_defaults": {"triplet_margin": 0.2, "arcface_margin": 0.5, "arcface_scale": 64},
    "literature": {
        "fer2013_accuracy": [0.72, 0.74],
        "fer2013_target": 0.72,
        "ckplus_accuracy": [0.97, 0.99],
        "params_millions": [1, 10],
        "epochs": [100, 300],
    },
}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect(study) -> dict[str, Any]:
    """The raw numbers of the report, read from the study's runs and records.

    Args:
        study: a ``results_study.Study`` (its paths, methods and seeds).
    """
    from ferembed.zoo import DESCRIPTIONS

    raw: dict[str, Any] = {
        "schema": SCHEMA,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "cpu_count": os.cpu_count(),
        "facts": FACTS,
        "methods": study.methods,
        "seeded_methods": study.seeded_methods(),
        "extra_seeds": list(study.extra_seeds),
        "fer2013": {},
        "seeds": {},
        "compare": {},
        "ckplus": {},
        "cross": {},
        "pseudo": None,
        "ckplus_budget": None,
        "leakage": None,
        "long": None,
    }
    for m in study.methods:
        met = _load(study.run_dir("fer2013-test", m) / METRICS_FILE)
        if met is not None:
            raw["fer2013"][m] = _fer_entry(study, m, met, DESCRIPTIONS.get(m, m))
    for m in study.seeded_methods():
        rows = []
        for seed in (0, *study.extra_seeds):
            met = _load(study.run_dir("fer2013-test", m, seed) / METRICS_FILE)
            if met is not None:
                rows.append({"seed": seed, **{k: met.get(k) for k in SEED_KEYS}})
        if rows:
            raw["seeds"][m] = {"runs": rows}
    for path in sorted((study.work / "compare").glob("*.json")):
        c = json.loads(path.read_text())
        raw["compare"][path.stem] = {
            "metrics": c["metrics"],
            "geometry": c.get("geometry"),
            "mcnemar": c["mcnemar"],
            "flips": {k: len(v) for k, v in c["flips"].items()},
            "knn_overlap": c["knn_overlap"],
        }
    for m in study.methods:
        rec = _load(study.work / "ckplus" / m / "kfold.json")
        if rec is not None:
            raw["ckplus"][m] = {
                "folds": rec["folds"],
                "summary": rec["summary"],
                "n_folds": rec["num_folds"],
                # where a re-run took the folds of an unchanged checkpoint from an earlier study
                "carried_over": rec.get("carried_over"),
            }
            raw["ckplus_budget"] = {
                k: rec["config"].get(k) for k in ("epochs", "lr", "batch_size", "optimizer")
            }
        met = _load(study.run_dir("ckplus-all", m) / METRICS_FILE)
        if met is not None:
            raw["cross"][m] = {
                "n": met["n"],
                "class_names": met["class_names"],
                "accuracy": met.get("accuracy"),
                "mean_class_accuracy": met.get("mean_class_accuracy"),
                "ci": {k: met["ci"].get(k) for k in ("accuracy", "mean_class_accuracy")},
                "notes": [n for n in met.get("notes", []) if "contempt" in n],
            }
    raw["pseudo"] = _pseudo(study)
    raw["leakage"] = _load(study.work / "leakage" / LEAKAGE_RECORD)
    raw["long"] = _long(study)
    raw["zoo_command"] = (_load(study.ckpt / "softmax.card.json") or {}).get("command")
    return raw


def _fer_entry(study, m: str, met: dict, description: str) -> dict[str, Any]:
    side = study.sidecar(m)
    card = _load(study.ckpt / f"{m}.card.json") or {}
    train = side.get("train") or {}
    sm = side.get("metrics") or {}
    return {
        "description": description,
        "arch": side.get("arch"),
        "params": side.get("num_params"),
        "epochs": train.get("epochs"),
        "init_checkpoint": train.get("init_checkpoint"),
        "best_epoch": sm.get("best_epoch"),
        "val_mean_class_acc": sm.get("val_mean_class_acc"),
        "val_acc": sm.get("val_acc"),
        "wall_time_s": side.get("wall_time_s"),
        "device": side.get("device"),
        "card_test_accuracy": card.get("test_accuracy"),
        "card_class_separation": card.get("class_separation"),
        "n": met["n"],
        **{k: met.get(k) for k in FER_KEYS},
        "ci": {k: met.get("ci", {}).get(k) for k in FER_KEYS},
        "confusion": (met.get("confusion") or {}).get("head", {}).get("normalized"),
        "class_names": met["class_names"],
        "per_class_recall": {c: v.get("recall") for c, v in (met.get("per_class") or {}).items()},
    }


#: what a longer-budget checkpoint's config says of its pseudo-label rounds (when it has them)
PSEUDO_CONFIG_KEYS = ("pseudo_rounds", "pseudo_epochs", "pseudo_control")


def _long(study) -> dict[str, Any] | None:
    """The longer budget: each checkpoint's sidecar and test metrics, and the comparisons."""
    names = study.long_methods() if study.long_ckpt.is_dir() else []
    runs = {}
    for m in names:
        met = _load(study.run_dir("fer2013-test", f"{m}-long") / METRICS_FILE)
        if met is None:
            continue
        side = json.loads((study.long_ckpt / f"{m}.json").read_text())
        train, sm = side.get("train") or {}, side.get("metrics") or {}
        runs[m] = {
            "arch": side.get("arch"),
            "epochs": train.get("epochs"),
            "best_epoch": sm.get("best_epoch"),
            "val_mean_class_acc": sm.get("val_mean_class_acc"),
            "wall_time_s": side.get("wall_time_s"),
            "device": side.get("device"),
            # every config carries the pseudo-label settings; they apply to the loop alone
            "pseudo": {k: train[k] for k in PSEUDO_CONFIG_KEYS if k in train}
            if train.get("method") == "pseudo_label"
            else None,
            "rounds": _long_rounds(study.long_ckpt / f"{m}.pseudo_labels.json"),
            "init_checkpoint": train.get("init_checkpoint"),
            "n": met["n"],
            **{k: met.get(k) for k in FER_KEYS},
            "ci": {k: met.get("ci", {}).get(k) for k in FER_KEYS},
        }
    if not runs:
        return None
    compare = {}
    for path in sorted((study.work / "compare-long").glob("*.json")):
        c = json.loads(path.read_text())
        compare[path.stem] = {k: c.get(k) for k in ("metrics", "geometry", "mcnemar")}
    return {"runs": runs, "compare": compare}


#: what the longer budget reports of each pseudo-label round (the record's scalars)
ROUND_KEYS = (
    "round",
    "n_trained",
    "epochs",
    "n_kept",
    "kept_acc",
    "pool_acc",
    "val_acc",
    "best_epoch",
    "best_score",
)


def _long_rounds(path: Path) -> list[dict] | None:
    """The rounds of a shipped pseudo-label record (its scalars), None without one."""
    rec = _load(path)
    if rec is None:
        return None
    return [{k: r[k] for k in ROUND_KEYS if k in r} for r in rec.get("rounds", [])]


def _pseudo(study) -> dict[str, Any] | None:
    rec = _load(study.ckpt / "affinity_cluster.pseudo_labels.json")
    if rec is None:
        return None
    tests = []
    for r in rec["rounds"]:
        met = _load(
            study.run_dir("fer2013-test", f"affinity_cluster-round_{r['round']}") / METRICS_FILE
        )
        tests.append(
            {
                "accuracy": met.get("accuracy"),
                "ci": (met.get("ci") or {}).get("accuracy"),
                "carried_over": met.get("carried_over"),
            }
            if met
            else None
        )
    return {
        # the scalars of the record (not its per-sample id lists)
        "record": {k: v for k, v in rec.items() if not isinstance(v, (list, dict))},
        "rounds": [{k: v for k, v in r.items() if k != "per_class"} for r in rec["rounds"]],
        "round_test": tests,
    }


#: The splits checked for near-duplicates in the training split, and the model that embedded them.
LEAKAGE_SPLITS = ("test", "val")
LEAKAGE_MODEL = "softmax"
#: the record of the leakage stage (:func:`leakage_record`'s result), beside its runs
LEAKAGE_RECORD = "leakage.json"


def leakage_run(runs: Path, split: str) -> Path:
    """The run of FER2013 ``split`` embedded by the leakage check's model, under ``runs``."""
    return Path(runs) / f"fer2013-{split}"


def leakage_record(runs: Path) -> dict[str, Any] | None:
    """Near-duplicates of FER2013 test and val faces in train (``ferembed.runs.leakage``).

    Args:
        runs: the folder holding the runs ``fer2013-{train,val,test}`` (:func:`leakage_run`),
            embedded with the softmax checkpoint; None is returned when one is missing.

    Returns:
        ``{"model", "max_hamming", "test": {...}, "val": {...}}``: per split the number of
        ``pairs`` (of them ``identical_pairs``, pixel distance 0, and ``label_disagreeing_pairs``),
        ``n``, ``duplicated`` (faces with >= 1 copy in train), ``per_class`` ``{class: {n,
        duplicated}}`` and the model's ``accuracy`` with and without the duplicated faces.
    """
    from ferembed.runs.leakage import check_leakage

    paths = {s: leakage_run(runs, s) for s in ("train", *LEAKAGE_SPLITS)}
    if not all(p.is_dir() for p in paths.values()):
        return None
    out: dict[str, Any] = {"model": LEAKAGE_MODEL}
    for split in LEAKAGE_SPLITS:
        report = check_leakage(paths[split], paths["train"])
        out["max_hamming"] = report.max_hamming
        pairs, table = report.pairs, report.summary
        per_class = {
            row["class"]: {"n": int(row["n"]), "duplicated": int(row["duplicated"])}
            for row in table.to_dict("records")
        }
        total = per_class.pop("all")
        out[split] = {
            "pairs": int(len(pairs)),
            "identical_pairs": int((pairs["pixel_distance"] == 0).sum()),
            "label_disagreeing_pairs": int((pairs["a_label"] != pairs["b_label"]).sum()),
            **total,
            "per_class": per_class,
            "accuracy": report.accuracy,
        }
    return out
