"""Atomic file and directory writes, and the cleanup of what interrupted writers leave behind.

A crash (or an error) never leaves a file or directory that looks complete: content is written to a
temporary sibling and moved into place with :func:`os.replace`, which is atomic on POSIX when both
paths are on one filesystem.

Every temporary name says who made it: ``.NAME.PID@HOST.RANDOM[.ext].tmp`` (a file or directory
being written), ``.NAME.PID@HOST.RANDOM.old`` (the previous ``NAME`` during an ``overwrite`` swap)
and ``.NAME.PID@HOST.RANDOM.trash`` (an old one being deleted). :func:`clean_leftovers` removes the
ones whose writer is dead (same host, pid gone) and puts an ``.old`` back when the swap was
interrupted before the new ``NAME`` was in place; a live writer's files are never touched. Every
write runs it on the folder it writes in, so leftovers go at the next command that writes there
(and :func:`ferembed.runs.find_runs` / ``load_run`` run it where a run is missing). Names of
earlier versions, which carry no writer, are removed once a day old (an ``.old`` whose run is
missing is put back at once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: This host, as it appears in temporary names and lock files (letters, digits and dashes).
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "localhost"
#: Temporary names written by this version: the writer's pid and host are in the name.
_LEFTOVER = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[a-z0-9_]{8}(?:\..+)?"
    r"\.(?P<kind>tmp|old|trash)$"
)
#: Temporary names of earlier versions (no writer in the name): recognised by age only.
_LEGACY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?:\..+)?\.(?P<kind>tmp|old)$")
#: A leftover whose writer cannot be checked (another host, or an earlier version's name) is
#: removed once it is this old: no write of ferembed takes that long.
ORPHAN_AGE_S = 24 * 3600.0


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (same value, no window
    # in which a file is created with another mask by this thread).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writer_tag() -> str:
    """``PID@HOST`` of this process, as written in temporary names and lock files."""
    return f"{os.getpid()}@{HOST}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (one we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


def _target_error(exc: OSError, path: Path) -> OSError:
    # Report the file the user asked for, not the temporary name beside it.
    return type(exc)(exc.errno, exc.strerror, str(path))


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.{writer_tag()}.", suffix=f"{suffix}.tmp", dir=path.parent
        )
    except OSError as exc:
        raise _target_error(exc, path) from None
    # mkstemp creates 0600; a finished file gets the mode any other file of the user would get.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


def make_temp_dir(parent: Path, prefix: str, suffix: str = ".tmp") -> Path:
    """A new directory in ``parent`` with the user's umask applied (mkdtemp alone makes 0700).

    ``prefix`` is extended with :func:`writer_tag`, so :func:`clean_leftovers` can tell whether
    its writer is still alive.
    """
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{writer_tag()}.", suffix=suffix, dir=parent))
    except OSError as exc:
        raise _target_error(exc, Path(parent)) from None
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _writer_gone(entry: Path, match: re.Match, now: float) -> bool:
    """Whether the process that made ``entry`` can no longer be writing it."""
    try:
        age = now - entry.lstat().st_mtime
    except OSError:
        return False
    pid = match.groupdict().get("pid")
    if pid is not None and match["host"] == HOST:
        return not pid_alive(int(pid))
    return age > ORPHAN_AGE_S


def clean_leftovers(parent: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove (or restore) what dead writers left in ``parent``; return the paths acted on.

    A ``.tmp`` or ``.trash`` of a dead writer is deleted. An ``.old`` is the previous ``NAME`` of
    an interrupted ``overwrite`` swap: it is put back when ``NAME`` is missing (the new one never
    arrived), and deleted when ``NAME`` exists (the new one is complete). Only ``NAME`` when given.
    Errors (a read-only folder) are logged and skipped: cleaning never makes a command fail.
    """
    parent = Path(parent)
    try:
        entries = [e for e in os.listdir(parent) if e.startswith(".")]
    except OSError:
        return []
    now = time.time()
    done = []
    for entry in entries:
        match = _LEFTOVER.match(entry) or _LEGACY.match(entry)
        if match is None or (name is not None and match["name"] != name):
            continue
        path = parent / entry
        # An earlier version's ".old" whose run is missing is put back at once: only a kill
        # leaves it so (that version held it for two renames).
        orphan = match.re is _LEGACY and match["kind"] == "old"
        if not (orphan and not os.path.lexists(parent / match["name"])) and not _writer_gone(
            path, match, now
        ):
            continue
        try:
            target = parent / match["name"]
            if match["kind"] == "old" and not os.path.lexists(target):
                # An earlier version moved the old directory to ".old/x".
                inner = path / "x" if match.re is _LEGACY else path
                os.rename(inner, target)
                if inner != path:
                    shutil.rmtree(path, ignore_errors=True)
                log.warning("restored %s from an interrupted overwrite", target)
            else:
                _remove(path)
        except OSError as exc:
            log.debug("could not clean %s (%s)", path, exc)
            continue
        done.append(path)
    return done


def _ready_parent(path: str | os.PathLike) -> Path:
    """``path`` as a Path whose folder exists, with dead writers' leftovers there cleaned."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _target_error(exc, path) from None
    clean_leftovers(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The caller writes the temporary file by any means (``np.save``, ``to_parquet``...). On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    path = _ready_parent(path)
    # Keep the real suffix last so libraries that dispatch on it (np.save adds ".npy") behave.
    tmp = _tmp_sibling(path, suffix="".join(path.suffixes))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON copy: numpy scalars/arrays to numbers/lists, tuples to lists, NaN and Inf to None.

    The one JSON sanitiser: every JSON file ferembed writes goes through it (``write_json``).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``to_jsonable(obj)`` atomically (never NaN or Infinity in the file)."""
    write_text(
        path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
    )


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it becomes ``path``.

    With ``overwrite=True`` an existing ``path`` is replaced only after the new one is complete:
    it is renamed to ``.NAME.PID@HOST.RANDOM.old``, the new one is renamed onto ``path``, and only
    then is the old one deleted. A kill between the two renames leaves the old one under that
    name; the next write in the folder (or :func:`ferembed.runs.load_run` of ``path``) puts it
    back, since its writer is dead.
    """
    path = _ready_parent(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite to replace it)")
    tmp = make_temp_dir(path.parent, f".{path.name}.")
    old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old")
    try:
        yield tmp
        if os.path.lexists(path):
            os.rename(path, old)
            os.replace(tmp, path)
            trash = old.with_name(old.name[: -len(".old")] + ".trash")
            os.rename(old, trash)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.lexists(old) and not os.path.lexists(path):
            os.rename(old, path)
        raise
