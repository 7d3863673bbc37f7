"""Commit a checkpoint's weights and sidecar as one unit, and recover an interrupted commit.

``<stem>.json`` carries the sha256 of ``<stem>.safetensors`` and loading refuses a mismatch, so the
two must change together. Two renames cannot be one atomic step; instead the new sidecar is staged
under ``.<stem>.json.PID@HOST.pending`` before the weights move, which makes every kill point
recoverable (:func:`recover_pair`, run before each save and each load).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from ferembed import _io


def _pending_name(sidecar_path: Path) -> str:
    return f".{sidecar_path.name}.{_io.writer_tag()}.pending"


def commit_pair(weights_path: Path, sidecar_path: Path, blob: bytes, sidecar: dict) -> None:
    """Replace the weights and the sidecar as one unit.

    The new sidecar is written first under a pending name, then the weights are moved into
    place, then the sidecar. A kill before the weights move leaves the old pair (and a pending
    file that :func:`recover_pair` deletes); a kill after it leaves new weights whose
    sidecar is pending, and :func:`recover_pair` moves it into place. Either way the
    sidecar beside the weights ends up carrying their sha256.
    """
    recover_pair(weights_path, sidecar_path)
    pending = sidecar_path.with_name(_pending_name(sidecar_path))
    _io.write_json(pending, sidecar)
    try:
        _io.write_bytes(weights_path, blob)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, sidecar_path)


def recover_pair(weights_path: Path, sidecar_path: Path) -> list[Path]:
    """Finish or undo a checkpoint save that a dead process left half done.

    A pending sidecar of a dead writer (same host, pid gone) whose sha256 is that of the weights
    now on disk is moved into place (the weights were committed, the sidecar not yet); any other
    is deleted (the weights were never replaced, so the old pair is whole). A live writer's
    pending sidecar is left alone. Returns the pending files acted on; never raises for a
    read-only folder.
    """
    pattern = re.compile(
        rf"^\.{re.escape(sidecar_path.name)}\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.pending$"
    )
    try:
        names = [n for n in os.listdir(sidecar_path.parent) if pattern.match(n)]
    except OSError:
        return []
    done = []
    for name in names:
        match = pattern.match(name)
        if match["host"] != _io.HOST or _io.pid_alive(int(match["pid"])):
            continue
        pending = sidecar_path.parent / name
        sha = _sha(pending)
        try:
            if sha is not None and weights_path.is_file() and _sha256_file(weights_path) == sha:
                os.replace(pending, sidecar_path)
            else:
                pending.unlink()
        except OSError:
            continue
        done.append(pending)
    done += _recover_legacy(weights_path, sidecar_path)
    return done


def _recover_legacy(weights_path: Path, sidecar_path: Path) -> list[Path]:
    """An earlier version wrote the sidecar through ``.<stem>.json.RANDOM.json.tmp`` after the
    weights: a kill there left new weights beside the old sidecar. When the sidecar does not match
    the weights but such a temporary file does, it is the sidecar that was being written."""
    pattern = re.compile(rf"^\.{re.escape(sidecar_path.name)}\.[a-z0-9_]{{8}}\.json\.tmp$")
    try:
        names = [n for n in os.listdir(sidecar_path.parent) if pattern.match(n)]
        if not names or _sha(sidecar_path) == (sha := _sha256_file(weights_path)):
            return []
    except OSError:
        return []
    for name in names:
        candidate = sidecar_path.parent / name
        if _sha(candidate) == sha:
            with contextlib.suppress(OSError):
                os.replace(candidate, sidecar_path)
                return [candidate]
    return []


def _sha(sidecar_path: Path) -> str | None:
    """The sha256 a sidecar records, or None when it is unreadable."""
    try:
        return json.loads(sidecar_path.read_text(encoding="utf-8")).get("sha256")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
