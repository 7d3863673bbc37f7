"""Log runs from your own training loop: :func:`log_run`, and series of runs over steps.

``log_run`` writes a complete run directory from arrays you already have (numpy or torch), with
no metric computation, so it is cheap enough to call every epoch. With ``step`` it writes into a
*series* directory, one run per step, listed in ``series.json``::

    OUT/
      series.json      {"schema": "ferembed.series/1", "name": ..., "steps": [{"step", "run"}, ...]}
      step-000000/     a complete run (docs/run_format.md)
      step-000001/
      ...

Evaluate any step like any run (``ferembed evaluate OUT/step-000003``); the dashboard's Dynamics
page plots a series' metrics against step.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferembed import _io
from ferembed.errors import DataError, RunFormatError
from ferembed.runs.format import make_samples, write_run
from ferembed.runs.importer import class_order

SERIES_SCHEMA = "ferembed.series/1"
SERIES_FILE = "series.json"
THUMB_SIZE = 48
# ITU-R 601 luma, the weights PIL uses for "L".
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _numpy(x: Any, what: str) -> np.ndarray:
    """A numpy array from a numpy array, a list or a torch tensor (detached, moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataError(f"log_run: {what} is not array-like ({exc})") from None


def images_to_thumbs(images: Any, size: int = THUMB_SIZE) -> np.ndarray:
    """Face images in any common layout -> (N, size, size) uint8 grayscale thumbnails.

    Args:
        images: (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4 (alpha ignored);
            uint8, or float: in [0, 1] (scaled by 255), in [0, 255], or anything else (e.g.
            normalised inputs), which is min-max scaled per image.
    """
    a = _numpy(images, "images")
    if a.ndim == 4:
        if a.shape[1] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = np.moveaxis(a, 1, -1)  # NCHW -> NHWC
        if a.shape[-1] not in (1, 3, 4):
            raise DataError(f"log_run: images of shape {a.shape}: no channel axis of 1, 3 or 4")
        a = a[..., 0] if a.shape[-1] == 1 else a[..., :3].astype(np.float32) @ _LUMA
    if a.ndim != 3:
        raise DataError(
            f"log_run: images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got {a.shape}"
        )
    if a.dtype != np.uint8:
        # In-place float32 passes: this runs every epoch on the whole validation set.
        a = np.array(a, dtype=np.float32)
        lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
        if lo >= 0.0 and hi <= 1.0:
            a *= 255.0
        elif lo < 0.0 or hi > 255.0:
            mn = a.min(axis=(1, 2), keepdims=True)
            a -= mn
            a *= 255.0 / np.maximum(a.max(axis=(1, 2), keepdims=True), 1e-12)
        np.clip(a, 0.0, 255.0, out=a)
        a += 0.5  # round half up on the cast below
        a = a.astype(np.uint8)
    if a.shape[1:] == (size, size):
        return np.ascontiguousarray(a)
    from PIL import Image

    out = np.empty((len(a), size, size), np.uint8)
    for i, im in enumerate(a):
        out[i] = np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
    return out


def _labels(labels: Any, class_names: list[str] | None, n: int) -> tuple[np.ndarray, list[str]]:
    y = _numpy(labels, "labels").reshape(-1)
    if y.size != n:
        raise DataError(f"log_run: {y.size} labels for {n} embeddings")
    if y.dtype.kind in "US":  # class names: canonical expression order when they are expressions
        names = list(class_names) if class_names else class_order(y.tolist())
        lookup = {c: i for i, c in enumerate(names)}
        unknown = sorted(set(y.tolist()) - set(lookup))
        if unknown:
            raise DataError(f"log_run: labels {unknown[:5]} not in class_names {names}")
        return np.array([lookup[v] for v in y.tolist()], np.int64), names
    if y.dtype.kind not in "iu":
        raise DataError(f"log_run: labels must be integers or class names, got dtype {y.dtype}")
    y = y.astype(np.int64)
    names = (
        list(class_names)
        if class_names
        else [f"class_{i}" for i in range(int(y.max(initial=-1)) + 1)]
    )
    if n and (y.min() < 0 or y.max() >= len(names)):
        raise DataError(f"log_run: labels outside 0..{len(names) - 1} (class_names {names})")
    return y, names


def log_run(
    out: str | os.PathLike,
    embeddings: Any,
    labels: Any,
    *,
    class_names: list[str] | None = None,
    sample_ids: list[str] | None = None,
    logits: Any = None,
    images: Any = None,
    step: int | None = None,
    name: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a run from a training loop's arrays; returns the run directory.

    Args:
        out: the run directory, or with ``step`` the series directory.
        embeddings: (N, D) float array or tensor.
        labels: (N,) integer indices into ``class_names``, or class names.
        class_names: the classes (default ``class_0``... up to the largest label; for name
            labels, their set in canonical order). Pass them in a series, so that every step has
            the same classes even when a step's labels miss one.
        sample_ids: (N,) ids stable across steps (default "0".."N-1"); runs are paired by them.
        logits: optional (N, C) head outputs (pred = argmax).
        images: optional faces (see :func:`images_to_thumbs`) stored as 48x48 thumbnails.
        step: write ``OUT/step-{step:06d}`` and list it in ``OUT/series.json``.
        name: the run's (or the series') display name.
        meta: free-form JSON-able dict kept in run.json ``extra.meta`` (epoch, loss, ...).

    A run that already exists at that place (the same step logged again) is replaced atomically.
    No metric is computed: ``ferembed evaluate`` (or the dashboard) does that later.
    """
    out = Path(out)
    x = _numpy(embeddings, "embeddings")
    if x.ndim != 2:
        raise DataError(f"log_run: embeddings must be 2-D (N, D), got shape {x.shape}")
    n = x.shape[0]
    y, names = _labels(labels, class_names, n)
    lg = None if logits is None else _numpy(logits, "logits").astype(np.float32, copy=False)
    if lg is not None and lg.shape != (n, len(names)):
        raise DataError(f"log_run: logits of shape {lg.shape}, expected ({n}, {len(names)})")
    thumbs = None if images is None else images_to_thumbs(images)
    if thumbs is not None and len(thumbs) != n:
        raise DataError(f"log_run: {len(thumbs)} images for {n} embeddings")
    ids = None if sample_ids is None else [str(s) for s in sample_ids]
    if ids is not None and (len(ids) != n or len(set(ids)) != n):
        raise DataError(f"log_run: sample_ids must be {n} unique ids")
    samples = make_samples(
        y, names, sample_ids=ids, preds=None if lg is None else lg.argmax(1), splits=""
    )
    extra = {"meta": meta or {}, "step": step}
    arrays = dict(embeddings=x, samples=samples, class_names=names, logits=lg, thumbs=thumbs)
    if step is None:
        return write_run(out, **arrays, source="log", name=name, extra=extra, overwrite=True)
    step = int(step)
    series_name = name or out.name
    run_dir = out / f"step-{step:06d}"
    run_name = f"{series_name} step {step}"
    write_run(run_dir, **arrays, source="log", name=run_name, extra=extra, overwrite=True)
    _add_step(out, series_name, step, run_dir.name)
    return run_dir


def _add_step(out: Path, name: str, step: int, run: str) -> None:
    path = out / SERIES_FILE
    series = load_series(out) if path.exists() else {"schema": SERIES_SCHEMA, "steps": []}
    steps = [s for s in series["steps"] if s["step"] != step]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    steps.append({"step": step, "run": run, "created": now})
    series.update(name=name, steps=sorted(steps, key=lambda s: s["step"]))
    _io.write_json(path, series)


def is_series_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / SERIES_FILE).is_file()


def load_series(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``series.json`` of a series directory (steps sorted, run paths absolute).

    Returns:
        ``{"schema", "name", "path", "steps": [{"step", "run", "path"}, ...]}``.

    Raises:
        RunFormatError: missing or malformed series.json.
    """
    path = Path(path)
    file = path / SERIES_FILE
    try:
        series = json.loads(file.read_text())
    except FileNotFoundError:
        raise RunFormatError(f"{path}: not a series directory (no {SERIES_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{file}: invalid JSON ({exc})") from None
    if not isinstance(series, dict) or series.get("schema") != SERIES_SCHEMA:
        raise RunFormatError(f"{file}: schema is not {SERIES_SCHEMA!r}")
    steps = series.get("steps")
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and isinstance(s.get("step"), int) and isinstance(s.get("run"), str)
        for s in steps
    ):
        raise RunFormatError(f"{file}: 'steps' must be a list of {{step: int, run: str}}")
    series["name"] = str(series.get("name") or path.name)
    series["path"] = str(path)
    series["steps"] = [
        dict(s, path=str(path / s["run"])) for s in sorted(steps, key=lambda s: s["step"])
    ]
    return series


def find_series(root: str | os.PathLike) -> list[Path]:
    """Series directories under ``root`` (recursive, sorted, hidden folders skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if SERIES_FILE in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []
    return found


#: The metrics the dashboard's Dynamics page plots against step (metrics.json keys).
DYNAMICS_METRICS = (
    "compactness",
    "class_separation",
    "fisher_ratio",
    "precision_at_1",
    "map_at_r",
    "accuracy",
)


def series_table(
    steps: Sequence[int],
    metrics: Sequence[dict[str, Any] | None],
    keys: Sequence[str] = DYNAMICS_METRICS,
) -> pd.DataFrame:
    """One row per (step, metric): ``step, metric, value, lo, hi`` from each step's metrics.json.

    Values and 95% CI bounds (``metrics["ci"][key]``) missing from a step's metrics are NaN; a
    step without metrics (None) gives NaN rows, so the steps stay aligned.
    """
    rows = []
    for step, m in zip(steps, metrics, strict=True):
        m = m or {}
        ci = m.get("ci") or {}
        for key in keys:
            lo_hi = ci.get(key) if isinstance(ci.get(key), (list, tuple)) else (None, None)
            rows.append(
                {
                    "step": int(step),
                    "metric": key,
                    "value": _float(m.get(key)),
                    "lo": _float(lo_hi[0] if len(lo_hi) == 2 else None),
                    "hi": _float(lo_hi[1] if len(lo_hi) == 2 else None),
                }
            )
    return pd.DataFrame(rows, columns=["step", "metric", "value", "lo", "hi"])


def _float(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")
