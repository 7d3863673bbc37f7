"""Subject-independent k-fold cross-validation (the CK+ protocol) of one training config.

``ferembed kfold --config CFG --out DIR`` trains the config once per fold on the other folds,
embeds the held-out fold with the resulting checkpoint, evaluates that run, and writes
``DIR/kfold.json``: one row per fold (accuracy, mean class accuracy, geometry), the mean and
standard deviation over folds, and the accuracy pooled over every held-out face.

No fold picks an epoch: the config must have ``val_split = None``, so each fold's checkpoint is
its last epoch and the held-out fold is touched only once, for the test. Each fold trains with
``resume``, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ferembed import _io
from ferembed.training.config import ConfigError

KFOLD_FILE = "kfold.json"
SCHEMA = "ferembed.kfold/1"
#: metrics.json keys copied into every fold row.
_KEYS = (
    "accuracy",
    "mean_class_accuracy",
    "knn_accuracy",
    "map_at_r",
    "compactness",
    "class_separation",
    "fisher_ratio",
    "silhouette",
)


def train_kfold(
    config,
    *,
    out: str | Path,
    folds: list[int] | None = None,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Train and test ``config`` on every fold (or ``folds``); returns the kfold.json dict.

    Args:
        config: a :class:`~ferembed.training.TrainConfig` of a k-fold dataset (CK+), with
            ``val_split=None``; ``fold`` and ``out`` are set per fold.
        out: study directory; fold k trains in ``out/fold-k`` and its test run is
            ``out/fold-k/run-test``.
        folds: the folds to run (default all ``config.num_folds or 10``).

    Raises:
        ConfigError: a validation split (it would select epochs on held-out data) or a fold out
            of range.
        FerembedError: ``out`` is the dataset root, inside it, a file, or inside a run.
    """
    from ferembed.models.checkpoint import load_sidecar
    from ferembed.runs import embed_and_evaluate
    from ferembed.runs._outputs import check_output
    from ferembed.training import apply_overrides, train

    if config.val_split is not None:
        raise ConfigError(
            f"val_split must be None for k-fold testing (got {config.val_split!r}): the held-out "
            "fold must not pick the epoch"
        )
    num_folds = config.num_folds or 10
    folds = list(range(num_folds)) if folds is None else [int(f) for f in folds]
    bad = [f for f in folds if not 0 <= f < num_folds]
    if bad:
        raise ConfigError(f"folds {bad} out of range [0, {num_folds - 1}]")
    if len(set(folds)) != len(folds):
        raise ConfigError(f"folds {folds} repeat a fold (each held-out fold counts once)")
    out = check_output(out, inputs=[("--root", config.root)], kind="dir")
    rows: list[dict[str, Any]] = []
    pooled: np.ndarray | None = None
    class_names: list[str] = []
    for fold in folds:
        fold_dir = out / f"fold-{fold}"
        cfg = apply_overrides(config, {"fold": fold, "num_folds": num_folds, "out": str(fold_dir)})
        result = train(cfg, progress=progress, resume=True, command=command or None)
        metrics = embed_and_evaluate(
            result.best_checkpoint,
            dataset=cfg.dataset,
            root=cfg.root,
            split="test",
            fold=fold,
            num_folds=num_folds,
            dataset_kwargs=dict(cfg.dataset_kwargs),
            out=fold_dir / "run-test",
            device=cfg.device,
            overwrite=True,
            progress=False,
            name=f"{cfg.dataset}-fold{fold}",
        )
        conf = (metrics.get("confusion") or {}).get("head") or {}
        counts = np.asarray(conf.get("counts", []), dtype=np.int64)
        if counts.size:
            pooled = counts if pooled is None else pooled + counts
        class_names = list(metrics.get("class_names") or class_names)
        rows.append(
            {
                "fold": fold,
                "n_test": metrics.get("n"),
                "n_train": (load_sidecar(result.best_checkpoint).get("data") or {}).get("n_train"),
                "epochs": cfg.epochs,
                "wall_time_s": round(float(result.wall_time_s), 1),
                **{k: metrics.get(k) for k in _KEYS},
            }
        )
    summary = _summarize(rows, pooled, class_names)
    record = {
        "schema": SCHEMA,
        "dataset": config.dataset,
        "num_folds": num_folds,
        "folds": rows,
        "summary": summary,
        "class_names": class_names,
        "pooled_confusion": pooled.tolist() if pooled is not None else None,
        "config": config.to_dict(),
        "command": command,
    }
    _io.write_json(out / KFOLD_FILE, record)
    return record


def _summarize(rows, pooled, class_names) -> dict[str, Any]:
    """Mean and sample std (ddof=1) over folds of each key; pooled head accuracy."""
    summary: dict[str, Any] = {"n_folds": len(rows)}
    for key in _KEYS:
        v = np.array([r[key] for r in rows if r.get(key) is not None], dtype=np.float64)
        summary[key] = {
            "mean": float(v.mean()) if v.size else None,
            "std": float(v.std(ddof=1)) if v.size > 1 else None,
        }
    if pooled is not None and pooled.sum() > 0:
        support = pooled.sum(axis=1)
        recall = np.divide(np.diag(pooled), support, out=np.zeros(len(support)), where=support > 0)
        summary["pooled_accuracy"] = float(np.trace(pooled) / pooled.sum())
        summary["pooled_mean_class_accuracy"] = float(recall[support > 0].mean())
        summary["pooled_per_class_recall"] = dict(zip(class_names, recall.tolist(), strict=True))
    return summary


def load_kfold(path: str | Path) -> dict[str, Any]:
    """Read ``kfold.json`` (a study directory or the file itself)."""
    p = Path(path)
    p = p / KFOLD_FILE if p.is_dir() else p
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: unreadable k-fold record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ConfigError(f"{p}: not a {SCHEMA} record")
    return record
