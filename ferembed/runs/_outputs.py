"""The one check of an output path, used by every command that writes (``--out`` and the like).

An output must never clobber an input or another run. :func:`check_output` is called before a
command reads or computes anything, and refuses (one line naming the flag and both paths):

- an output equal to an input, inside an input folder, or (for a run directory, which
  ``--overwrite`` replaces whole) holding an input;
- an output inside an existing run directory (a run's files belong to :mod:`ferembed.runs`), or
  a folder of results that is itself a run;
- an existing output without ``overwrite``; a directory where a file is needed; a run directory
  over something that is not a run (``--overwrite`` replaces runs, never other folders);
- an output whose nearest existing folder is a file or is not writable.

Paths are compared resolved, symlinks followed, so a link to an input is the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ferembed.errors import FerembedError
from ferembed.runs._files import RUN_FILE

#: What an output is: one file written atomically, a run directory written (and replaced) whole
#: by ``write_run``, or a folder of results that a command adds named files to.
OUTPUT_KINDS = ("file", "run", "dir")

_SAME = "an output must never replace an input"


def _resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path))).resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def enclosing_run(path: str | os.PathLike) -> Path | None:
    """The run directory that ``path`` lies strictly inside, if any (symlinks followed)."""
    target = _resolve(path)
    for folder in target.parents:
        if (folder / RUN_FILE).is_file():
            return folder
    return None


def check_output(
    out: str | os.PathLike,
    *,
    flag: str = "--out",
    inputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
    overwrite: bool = False,
    kind: str = "file",
) -> Path:
    """Refuse an output path that would clobber an input, a run or an existing file.

    Args:
        out: the output path as the user typed it.
        flag: the option that gave it, for the message (``--out``, ``--runs``).
        inputs: ``(option, path)`` of every path the command reads; ``None`` paths are skipped.
        overwrite: an existing output may be replaced (atomically, by the caller).
        kind: one of :data:`OUTPUT_KINDS`: ``"file"``, ``"run"`` or ``"dir"``.

    Returns:
        ``Path(out)``.

    Raises:
        FerembedError: one line naming ``flag``, ``out`` and the path it collides with.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    shown = Path(out)
    if not os.fspath(out):
        raise FerembedError(f"{flag}: empty path")
    target = _resolve(shown)
    _check_parent(shown, target, flag)
    _check_runs(shown, target, flag, kind)
    _check_inputs(shown, target, flag, inputs, kind)
    _check_existing(shown, target, flag, overwrite, kind)
    return shown


def _check_parent(shown: Path, target: Path, flag: str) -> None:
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise FerembedError(f"{flag} {shown}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FerembedError(f"{flag} {shown}: cannot write in {folder} (permission denied)")


def _check_inputs(shown: Path, target: Path, flag: str, inputs, kind: str) -> None:
    for option, path in inputs:
        if path is None or not os.fspath(path):
            continue
        source = _resolve(path)
        where = f"{option} {path}"
        if target == source:
            raise FerembedError(f"{flag} {shown}: the same path as {where}; {_SAME}")
        if _inside(target, source):
            raise FerembedError(f"{flag} {shown}: inside {where}; write outputs outside the inputs")
        if kind == "run" and _inside(source, target):
            # --overwrite replaces the whole folder: the input would go with it.
            raise FerembedError(f"{flag} {shown}: holds {where}; {_SAME}")


def _check_runs(shown: Path, target: Path, flag: str, kind: str) -> None:
    run = enclosing_run(target)
    if run is not None:
        raise FerembedError(
            f"{flag} {shown}: inside the run {run} (a run's files belong to ferembed.runs); "
            "write it elsewhere"
        )
    if kind == "dir" and (target / RUN_FILE).is_file():
        raise FerembedError(f"{flag} {shown}: is a run directory; write it elsewhere")


def _check_existing(shown: Path, target: Path, flag: str, overwrite: bool, kind: str) -> None:
    if not target.exists():
        return
    if kind == "dir":
        if not target.is_dir():
            raise FerembedError(f"{flag} {shown}: is a file, not a folder")
        if not os.access(target, os.W_OK | os.X_OK):  # results are added inside it
            raise FerembedError(f"{flag} {shown}: cannot write in it (permission denied)")
        return
    if kind == "file" and target.is_dir():
        raise FerembedError(f"{flag} {shown}: Is a directory")
    if kind == "run":
        if not target.is_dir():
            raise FerembedError(f"{flag} {shown}: is a file, not a run directory")
        if not overwrite:
            raise FerembedError(f"{flag} {shown}: already exists (use --overwrite to replace it)")
        if not (target / RUN_FILE).is_file() and any(target.iterdir()):
            raise FerembedError(
                f"{flag} {shown}: a folder that is not a run; --overwrite replaces only a run "
                "directory, never other files"
            )
        return
    if not overwrite:
        raise FerembedError(f"{flag} {shown}: already exists (use --overwrite to replace it)")
