"""One keyed disk cache for results derived from runs (projections, comparisons).

An entry lives in ``RUN/cache/`` of the run it belongs to. Its key is a hash of everything the
result depends on: the kind of result, its parameters, and the identity of every input run (the
owner's creation stamp, shape, and the size and mtime of its embeddings and samples files; for any
other input also its resolved path). The full key
material is stored inside the entry and checked on read, so a hash collision, a foreign file or a
stale entry is a miss, never a wrong answer. Entries are written atomically; a read-only runs root
still works, just without caching. A rewritten run (``write_run(overwrite=True)``) replaces the
directory, cache included.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferembed import _io
from ferembed.runs._files import EMBEDDINGS_FILE, SAMPLES_FILE
from ferembed.runs.format import Run

log = logging.getLogger(__name__)

#: Bump when the layout of entries changes, so older entries are not reused.
CACHE_VERSION = 1
#: The array name under which an ``.npz`` entry stores its key material.
_IDENT = "__ident__"


def run_identity(run: Run, *, with_path: bool = False) -> dict[str, Any]:
    """What identifies a run's content: its creation stamp, shape, and the size and mtime of its
    embeddings and samples (so a file replaced in place is a new identity: a cached result is
    never served for other vectors); for a run other than the cache's owner, its resolved path."""
    ident = {
        "created": run.manifest.get("created"),
        "n": run.n,
        "dim": run.dim,
        "files": {
            name: _size_mtime(run.file_path(name)) for name in (EMBEDDINGS_FILE, SAMPLES_FILE)
        },
    }
    if with_path:
        ident["path"] = str(Path(run.path).resolve())
    return ident


def _size_mtime(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass(frozen=True)
class CacheEntry:
    """Where a cached result lives and the key material it must match.

    Attributes:
        path: the file in the owner run's ``cache/``.
        ident: kind, parameters, input identities and cache version (JSON-ready).
    """

    path: Path
    ident: dict[str, Any]

    def exists(self) -> bool:
        return self.path.is_file()


def cache_entry(
    run: Run,
    kind: str,
    params: dict[str, Any],
    *,
    inputs: Sequence[Run] = (),
    label: str | None = None,
    suffix: str = ".json",
) -> CacheEntry:
    """The cache entry of a result of ``kind`` computed from ``run`` (and ``inputs``).

    Args:
        run: the run that owns the entry (it is stored in ``run.cache_dir``).
        kind: what the result is (``"projection"``, ``"compare"``); the file name starts with it.
        params: every parameter that changes the result (JSON-serialisable).
        inputs: other runs the result depends on.
        label: readable middle part of the file name (e.g. ``"umap-2d"``).
        suffix: ``".json"`` (a JSON value) or ``".npz"`` (named arrays).
    """
    if suffix not in (".json", ".npz"):
        raise ValueError(f"suffix must be '.json' or '.npz', got {suffix!r}")
    ident = _io.to_jsonable(
        {
            "kind": kind,
            "params": params,
            "run": run_identity(run),
            "inputs": [run_identity(r, with_path=True) for r in inputs],
            "version": CACHE_VERSION,
        }
    )
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    name = "-".join(p for p in (kind, label, digest) if p)
    return CacheEntry(run.cache_dir / f"{name}{suffix}", ident)


def load_cached(entry: CacheEntry) -> Any | None:
    """The cached value (a JSON value, or a dict of arrays for ``.npz``), or None on a miss."""
    try:
        if entry.path.suffix == ".npz":
            with np.load(entry.path, allow_pickle=False) as z:
                if json.loads(str(z[_IDENT])) != entry.ident:
                    return None
                return {key: z[key] for key in z.files if key != _IDENT}
        stored = json.loads(entry.path.read_text())
        return stored["result"] if stored.get("ident") == entry.ident else None
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: recompute rather than fail
        log.warning("ignoring unreadable cache entry %s (%s)", entry.path, exc)
        return None


def save_cached(entry: CacheEntry, value: Any) -> bool:
    """Write ``value`` to the entry atomically; False (and a log line) when that fails."""
    try:
        if entry.path.suffix == ".npz":
            with _io.atomic_path(entry.path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **value, **{_IDENT: np.array(json.dumps(entry.ident))})
        else:
            text = json.dumps({"ident": entry.ident, "result": _io.to_jsonable(value)})
            _io.write_text(entry.path, text + "\n")
    except (OSError, ValueError, TypeError) as exc:  # read-only root, or not serialisable
        log.warning("could not cache %s (%s)", entry.path, exc)
        return False
    return True
