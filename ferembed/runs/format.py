"""Read and write run directories (schema ``ferembed.run/1``, see docs/run_format.md)."""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferembed import _io
from ferembed._version import __version__
from ferembed.errors import RunFormatError
from ferembed.runs._checks import check_class_list, check_index_column
from ferembed.runs._consistency import (
    MISSING,
    STALE,
    metrics_status,
    per_sample_matches,
)
from ferembed.runs._files import (
    CACHE_DIR,
    EMBEDDINGS_FILE,
    FOLDS_FILE,
    HEAD_BIAS_FILE,
    HEAD_WEIGHT_FILE,
    INDEX_DIR,
    LOGITS_FILE,
    METRICS_FILE,
    PER_SAMPLE_FILE,
    PS_KNN_PRED,
    PS_SAMPLE_ID,
    RUN_FILE,
    SAMPLES_FILE,
    THUMBS_FILE,
)

SCHEMA = "ferembed.run/1"
SAMPLE_COLUMNS = {
    "sample_id": "string",
    "path": "string",
    "label": "int32",
    "label_name": "string",
    "pred": "int32",
    "subject": "string",
    "split": "string",
}
DISTANCES = ("cosine", "euclidean")
#: The ``.npy`` file of each array of a run.
_ARRAY_FILES = {
    "embeddings": EMBEDDINGS_FILE,
    "logits": LOGITS_FILE,
    "head_weight": HEAD_WEIGHT_FILE,
    "head_bias": HEAD_BIAS_FILE,
    "thumbs": THUMBS_FILE,
}
#: Where :meth:`Run.predictions` reads each kind of prediction.
PREDICTION_KINDS = ("head", "knn")


@dataclass
class Run:
    """A loaded run directory. Arrays are memory-mapped; nothing is copied until used.

    Attributes:
        path: the run directory.
        manifest: the parsed ``run.json``.
        samples: per-sample table (N rows), columns as in ``SAMPLE_COLUMNS``.
    """

    path: Path
    manifest: dict[str, Any]
    samples: pd.DataFrame
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.path.name)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def n(self) -> int:
        return int(self.manifest["n"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def distance(self) -> str:
        return str(self.manifest.get("distance", "cosine"))

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 label indices into ``class_names``."""
        return self.samples["label"].to_numpy(dtype=np.int64)

    @property
    def embeddings(self) -> np.ndarray:
        """(N, D) float32, memory-mapped."""
        return self._array("embeddings")

    @property
    def logits(self) -> np.ndarray | None:
        """(N, C) float32 or None when the run has no classifier head."""
        return self._array("logits") if self.manifest.get("has_logits") else None

    @property
    def head_weight(self) -> np.ndarray | None:
        """(C, D) float32 linear-head weight, or None."""
        return self._array("head_weight") if self.manifest.get("has_head") else None

    @property
    def head_bias(self) -> np.ndarray | None:
        """(C,) float32 linear-head bias, or None."""
        return self._array("head_bias") if self.manifest.get("has_head") else None

    @property
    def thumbs(self) -> np.ndarray | None:
        """(N, h, w) uint8 or None."""
        return self._array("thumbs") if self.manifest.get("has_thumbs") else None

    @cached_property
    def folds(self) -> dict[str, Any] | None:
        p = self.path / FOLDS_FILE
        return json.loads(p.read_text()) if p.exists() else None

    @property
    def sample_ids(self) -> np.ndarray:
        """(N,) object array of the str sample ids, in the run's row order."""
        return self.samples["sample_id"].astype(str).to_numpy()

    @property
    def subjects(self) -> np.ndarray | None:
        """(N,) object subject ids ("" = unknown), or None when no sample has one."""
        subjects = self.samples["subject"].fillna("").astype(str).to_numpy(dtype=object)
        return subjects if (subjects != "").any() else None

    @property
    def metadata_columns(self) -> list[str]:
        """Columns of ``samples`` beyond the schema (e.g. an imported run's metadata)."""
        return [c for c in self.samples.columns if c not in SAMPLE_COLUMNS]

    @property
    def manifest_path(self) -> Path:
        return self.path / RUN_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def per_sample_path(self) -> Path:
        return self.path / PER_SAMPLE_FILE

    @property
    def index_dir(self) -> Path:
        return self.path / INDEX_DIR

    def file_path(self, name: str) -> Path:
        """The path of one of the run's files (a name from ``ferembed.runs._files``)."""
        return self.path / name

    def _read_metrics(self) -> dict[str, Any] | None:
        try:
            metrics = json.loads(self.metrics_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return metrics if isinstance(metrics, dict) else None

    def metrics_status(self) -> tuple[str, str]:
        """``(status, reason)`` of ``metrics.json``: ``"missing"``, ``"fresh"``, ``"stale"`` (an
        input changed since evaluate; ``reason`` names it) or ``"unverified"`` (written by an
        earlier version, which recorded no inputs)."""
        return metrics_status(self.path, self._read_metrics())

    def load_metrics(self) -> dict[str, Any] | None:
        """The cached ``metrics.json``, or None when absent, unreadable or stale (a file it was
        computed from has changed since: see :meth:`metrics_status`)."""
        metrics = self._read_metrics()
        return None if metrics_status(self.path, metrics)[0] in (MISSING, STALE) else metrics

    def load_per_sample(self) -> pd.DataFrame | None:
        """``per_sample.parquet`` aligned to the run's rows by sample id (N rows, the run's
        order; a sample it lacks is a row of NaN), or None when absent, unreadable, or computed
        from run files that have changed since (as ``metrics.json`` records)."""
        if not per_sample_matches(self.path, self._read_metrics()):
            return None
        try:
            df = pd.read_parquet(self.per_sample_path)
        except Exception:  # absent or unreadable (pyarrow raises several unrelated types)
            return None
        if PS_SAMPLE_ID not in df.columns:
            return None
        df = df.assign(**{PS_SAMPLE_ID: df[PS_SAMPLE_ID].astype(str)})
        df = df.drop_duplicates(PS_SAMPLE_ID).set_index(PS_SAMPLE_ID)
        return df.reindex(pd.Index(self.sample_ids, name=PS_SAMPLE_ID)).reset_index()

    def predictions(self, kind: str, per_sample: pd.DataFrame | None = None) -> np.ndarray:
        """(N,) int64 predicted class per sample, -1 where there is none.

        Args:
            kind: ``"head"`` (the head's argmax, ``samples.pred``) or ``"knn"`` (the kNN vote that
                ``ferembed evaluate`` wrote to ``per_sample.parquet``).
            per_sample: the table of :meth:`load_per_sample`, when the caller has it already.
        """
        if kind == "head":
            return self.samples["pred"].fillna(-1).to_numpy(dtype=np.int64)
        if kind != "knn":
            raise ValueError(f"kind must be one of {PREDICTION_KINDS}, got {kind!r}")
        ps = self.load_per_sample() if per_sample is None else per_sample
        if ps is None or PS_KNN_PRED not in ps.columns:
            return np.full(self.n, -1, np.int64)
        return ps[PS_KNN_PRED].fillna(-1).to_numpy(dtype=np.int64)

    @property
    def cache_dir(self) -> Path:
        return self.path / CACHE_DIR

    def _array(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            self._arrays[key] = _load_npy(self.path / _ARRAY_FILES[key])
        return self._arrays[key]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise RunFormatError(f"{path}: missing") from None
    except (ValueError, OSError) as exc:
        raise RunFormatError(f"{path}: not a readable .npy array ({exc})") from None


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def load_run(path: str | os.PathLike, *, check_arrays: bool = True) -> Run:
    """Load and validate a run directory.

    Raises:
        RunFormatError: with a one-line message naming the offending file or key.
    """
    path = Path(path)
    mpath = path / RUN_FILE
    if not mpath.exists():
        # An overwrite killed mid-swap leaves the previous run under a hidden name: put it back.
        _io.clean_leftovers(path.parent, path.name)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise RunFormatError(f"{path}: not a run directory (no {RUN_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{mpath}: invalid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        got = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise RunFormatError(f"{mpath}: schema is {got!r}, expected {SCHEMA!r}")
    for key, kind in (("n", int), ("dim", int), ("class_names", list)):
        if key not in manifest:
            raise RunFormatError(f"{mpath}: missing key {key!r}")
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            what = "an integer >= 0" if kind is int else "a list"
            raise RunFormatError(f"{mpath}: {key} must be {what}, got {value!r}")
    spath = path / SAMPLES_FILE
    try:
        samples = pd.read_parquet(spath)
    except FileNotFoundError:
        raise RunFormatError(f"{spath}: missing") from None
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise RunFormatError(f"{spath}: unreadable ({exc})") from None
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise RunFormatError(f"{spath}: missing columns {missing}")
    run = Run(path=path, manifest=manifest, samples=samples)
    n, d, c = run.n, run.dim, len(run.class_names)
    if len(samples) != n:
        raise RunFormatError(f"{spath}: {len(samples)} rows, {RUN_FILE} says n={n}")
    check_class_list(run.class_names, mpath)
    check_index_column(samples, "label", spath, c, allow_none=False)
    check_index_column(samples, "pred", spath, c, allow_none=True)
    if run.distance not in DISTANCES:
        raise RunFormatError(f"{mpath}: distance {run.distance!r} not in {DISTANCES}")
    if check_arrays:
        emb = run.embeddings
        if emb.shape != (n, d) or emb.dtype != np.float32:
            raise RunFormatError(
                f"{path / EMBEDDINGS_FILE}: shape {emb.shape} {emb.dtype}, "
                f"expected ({n}, {d}) float32"
            )
        if run.logits is not None and run.logits.shape != (n, c):
            raise RunFormatError(
                f"{path / LOGITS_FILE}: shape {run.logits.shape}, expected ({n}, {c})"
            )
        if run.thumbs is not None and (run.thumbs.ndim != 3 or run.thumbs.shape[0] != n):
            raise RunFormatError(
                f"{path / THUMBS_FILE}: shape {run.thumbs.shape}, expected (N, h, w)"
            )
    return run


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Run directories under ``root`` (recursive, sorted, hidden/temporary directories skipped)."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if any(d.endswith((".tmp", ".old", ".trash")) for d in dirnames):
            # Leftovers of dead writers: delete them, and put back a run whose overwrite was
            # killed mid-swap (it then shows up below).
            _io.clean_leftovers(dirpath)
            dirnames[:] = [d for d in os.listdir(dirpath) if os.path.isdir(Path(dirpath, d))]
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d not in (CACHE_DIR, INDEX_DIR)
        )
        if RUN_FILE in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []
    return found


def make_samples(
    labels: np.ndarray,
    class_names: list[str],
    *,
    sample_ids: list[str] | None = None,
    paths: list[str] | None = None,
    preds: np.ndarray | None = None,
    subjects: list[str] | None = None,
    splits: list[str] | str = "",
    metadata: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Build a ``samples`` table with the schema's columns and dtypes.

    ``metadata`` adds free sample columns (pose, occlusion, ...) kept as strings after the schema's.
    """
    labels = np.asarray(labels, dtype=np.int32)
    n = len(labels)
    names = np.asarray(class_names, dtype=object)
    df = pd.DataFrame(
        {
            "sample_id": sample_ids if sample_ids is not None else [str(i) for i in range(n)],
            "path": paths if paths is not None else [""] * n,
            "label": labels,
            "label_name": names[labels] if n else [],
            "pred": np.asarray(preds, dtype=np.int32)
            if preds is not None
            else np.full(n, -1, np.int32),
            "subject": subjects if subjects is not None else [""] * n,
            "split": [splits] * n if isinstance(splits, str) else splits,
        }
    )
    clash = sorted(set(metadata or ()) & set(SAMPLE_COLUMNS))
    if clash:
        raise RunFormatError(f"metadata columns {clash} clash with the schema's columns")
    for col, values in (metadata or {}).items():
        df[col] = pd.Series(list(values), dtype="string")
    return df.astype(SAMPLE_COLUMNS)


def write_run(
    path: str | os.PathLike,
    *,
    embeddings: np.ndarray,
    samples: pd.DataFrame,
    class_names: list[str],
    logits: np.ndarray | None = None,
    thumbs: np.ndarray | None = None,
    head_weight: np.ndarray | None = None,
    head_bias: np.ndarray | None = None,
    folds: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    source: str = "embed",
    distance: str = "cosine",
    command: str = "",
    name: str | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run directory atomically and return its path.

    Raises:
        RunFormatError: an array that is complex or not finite once stored as float32 (named),
            or shapes that do not fit together; nothing is written then.
    """
    path = Path(path)
    embeddings = _float32("embeddings", embeddings)
    logits = None if logits is None else _float32("logits", logits)
    head_weight = None if head_weight is None else _float32("head weight", head_weight)
    head_bias = None if head_bias is None else _float32("head bias", head_bias)
    if embeddings.ndim != 2:
        raise RunFormatError(f"embeddings must be 2-D (N, D), got shape {embeddings.shape}")
    n, d = embeddings.shape
    if len(samples) != n:
        raise RunFormatError(f"samples has {len(samples)} rows, embeddings has {n}")
    if distance not in DISTANCES:
        raise RunFormatError(f"distance {distance!r} not in {DISTANCES}")
    manifest = {
        "schema": SCHEMA,
        "name": name or path.name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ferembed_version": __version__,
        "source": source,
        "n": int(n),
        "dim": int(d),
        "class_names": list(class_names),
        "has_logits": logits is not None,
        "has_head": head_weight is not None,
        "has_thumbs": thumbs is not None,
        "distance": distance,
        "model": model,
        "dataset": dataset or {},
        "command": command,
        "extra": extra or {},
    }
    # Columns beyond the schema are sample metadata (pose, occlusion...): kept, as strings.
    meta_cols = [str(c) for c in samples.columns if c not in SAMPLE_COLUMNS]
    if meta_cols:
        manifest["metadata_columns"] = meta_cols
    dtypes = {**SAMPLE_COLUMNS, **dict.fromkeys(meta_cols, "string")}
    samples = samples[list(dtypes)].astype(dtypes).reset_index(drop=True)
    if path.exists() and not overwrite:
        raise RunFormatError(f"{path}: already exists (use --overwrite to replace it)")
    with _io.atomic_dir(path, overwrite=overwrite) as tmp:
        np.save(tmp / EMBEDDINGS_FILE, embeddings, allow_pickle=False)
        samples.to_parquet(tmp / SAMPLES_FILE, index=False)
        if logits is not None:
            np.save(tmp / LOGITS_FILE, np.ascontiguousarray(logits, np.float32), allow_pickle=False)
        if head_weight is not None:
            c = len(class_names)
            w = np.ascontiguousarray(head_weight, np.float32)
            b = np.zeros(c, np.float32) if head_bias is None else np.asarray(head_bias, np.float32)
            if w.shape != (c, d) or b.shape != (c,):
                raise RunFormatError(
                    f"head weight {w.shape} / bias {b.shape}, expected ({c}, {d}) / ({c},)"
                )
            np.save(tmp / HEAD_WEIGHT_FILE, w, allow_pickle=False)
            np.save(tmp / HEAD_BIAS_FILE, b, allow_pickle=False)
        if thumbs is not None:
            np.save(tmp / THUMBS_FILE, np.ascontiguousarray(thumbs, np.uint8), allow_pickle=False)
        if folds is not None:
            (tmp / FOLDS_FILE).write_text(json.dumps(folds, indent=1))
        # run.json last: its presence marks a complete run.
        (tmp / RUN_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def _float32(name: str, array) -> np.ndarray:
    """``array`` as C-order float32, refusing complex values and values that are not finite as
    float32 (NaN, Inf, or a float64 too large for float32)."""
    a = np.asarray(array)
    if np.iscomplexobj(a):  # the cast would drop the imaginary part
        raise RunFormatError(f"{name} is complex ({a.dtype}); expected real numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        first = np.argwhere(bad)[0]
        where = f"row {first[0]}" if a.ndim else "its value"
        raise RunFormatError(
            f"{name} is not finite as float32 ({int(bad.sum())} value(s), first at {where})"
        )
    return a
