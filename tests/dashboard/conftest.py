"""Fixtures for the dashboard tests: a runs root with three evaluated synthetic runs (two with a
classifier head), three malformed runs, and a valid run outside the root."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dashboard_synth import make_run, make_runs, make_split

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
#: Samples per synthetic run: small enough for quick AppTests, large enough for real metrics.
N = 300
VALID = ("arcface", "softmax", "supcon")  # the sorted names of the valid runs
BROKEN = ("bad_json", "bad_shape", "missing_array")


@pytest.fixture(scope="session")
def runs_tree(tmp_path_factory) -> Path:
    """``TREE/runs`` (the runs root) and ``TREE/outside/run`` (a valid run outside it)."""
    from ferembed.runs import evaluate_run

    tree = tmp_path_factory.mktemp("dash")
    root = tree / "runs"
    for path in make_runs(root, N):
        evaluate_run(path)
    # Malformed runs: invalid run.json, an array of the wrong shape, a missing array.
    (root / "bad_json").mkdir()
    (root / "bad_json" / "run.json").write_text("{not json")
    shutil.copytree(root / "supcon", root / "bad_shape")
    np.save(root / "bad_shape" / "embeddings.npy", np.zeros((N, 5), np.float32))
    shutil.copytree(root / "supcon", root / "missing_array")
    (root / "missing_array" / "embeddings.npy").unlink()
    for bad in ("bad_shape", "missing_array"):
        manifest = json.loads((root / bad / "run.json").read_text())
        manifest["name"] = bad
        (root / bad / "run.json").write_text(json.dumps(manifest))
    split = make_split(60)
    make_run(tree / "outside" / "run", split, loss="softmax", spread=0.2)
    # A valid run in a hidden folder: not listed by the scan, but can be opened by path.
    make_run(root / ".hidden" / "extra", split, loss="triplet", spread=0.2, logits=False)
    return tree


@pytest.fixture(scope="session")
def runs_root(runs_tree) -> Path:
    return runs_tree / "runs"


#: ``app(selected=DEFAULT)`` keeps the app's own default selection.
DEFAULT = object()


@pytest.fixture
def app(runs_root, monkeypatch):
    """A function ``app(page=None, setup=None, root=None, selected=...)`` returning an AppTest
    that ran ``page``.

    The page tests on the standard root see the selection ``list(VALID)`` (alphabetical, so
    arcface is the reference); ``selected=DEFAULT`` keeps the app's own default (the softmax
    run first: tested in test_defaults.py) and another root always does.
    """
    from streamlit.testing.v1 import AppTest

    def open_page(page: str | None = None, *, setup=None, root: Path | None = None, selected=None):
        monkeypatch.setenv("FEREMBED_RUNS", str(root or runs_root))
        at = AppTest.from_file(str(APP), default_timeout=120)
        if selected is None and root is None:
            selected = list(VALID)
        if selected is not None and selected is not DEFAULT:
            at.session_state["selected_runs"] = list(selected)
        at.run()
        assert not at.exception, at.exception
        if setup is not None:
            setup(at)
        if page is not None:
            at.switch_page(f"views/{page}.py").run()
            assert not at.exception, [e.message for e in at.exception]
        return at

    return open_page
