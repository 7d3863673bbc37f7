"""What keeps the dashboard confined: paths inside the runs root, no symlink out of it, user text
shown as text, and runs whose values the pages can draw.

No Streamlit here (plain functions, tested directly):

- :func:`resolve_inside` resolves a typed or selected path and refuses one that leaves the root
  (``..``, an absolute path elsewhere, a symlink out, a NUL byte, a name too long for the OS).
- :func:`outside_links` lists the symbolic links anywhere inside a run directory (``thumbs.npy``,
  ``metrics.json``, ``cache/``, a file in ``cache/``...) that resolve outside the root; a run with
  one is refused as a whole, so nothing reads through it and nothing writes through it (the
  library's readers and the keyed cache would follow it).
- :func:`markdown_text`, :func:`code_text` and :func:`plotly_text` turn a user's string (a run
  name, class name, label, sample id, path, metadata value, error message) into text that
  Streamlit's Markdown or Plotly's HTML-like labels show literally: no image, link, HTML, colour,
  icon, emoji shortcode or formula is interpreted, so nothing a run holds makes the browser fetch.
- :func:`check_values` refuses a run whose labels or predictions a page cannot draw (a NaN label,
  a prediction outside the classes), so it shows as a malformed run instead of taking down a page.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np

from ferembed.errors import FerembedError

#: Longest path text accepted from the page (PATH_MAX on Linux).
MAX_PATH_CHARS = 4096
#: Characters Markdown (CommonMark, GFM and Streamlit's extensions: ``:color[...]``,
#: ``:material/icon:``, emoji shortcodes, ``$math$``) gives a meaning; each is backslash-escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:&^=-])")
#: Patterns Streamlit's Markdown turns into something even when escaped or in a code span, because
#: it looks for them in the text after parsing: ``:material/NAME:`` (an icon) and bare URLs and
#: e-mail addresses (links, GFM's autolink literals). A word joiner (U+2060, invisible) after
#: the colon of ``:material/`` or ``://``, after ``www`` and after ``@`` breaks each of them.
_LINKISH = re.compile(r"(:(?=material/)|:(?=//)|(?<=www)(?=\.)|@)", re.IGNORECASE)
_JOINER = "\u2060"


class OutsideRootError(FerembedError, ValueError):
    """A path that resolves outside the runs root, or is not a usable path at all."""


def resolve_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Resolve ``path`` (relative to ``root``, or absolute) and check that it stays inside ``root``.

    Raises:
        OutsideRootError: the resolved path (``..`` and symlinks followed) is not ``root`` or a
            descendant of it, or the text is not a usable path (NUL byte, too long, a symlink
            loop).
    """
    root_r = Path(root).resolve()
    text = str(path).strip()
    shown = text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"
    if "\x00" in text:
        raise OutsideRootError(f"{shown!r} is not a valid path (NUL byte)")
    if len(text) > MAX_PATH_CHARS:
        raise OutsideRootError(f"{shown!r} is not a valid path (longer than {MAX_PATH_CHARS})")
    try:
        resolved = (root_r / text).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # too long a name, a symlink loop
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutsideRootError(f"{shown!r} is not a valid path ({reason})") from None
    if resolved != root_r and root_r not in resolved.parents:
        raise OutsideRootError(f"{shown!r} is outside the runs root {root_r}; refused")
    try:  # a name too long for the file system, a folder it may not enter...
        resolved.stat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # absent: the caller says so
    except OSError as exc:
        raise OutsideRootError(f"{shown!r} is not a valid path ({exc.strerror})") from None
    return resolved


def is_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    try:
        resolve_inside(root, path)
    except OutsideRootError:
        return False
    return True


def outside_links(root: str | os.PathLike, directory: str | os.PathLike) -> list[str]:
    """The symbolic links inside ``directory`` (at any depth, links to folders not followed)
    whose target resolves outside ``root``, as posix paths relative to ``directory``.

    A dangling link, or a loop, counts as outside: where it would lead cannot be checked.
    """
    base = Path(directory)
    found = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink() and not _link_inside(root, path):
                found.append(path.relative_to(base).as_posix())
    return sorted(found)


def _link_inside(root: str | os.PathLike, link: Path) -> bool:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop
        return False
    return is_inside(root, target)


def check_confined(root: str | os.PathLike, directory: str | os.PathLike) -> None:
    """Refuse a run directory holding a symlink out of the runs root.

    Raises:
        OutsideRootError: naming the first such link.
    """
    links = outside_links(root, directory)
    if links:
        more = f" (and {len(links) - 1} more)" if len(links) > 1 else ""
        raise OutsideRootError(
            f"{links[0]}{more}: a symbolic link to outside the runs root; the run is refused "
            "(nothing is read or written through it)"
        )


def check_values(labels: np.ndarray, preds: np.ndarray, n_classes: int, *, what: str) -> None:
    """Refuse labels and predictions the pages cannot draw.

    Args:
        labels: (N,) label indices (any numeric dtype; NaN is refused).
        preds: (N,) predicted indices, -1 (or NaN) where there is none.
        n_classes: the number of classes.
        what: names the source in the message (a run's path).

    Raises:
        FerembedError: naming the first bad row and value.
    """
    for kind, values, low in (("label", labels, 0), ("prediction", preds, -1)):
        v = np.asarray(values, dtype=float)
        bad = ~np.isfinite(v) if kind == "label" else np.zeros(v.shape, bool)
        finite = np.where(np.isfinite(v), v, low)
        bad |= (finite < low) | (finite >= n_classes) | (finite != np.round(finite))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise FerembedError(
                f"{what}: {kind} {v[row]:g} at row {row} is not a class index in "
                f"{low}..{n_classes - 1} ({int(bad.sum())} such row(s)); the run is skipped"
            )


def markdown_text(value: object) -> str:
    """``value`` as Markdown source that renders as the literal text (one line)."""
    text = _LINKISH.sub(r"\1" + _JOINER, " ".join(str(value).split()))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def code_text(value: object) -> str:
    """``value`` as a Markdown code span (shown literally, in monospace; one line).

    The fence is one backtick longer than any run of backticks inside, as CommonMark requires.
    """
    text = _LINKISH.sub(r"\1" + _JOINER, " ".join(str(value).split()))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plotly_text(value: object) -> str:
    """``value`` as text for a Plotly title, legend, tick label or hover text: its HTML-like
    tags (``<a href>``, ``<img>``, ``<br>``...) and entities are shown, not interpreted."""
    return html.escape(str(value), quote=False)


#: Sections of metrics.json the pages index into, and the type of each (docs/metrics.md).
_METRIC_SECTIONS = ("per_class", "confusion", "classification", "separation", "histograms", "ci")
#: The prediction sources of the confusion and classification sections.
_SOURCES = ("head", "knn", "centroid")


def metrics_problem(metrics: dict) -> str | None:
    """Why the pages cannot draw this metrics.json (a section of the wrong type, a matrix or
    histogram that is not numbers), or None when they can.

    A hand-edited or foreign file is then one run's warning instead of a page's traceback.
    """
    for key in _METRIC_SECTIONS:
        section = metrics.get(key)
        if section is not None and not isinstance(section, dict):
            return f"{key!r} is a {type(section).__name__}, expected an object"
    # Per class, and per prediction source (head, knn, centroid; "primary" names one of them).
    for key, names in (("per_class", None), ("confusion", None), ("classification", _SOURCES)):
        for name, value in (metrics.get(key) or {}).items():
            if (
                (names is None or name in names)
                and value is not None
                and not isinstance(value, dict)
            ):
                return f"{key}[{name!r}] is a {type(value).__name__}, expected an object"
    arrays = [("separation", "centroid_distances", (metrics.get("separation") or {}))]
    arrays += [("histograms", k, metrics.get("histograms") or {}) for k in ("bin_edges", "intra")]
    arrays += [("histograms", "inter", metrics.get("histograms") or {})]
    for source, conf in (metrics.get("confusion") or {}).items():
        arrays += [(f"confusion[{source!r}]", k, conf or {}) for k in ("counts", "normalized")]
    for where, key, holder in arrays:
        if holder.get(key) is None:
            continue
        try:
            np.asarray(holder[key], dtype=float)
        except (TypeError, ValueError):
            return f"{where}[{key!r}] is not an array of numbers"
    return None
