"""The one place where numbers become text (CLI, cards, reports, export, dashboard).

Every formatter in ferembed is one of these functions with its options: a value, a value with its
interval, a signed difference. ``None``, NaN and Inf print as ``missing``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def is_number(v: Any) -> bool:
    """True for a finite int/float (numpy scalars included), False for bool, None, NaN, Inf."""
    if isinstance(v, bool) or v is None:
        return False
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f)


def number(
    v: Any,
    spec: str = ".3f",
    *,
    percent: bool = False,
    percent_sign: bool = False,
    missing: str = "n/a",
) -> str:
    """``v`` formatted with the format ``spec``.

    Args:
        v: the value (a fraction when ``percent``).
        spec: a ``format`` spec such as ``".3f"``, ``"+.4f"``, ``"6.2f"``, ``".3g"``.
        percent: multiply by 100 first.
        percent_sign: append "%" (only with ``percent``).
        missing: the text for None, NaN and Inf.
    """
    if not is_number(v):
        return missing
    x = 100 * float(v) if percent else float(v)
    return format(x, spec) + ("%" if percent and percent_sign else "")


def with_ci(
    v: Any,
    ci: Sequence[Any] | None,
    spec: str = ".3f",
    *,
    percent: bool = False,
    percent_sign: bool = False,
    ci_spec: str | None = None,
    missing: str = "n/a",
) -> str:
    """``"v [lo, hi]"``; just ``"v"`` when the interval is absent; ``missing`` when ``v`` is.

    ``ci_spec`` formats the bounds (default: ``spec``); the bounds never carry "%".
    """
    text = number(v, spec, percent=percent, percent_sign=percent_sign, missing=missing)
    if not is_number(v) or not ci or len(ci) != 2 or not all(is_number(c) for c in ci):
        return text
    bspec = ci_spec or spec
    lo, hi = (number(c, bspec, percent=percent) for c in ci)
    return f"{text} [{lo}, {hi}]"


def adaptive(v: Any, *, missing: str = "–") -> str:
    """A compact number for tables of mixed scales: 4 decimals, 3 significant digits when tiny or
    huge, 1 decimal from 1000 on."""
    if not is_number(v):
        return missing
    v = float(v)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.1f}" if abs(v) >= 1000 else f"{v:.4f}"
