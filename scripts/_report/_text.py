"""The report's cell formats, all through ferembed._format (the page's own conventions)."""

from __future__ import annotations

from typing import Any

from ferembed._format import number, with_ci

DASH = "–"


def cell(v: Any, frac: bool) -> str:
    """A fraction as a percentage with 1 decimal (no "%"), anything else with 3 decimals."""
    return number(v, ".1f" if frac else ".3f", percent=frac, missing=DASH)


def cell_ci(v: Any, interval, frac: bool) -> str:
    """``value`` followed by its interval in brackets, when there is one."""
    return with_ci(v, interval, ".1f" if frac else ".3f", percent=frac, missing=DASH)


def pct_text(v: Any, spec: str = ".1f") -> str:
    """A fraction as a percentage, without the "%"."""
    return number(v, spec, percent=True, missing=DASH)


def diff_cell(d: dict, frac: bool, significant: bool) -> str:
    """A paired difference with its interval, signed; " *" when the interval excludes 0."""
    spec = "+.1f" if frac else "+.3f"
    diff, lo, hi = (number(d[k], spec, percent=frac) for k in ("diff", "ci_low", "ci_high"))
    return f"{diff} [{lo}, {hi}]" + (" *" if significant else "")
