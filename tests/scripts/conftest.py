"""Make scripts/ importable (the study's scripts import each other by module name, as they do
when run as ``python scripts/results_study.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
