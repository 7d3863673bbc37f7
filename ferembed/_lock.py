"""An inter-process lock file that names its holder.

``hold_lock(path)`` takes an exclusive ``flock`` on ``path`` and writes the holder into it
(``{"pid", "host", "started", "command"}``); a second process waits, after printing one line
naming the holder. The kernel drops a ``flock`` when its process dies, so the lock of a killed
process is taken over at once, whatever its file still says. The file is removed on release; a
waiter that took the lock on a file already removed (its inode is no longer the path's) tries
again, so two processes never both hold it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ferembed import _io

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the lock is then advisory only
    fcntl = None  # type: ignore[assignment]


def read_holder(path: str | os.PathLike) -> dict[str, Any] | None:
    """The holder a lock file names, or None when there is none (or it is unreadable)."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}" + (
        f" ({holder['command']})" if holder.get("command") else ""
    )


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def hold_lock(
    path: str | os.PathLike,
    *,
    what: str,
    command: str = "",
    poll_s: float = 0.2,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[bool]:
    """Hold the lock file ``path`` for the ``with`` block; yield whether we had to wait.

    Args:
        path: the lock file (created; removed on release).
        what: what the lock guards, for the waiting message (``"evaluation of runs/x"``).
        command: written into the file, to tell the user what holds it.
        poll_s: how often a waiter looks again.
        on_wait: called once with the one-line message when the lock is held by another process
            (default: printed to stderr).

    Raises:
        OSError: the lock file cannot be created (a read-only folder).
    """
    path = Path(path)
    if fcntl is None:  # pragma: no cover
        yield False
        return
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if _try_lock(fd) and _same_file(fd, path):
            break
        if not waited:
            (on_wait or _stderr)(
                f"waiting for the {what}: held by {describe_holder(read_holder(path))}"
            )
            waited = True
        os.close(fd)
        time.sleep(poll_s)
    try:
        holder = {
            "pid": os.getpid(),
            "host": _io.HOST,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        yield waited
    finally:
        # Remove while still holding it: a waiter that then locks the removed file sees the
        # inode change and starts again on a new file.
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
