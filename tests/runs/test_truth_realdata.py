"""Issue #12 on the real data: for the shipped FER2013 softmax and island checkpoints embedded on
the test split, ``ferembed compare``'s geometry equals each run's metrics.json, and every interval
of both metrics.json contains its estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferembed.cli import main
from ferembed.runs import evaluate_run
from ferembed.runs.compare import compare_runs

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints" / "fer2013"
GEOMETRY = ("compactness", "class_separation", "fisher_ratio")


@pytest.fixture(scope="module")
def runs(fer2013_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fer2013-truth")
    out = []
    for method in ("softmax", "island"):
        run = tmp / method
        argv = ["embed", "--checkpoint", str(CHECKPOINTS / f"{method}.safetensors")]
        argv += ["--dataset", "fer2013", "--root", str(fer2013_root), "--split", "test"]
        assert main([*argv, "--out", str(run), "--device", "cpu", "--no-thumbs", "--quiet"]) == 0
        out.append(run)
    return out


def test_compare_geometry_equals_evaluate_on_fer2013(runs):
    softmax, island = (evaluate_run(r, n_boot=200) for r in runs)
    for met in (softmax, island):
        for key, (lo, hi) in met["ci"].items():
            assert lo <= met[key] <= hi, (met["run"], key, lo, met[key], hi)
    geo = compare_runs(runs[0], runs[1], n_boot=50)["geometry"]
    for key in GEOMETRY:
        assert abs(geo[key]["a"] - softmax[key]) < 1e-6
        assert abs(geo[key]["b"] - island[key]) < 1e-6
        assert geo[key]["ci_low"] <= geo[key]["diff"] <= geo[key]["ci_high"]
