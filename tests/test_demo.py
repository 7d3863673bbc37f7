"""The README's main job without the browser: shipped SynthFER checkpoints -> runs -> metrics."""

import json
from pathlib import Path

import pytest

from ferembed.demo import run_demo, shipped_checkpoints
from ferembed.runs import find_runs, load_run

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.slow
def test_demo_builds_evaluated_runs_from_every_shipped_checkpoint(tmp_path):
    cards = shipped_checkpoints(CHECKPOINTS / "synthfer")
    if not cards:
        pytest.skip("no shipped SynthFER checkpoints")
    assert run_demo(runs=tmp_path, checkpoints=CHECKPOINTS, dashboard=False) == 0
    runs = find_runs(tmp_path)
    assert sorted(p.name for p in runs) == sorted(f"synthfer-{c.stem}" for c in cards)
    for path in runs:
        run = load_run(path)
        assert run.n == 1400 and run.logits is not None and run.thumbs is not None
        metrics = run.load_metrics()
        assert metrics is not None and metrics["n"] == 1400
        # the head accuracy recorded is the accuracy of the run's own predictions
        acc = float((run.samples["pred"] == run.samples["label"]).mean())
        assert metrics["head_accuracy"] == pytest.approx(acc)
        assert any(run.cache_dir.glob("projection-*")), "projection not cached"
    # A second demo reuses every run (same checkpoint hash): nothing is rewritten.
    before = {p: (p / "run.json").stat().st_mtime_ns for p in runs}
    assert run_demo(runs=tmp_path, checkpoints=CHECKPOINTS, dashboard=False) == 0
    assert before == {p: (p / "run.json").stat().st_mtime_ns for p in runs}
    card = json.loads(cards[0].read_text())
    assert card["class_names"] == load_run(runs[0]).class_names
