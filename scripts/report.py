"""docs/results.json, docs/results.md and docs/figures/ from the study's runs (results_study.py).

The report is built in four steps, so that the page can be checked and rebuilt without the runs:

1. ``collect(study)`` reads the raw numbers from the runs and records (``_report/collect.py``);
2. ``analyze(raw)`` derives every other number the page prints (``_report/analyze.py``);
3. raw + ``analysis`` + the figure paths are docs/results.json;
4. ``render(results)`` writes docs/results.md from that JSON alone (``_report/render*.py``).

``python scripts/results_study.py report --from-json`` repeats steps 2-4 from docs/results.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _report.analyze import analyze
from _report.collect import SCHEMA, collect
from _report.figures import figures
from _report.render import render

from ferembed import _io
from ferembed.errors import FerembedError


def write_report(study) -> None:
    """Collect the study's runs, analyze, draw the figures, write results.json and results.md."""
    raw = collect(study)
    raw["figures"] = figures(study, with_analysis(raw), study.docs / "figures")
    # keys in the order ``rerender`` writes them (analysis last), so both give the same file
    _write(study.docs, with_analysis(raw))


def with_analysis(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (without any stale ``analysis``) plus ``analysis = analyze(raw)``, figures kept."""
    raw = {k: v for k, v in raw.items() if k != "analysis"}
    return {**raw, "analysis": analyze(raw)}


def rerender(docs: str | Path) -> Path:
    """Re-analyze the raw numbers of ``docs/results.json`` and rewrite it and ``docs/results.md``
    (figures unchanged); no run is read. Returns the path of results.md.

    Raises:
        FerembedError: when ``docs/results.json`` is missing or not a results file.
    """
    docs = Path(docs)
    path = docs / "results.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FerembedError(f"{path} not found: run the study's report stage first") from None
    except json.JSONDecodeError as exc:
        raise FerembedError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(stored, dict) or stored.get("schema") != SCHEMA:
        found = stored.get("schema") if isinstance(stored, dict) else type(stored).__name__
        raise FerembedError(f"{path}: expected schema {SCHEMA}, found {found}")
    return _write(docs, with_analysis(stored))


def _write(docs: Path, results: dict[str, Any]) -> Path:
    _io.write_json(docs / "results.json", results)
    # the page is rendered from the JSON as written (NaN -> null), never from the dict in memory
    text = render(json.loads((docs / "results.json").read_text(encoding="utf-8")))
    _io.write_text(docs / "results.md", text)
    n = len(results.get("figures") or {})
    print(f"wrote {docs / 'results.md'}, {docs / 'results.json'} ({n} figures)")
    return docs / "results.md"


__all__ = ["analyze", "collect", "figures", "render", "rerender", "with_analysis", "write_report"]
