"""Train every seed method under one budget and ship the checkpoints with model cards.

``ferembed zoo --dataset synthfer --out checkpoints/synthfer`` trains each method of
:data:`METHODS` with the same backbone, data, epochs and seed, copies each best checkpoint to
``OUT/<method>.safetensors`` + ``.json``, saves the exact training config next to it
(``OUT/<method>.config.json``: ``ferembed train --config`` on it reproduces the checkpoint), embeds
the test split, evaluates it, and writes a model card ``OUT/<method>.md`` and an index
``OUT/README.md``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from ferembed import _format, _io
from ferembed.errors import FerembedError
from ferembed.training.methods import DESCRIPTIONS, METHODS


def train_zoo(
    *,
    dataset: str,
    out: str | Path,
    root: str | None = None,
    methods: list[str] | None = None,
    base: dict[str, Any] | None = None,
    work: str | Path | None = None,
    test_split: str = "test",
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> list[dict[str, Any]]:
    """Train, ship and card each method; returns one summary row per method.

    A method's files in ``out`` (``METHOD.safetensors``, ``.json``, ``.config.json``, ``.md``,
    ``.card.json``) are replaced only with ``overwrite``, and then only once the new checkpoint's
    card is complete: they are staged in a temporary folder of ``out`` and moved in together.
    ``overwrite`` also lets a training folder of ``work`` that holds checkpoints but no state to
    resume start afresh.

    Raises:
        FerembedError: an unknown method; ``out`` an input, inside one or inside a run; a
            method's checkpoint already in ``out`` without ``overwrite`` (checked before any
            training).
    """
    from ferembed.models.checkpoint import checkpoint_paths
    from ferembed.runs._outputs import check_output
    from ferembed.training import TrainConfig, apply_overrides, save_config, train

    methods = methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise FerembedError(f"unknown method(s) {unknown}; known: {list(METHODS)}")
    out = check_output(out, inputs=[("--root", root)], kind="dir")
    shipped = [p.name for m in methods for p in checkpoint_paths(out / m) if p.exists()]
    if shipped and not overwrite:
        raise FerembedError(
            f"--out {out}: already holds {', '.join(shipped)} (use --overwrite to replace them "
            "once the new checkpoints are trained and carded)"
        )
    work = Path(work) if work else Path(".cache") / "zoo" / dataset
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in methods:
        cfg = apply_overrides(
            TrainConfig(),
            {
                "dataset": dataset,
                "root": root,
                **(base or {}),
                **METHODS[name],
                "out": str(work / name),
            },
        )
        cfg_path = out / f"{name}.config.json"
        result = train(
            cfg,
            progress=progress,
            resume=True,
            overwrite=overwrite,
            command=f"ferembed train --config {cfg_path}",
        )
        staged = _io.make_temp_dir(out, f".{name}.")
        try:
            save_config(cfg, staged / cfg_path.name)
            for src in checkpoint_paths(result.best_checkpoint):
                shutil.copyfile(src, staged / f"{name}{src.suffix}")
            record = Path(cfg.out) / "pseudo_labels.json"  # the pseudo-label loop's record
            if record.exists():
                shutil.copyfile(record, staged / f"{name}.pseudo_labels.json")
            opts = dict(dataset=dataset, root=root, test_split=test_split, work=work)
            # Embedded from the training folder (same bytes as the staged copy, and a path the
            # test run's run.json can keep naming once the staging folder is gone).
            opts.update(checkpoint=result.best_checkpoint, progress=progress, command=command)
            rows.append(_card(name, staged, out, **opts))
            _ship(name, staged, out)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        _write_index(out, dataset)
    return rows


def _ship(name: str, staged: Path, out: Path) -> None:
    """Move a method's staged files into ``out`` (weights first, the card last) and remove its
    files that the new set lacks (a pseudo-label record of an older method)."""
    order = [".safetensors", ".json", ".config.json", ".pseudo_labels.json", ".md", ".card.json"]
    for suffix in order:
        src = staged / f"{name}{suffix}"
        if src.exists():
            os.replace(src, out / src.name)
        elif suffix == ".pseudo_labels.json":
            (out / src.name).unlink(missing_ok=True)


def write_card(
    name: str,
    out: str | Path,
    *,
    dataset: str,
    root: str | None = None,
    test_split: str = "test",
    work: str | Path | None = None,
    progress: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Embed ``test_split`` with ``OUT/<name>.json``, evaluate it, and write the model card.

    Everything on the card comes from the checkpoint's sidecar and this fresh evaluation, so
    running it again on a shipped checkpoint checks the card.
    """
    from ferembed.runs._outputs import check_output

    out = check_output(out, inputs=[("--root", root)], kind="dir")
    opts = dict(dataset=dataset, root=root, test_split=test_split, work=work, progress=progress)
    row = _card(name, out, out, checkpoint=out / f"{name}.json", command=command, **opts)
    _write_index(out, dataset)
    return row


def _description(name: str, sidecar: dict) -> str:
    """The method's description, unless the checkpoint's loss settings differ from the recipe it
    states (a checkpoint trained before the recipe changed): then the loss row says what ran."""
    recipe = (METHODS.get(name) or {}).get("loss_params") or {}
    params = (sidecar.get("loss") or {}).get("params") or {}
    if any(params.get(k) != v for k, v in recipe.items()):
        return f"`{name}` trained before the zoo's current recipe: its loss settings are below."
    if (sidecar.get("train") or {}).get("pseudo_control"):
        return (
            "Control of the pseudo-label loop: the same round 0 and rounds, each round "
            "fine-tuning on the labelled part alone (no pseudo-labels)."
        )
    return DESCRIPTIONS.get(name, name)


def _card(
    name: str,
    folder: Path,
    out: Path,
    *,
    checkpoint: Path,
    dataset: str,
    root: str | None,
    test_split: str,
    work: str | Path | None,
    progress: bool,
    command: str,
) -> dict[str, Any]:
    """The card of the checkpoint ``folder/<name>.json`` (embedded from ``checkpoint``, the same
    file or a copy of it): embed, evaluate, write ``folder/<name>.md`` and ``.card.json``;
    ``out`` is where it ships (named on the card)."""
    from ferembed.runs import embed_and_evaluate

    work = Path(work) if work else Path(".cache") / "zoo" / dataset
    metrics = embed_and_evaluate(
        checkpoint,
        dataset=dataset,
        root=root,
        split=test_split,
        out=work / f"run-{test_split}" / name,
        overwrite=True,
        progress=progress,
        name=f"{dataset}-{name}",
    )
    previous = out / f"{name}.card.json"
    if not command and previous.exists():  # a card rewrite keeps the training command
        command = json.loads(previous.read_text()).get("command", "")
    sidecar = json.loads((folder / f"{name}.json").read_text())
    data = sidecar.get("data", {})
    head = (metrics.get("classification") or {}).get("head") or {}
    head_ci = head.get("ci") or {}
    # The shipped checkpoint is the best epoch; the budget is the config's epoch count.
    best = (sidecar.get("metrics") or {}).get("best_epoch", sidecar.get("epochs"))
    budget = (sidecar.get("train") or {}).get("epochs", sidecar.get("epochs"))
    row = {
        "method": name,
        "arch": sidecar.get("arch"),
        "loss": (sidecar.get("loss") or {}).get("name"),
        "epochs": budget,
        "best_epoch": best,
        "wall_time_s": round(float(sidecar.get("wall_time_s") or 0.0), 1),
        "device": sidecar.get("device"),
        "n_train": data.get("n_train"),
        "test_accuracy": head.get("accuracy"),
        "test_accuracy_ci": head_ci.get("accuracy"),
        "test_mean_class_accuracy": head.get("mean_class_accuracy"),
        "test_mean_class_accuracy_ci": head_ci.get("mean_class_accuracy"),
        "knn_accuracy": metrics.get("knn_accuracy"),
        "map_at_r": metrics.get("map_at_r"),
        "silhouette": metrics.get("silhouette"),
        **{key: metrics.get(key) for key in ("compactness", "class_separation", "fisher_ratio")},
        "geometry_ci": {
            key: (metrics.get("ci") or {}).get(key)
            for key in ("compactness", "class_separation", "fisher_ratio")
        },
        "size_mb": round((folder / f"{name}.safetensors").stat().st_size / 2**20, 2),
        "num_params": sidecar.get("num_params"),
        "command": command,
    }
    cfg_path = out / f"{name}.config.json"
    lines = [
        f"# {dataset} / {name}",
        "",
        _description(name, sidecar),
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{row['arch']}` ({row['num_params']:,} parameters, "
        f"{row['size_mb']} MB) |",
        f"| loss | `{row['loss']}` {json.dumps((sidecar.get('loss') or {}).get('params', {}))} |",
        *_data_and_epochs(
            dataset, data, row, _pseudo_record(folder / f"{name}.pseudo_labels.json")
        ),
        *(
            [f"| initialised from | `{init}` (these epochs fine-tune it; its own come on top) |"]
            if (init := (sidecar.get("train") or {}).get("init_checkpoint"))
            else []
        ),
        f"| wall time{' (the shipped round)' if row.get('shipped_round') is not None else ''} | "
        f"{row['wall_time_s']} s on {row['device']} "
        f"({platform.machine()}, shared 2-core machine: times vary with load) |",
        f"| test accuracy (head) | {_with_ci(row['test_accuracy'], row['test_accuracy_ci'])} |",
        "| test mean class accuracy | "
        + _with_ci(row["test_mean_class_accuracy"], row["test_mean_class_accuracy_ci"])
        + " |",
        f"| kNN accuracy / MAP@R / silhouette | {_pct(row['knn_accuracy'])} / "
        f"{_num(row['map_at_r'])} / {_num(row['silhouette'])} |",
        "| compactness / separation / Fisher | "
        + " / ".join(
            _num_ci(row[key], row["geometry_ci"][key])
            for key in ("compactness", "class_separation", "fisher_ratio")
        )
        + " |",
        "",
        f"Test split `{test_split}`, {metrics.get('n')} images; intervals are bootstrap 95% CIs "
        "over test samples.",
        "",
        "Reproduce the checkpoint:",
        "",
        "```",
        f"ferembed train --config {cfg_path.as_posix()} --set out=OUT",
        "```",
        "",
        "Check this card against the shipped checkpoint (embed the test split, evaluate, rewrite):",
        "",
        "```",
        f"ferembed zoo --dataset {dataset}{f' --root {root}' if root else ''}"
        # a checkpoint shipped under another name than a method's: every card of the folder
        + (f" --methods {name}" if name in METHODS else "")
        + f" --out {out.as_posix()} --cards-only",
        "```",
    ]
    if (folder / f"{name}.pseudo_labels.json").exists():
        lines += [
            "",
            f"The pseudo-label loop's per-round record (pseudo-labels kept, their accuracy against "
            f"the hidden labels, validation accuracy) is `{name}.pseudo_labels.json`.",
        ]
    if command:
        whole = command.startswith("ferembed zoo")
        lines += ["", "The whole zoo was trained with:" if whole else "Trained with (as run):"]
        lines += ["", "```", command, "```"]
    _io.write_text(folder / f"{name}.md", "\n".join(lines) + "\n")
    _io.write_json(folder / f"{name}.card.json", row)
    return row


def shipped_names(folder: str | Path) -> list[str]:
    """The checkpoints of a folder (``NAME.safetensors`` with its ``NAME.json``): the seed
    methods in their order, then any other name (e.g. a control run) alphabetically."""
    folder = Path(folder)
    names = {
        p.name[: -len(".safetensors")]
        for p in folder.glob("*.safetensors")
        if (folder / f"{p.name[: -len('.safetensors')]}.json").exists()
    }
    return [m for m in METHODS if m in names] + sorted(names - set(METHODS))


def _pseudo_record(path: Path) -> dict | None:
    """The pseudo-label loop's record beside a checkpoint (None without one or without rounds)."""
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    return rec if rec.get("rounds") else None


def _data_and_epochs(dataset: str, data: dict, row: dict, rec: dict | None) -> list[str]:
    """The card's data and epochs rows; for the pseudo-label loop, per round (its checkpoint is
    the round with the best validation score, and ``row`` gets ``shipped_round``)."""
    from ferembed.training.pseudo_label import best_round

    val = f"validated on `{data.get('val_split')}`"
    if rec is None:
        return [
            f"| data | `{dataset}` split `{data.get('split', 'train')}`, {row['n_train']} images; "
            f"{val} |",
            f"| epochs | {row['epochs']} (best {row['best_epoch']}) |",
        ]
    rounds = rec["rounds"]
    shipped = best_round([r.get("best_score") for r in rounds])
    row["shipped_round"] = rounds[shipped]["round"]
    r0, later = rounds[0], rounds[1:]
    split = rec.get("split", "train")
    data_row = (
        f"| data | `{dataset}` split `{split}`: round 0 on {r0['n_trained']:,} labelled images"
    )
    epochs_row = f"| epochs | round 0: {r0['epochs']}"
    if later:
        what = (
            "the labelled ones alone: the control"
            if rec.get("control")
            else "labelled + kept pseudo-labels"
        )
        sizes = sorted({r["n_trained"] for r in later})
        data_row += f", rounds 1-{len(later)} on {' / '.join(f'{n:,}' for n in sizes)} ({what})"
        per_round = sorted({r["epochs"] for r in later})
        unit = "epoch" if per_round == [1] else "epochs"
        epochs_row += f", then {len(later)} rounds of {' / '.join(map(str, per_round))} {unit}"
        row["round_epochs"] = [r["epochs"] for r in rounds]
    epochs_row += (
        f"; shipped: round {row['shipped_round']}, its epoch {rounds[shipped]['best_epoch']} (the "
        "best validation score of all rounds) |"
    )
    return [f"{data_row}; {val} |", epochs_row]


def _with_ci(v, ci) -> str:
    return _format.with_ci(v, ci, ".2f", percent=True, percent_sign=True)


def _num(v) -> str:
    return _format.number(v, ".3f")


def _num_ci(v, ci) -> str:
    return _format.with_ci(v, ci, ".3f")


def _write_index(out: Path, dataset: str) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.card.json"))]
    lines = [
        f"# {dataset} checkpoints",
        "",
        "Each `<name>.md` is a checkpoint's model card: the recipe and the command that made it, "
        "data, epochs, wall time, test accuracy and geometry with CIs. A pseudo-label loop's "
        "epochs are round 0's plus its rounds', and its checkpoint the round best on validation.",
        "",
        "| method | arch | epochs (best) | wall time (s) | test acc | test mean class acc "
        "| kNN acc | MAP@R | silhouette | MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| [{r['method']}]({r['method']}.md) | {r['arch']} | {_epochs_cell(r)} | "
            f"{r['wall_time_s']} | {_pct(r['test_accuracy'])} | "
            f"{_pct(r['test_mean_class_accuracy'])} | {_pct(r['knn_accuracy'])} | "
            f"{_num(r['map_at_r'])} | {_num(r['silhouette'])} | {r['size_mb']} |"
        )
    _io.write_text(out / "README.md", "\n".join(lines) + "\n")


def _epochs_cell(r: dict) -> str:
    """``epochs (best)``; a pseudo-label loop's as ``8 + 2 + 2 (round 2, epoch 1)``."""
    rounds = r.get("round_epochs")
    if not rounds or r.get("shipped_round") is None:
        return f"{r['epochs']} ({r['best_epoch']})"
    return f"{' + '.join(map(str, rounds))} (round {r['shipped_round']}, epoch {r['best_epoch']})"


def _pct(v) -> str:
    return _format.number(v, ".2f", percent=True, percent_sign=True)
