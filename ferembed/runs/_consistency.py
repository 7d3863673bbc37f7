"""Which files ``metrics.json`` was computed from, and whether they are still the same.

``evaluate_run`` records, under the ``computed_from`` key of ``metrics.json``, a stamp (size,
mtime in ns and sha256) of every run file it read and of the ``per_sample.parquet`` written with
it, plus the request (distance, reference, options). A file whose size and mtime are unchanged is
taken as unchanged; one whose mtime moved (a copy without ``-p``) is hashed again, so copying a
run keeps its metrics while replacing, truncating or editing an input makes them *stale*. A kill
between ``per_sample.parquet`` and ``metrics.json`` is caught the same way: the new per-sample
file does not match the stamp the old metrics recorded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ferembed.runs._files import (
    EMBEDDINGS_FILE,
    HEAD_BIAS_FILE,
    HEAD_WEIGHT_FILE,
    LOGITS_FILE,
    METRICS_FILE,
    PER_SAMPLE_FILE,
    RUN_FILE,
    SAMPLES_FILE,
)

#: The key of ``metrics.json`` that holds the stamps.
COMPUTED_FROM = "computed_from"
#: The run files evaluate reads (those absent from a run are recorded as absent).
EVALUATED_FILES = (
    RUN_FILE,
    EMBEDDINGS_FILE,
    SAMPLES_FILE,
    LOGITS_FILE,
    HEAD_WEIGHT_FILE,
    HEAD_BIAS_FILE,
)
#: Metrics status values (:func:`metrics_status`).
MISSING, FRESH, STALE, UNVERIFIED = "missing", "fresh", "stale", "unverified"

_CHUNK = 1 << 20
# (path, size, mtime_ns) -> sha256, so a run checked again (dashboard reruns) is hashed once.
_digests: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    key = (str(path), size, mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                h.update(block)
        _digests[key] = h.hexdigest()
    return _digests[key]


def file_stamp(path: str | os.PathLike) -> dict[str, Any] | None:
    """``{"size", "mtime_ns", "sha256"}`` of a file, or None when it does not exist."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": _sha256(path, st.st_size, st.st_mtime_ns),
    }


def same_file(path: str | os.PathLike, stamp: dict[str, Any] | None) -> bool:
    """Whether ``path`` still has the content ``stamp`` recorded (None: it did not exist)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return stamp is None
    except OSError:
        return False
    if not isinstance(stamp, dict) or st.st_size != stamp.get("size"):
        return False
    if st.st_mtime_ns == stamp.get("mtime_ns"):
        return True
    try:
        return _sha256(path, st.st_size, st.st_mtime_ns) == stamp.get("sha256")
    except OSError:
        return False


def run_stamps(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The stamps of the files evaluate reads in ``run_dir`` (None for an absent one)."""
    return {name: file_stamp(Path(run_dir) / name) for name in EVALUATED_FILES}


def stale_files(
    run_dir: str | os.PathLike, record: dict[str, Any], *, per_sample: bool = True
) -> list[str]:
    """The files of ``run_dir`` (and of the recorded reference run) that changed since
    ``record`` (a ``computed_from`` value) was made; ``per_sample``: also the per-sample file
    written with it."""
    run_dir = Path(run_dir)
    files = record.get("files")
    if not isinstance(files, dict):
        return [RUN_FILE]
    changed = [name for name, stamp in files.items() if not same_file(run_dir / name, stamp)]
    if per_sample and not same_file(run_dir / PER_SAMPLE_FILE, record.get("per_sample")):
        changed.append(PER_SAMPLE_FILE)
    ref = record.get("reference")
    if isinstance(ref, dict) and isinstance(ref.get("files"), dict):
        ref_dir = Path(str(ref.get("path", "")))
        # A reference that was moved away cannot be checked; one that is there must be unchanged.
        if (ref_dir / RUN_FILE).is_file():
            changed += [
                f"{ref_dir / name}"
                for name, stamp in ref["files"].items()
                if not same_file(ref_dir / name, stamp)
            ]
    return changed


def metrics_status(run_dir: str | os.PathLike, metrics: dict[str, Any] | None) -> tuple[str, str]:
    """``(status, reason)`` of a run's loaded ``metrics.json``.

    ``status`` is ``"missing"`` (no metrics), ``"fresh"``, ``"stale"`` (``reason`` names the
    changed files) or ``"unverified"`` (written by a version that recorded no stamps).
    """
    if not isinstance(metrics, dict):
        return MISSING, f"no {METRICS_FILE}"
    record = metrics.get(COMPUTED_FROM)
    if record is None:
        return UNVERIFIED, f"{METRICS_FILE} records no inputs (written by an earlier version)"
    if not isinstance(record, dict):
        return STALE, f"{METRICS_FILE}: {COMPUTED_FROM} is not an object"
    changed = stale_files(run_dir, record)
    if changed:
        return STALE, "changed since evaluate: " + ", ".join(changed)
    return FRESH, ""


def per_sample_matches(run_dir: str | os.PathLike, metrics: dict[str, Any] | None) -> bool:
    """Whether ``per_sample.parquet`` may be read: False only when ``metrics`` records the run
    files it was computed from and one of them has changed since (the per-sample scores then
    describe other embeddings). Without a ``metrics.json``, or with one of an earlier version,
    the file is read as before."""
    record = metrics.get(COMPUTED_FROM) if isinstance(metrics, dict) else None
    if record is None:
        return True
    return isinstance(record, dict) and not stale_files(run_dir, record, per_sample=False)
