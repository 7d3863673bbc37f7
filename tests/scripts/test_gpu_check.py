"""bench/gpu_check.py's logic on the CPU (CI has no GPU): a CPU device stands in for the GPU."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ferembed import _search

_PATH = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check", _PATH)
gc = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gc
_spec.loader.exec_module(gc)

pytestmark = pytest.mark.usefixtures("one_thread")


def _engine(monkeypatch, perturb: bool = False):
    """compute_knn with the engine's call shape (device=, backend=), the numpy kernel beneath."""
    real = _search.compute_knn
    calls = []

    def shim(x, k, *, device=None, backend=None, **kw):
        calls.append((backend, device))
        res = real(x, k, **kw)
        if perturb and backend == "torch":  # a wrong engine: swap the first two neighbours
            idx = res.indices.copy()
            idx[::2, [0, 1]] = idx[::2, [1, 0]]
            return _search.KNN(idx, res.distances + 1e-3, res.queries)
        return res

    monkeypatch.setattr(_search, "compute_knn", shim)
    return calls


def _run(tmp_path, *extra):
    out = tmp_path / "gc.json"
    assert gc.main_gpu_check(["--smoke", "--device", "cpu", "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_knn_part_verifies_the_engine_against_numpy(tmp_path, monkeypatch):
    calls = _engine(monkeypatch)
    doc = _run(tmp_path, "--parts", "knn", "--n", "3000", "--all-n", "1200")
    knn = doc["parts"]["knn"]
    assert ("torch", "cpu") in calls and ("numpy", "cpu") in calls
    q = knn["queries"]["torch_cpu_vs_numpy"]
    assert q == {
        "rows": 500,
        "identical_rows": 1.0,
        "equal_up_to_ties": 1.0,
        "max_abs_delta_distance": 0.0,
    }
    a = knn["all_vs_all"]
    assert a["numpy_cpu_rows"] == 1000 and a["torch_cpu_vs_numpy"]["rows"] == 1000
    assert a["numpy_cpu_s_extrapolated"] >= a["numpy_cpu_s"]
    assert doc["environment"]["device"] == "cpu" and "part_s" in knn


def test_knn_part_reports_a_disagreeing_engine(tmp_path, monkeypatch):
    _engine(monkeypatch, perturb=True)
    doc = _run(tmp_path, "--parts", "knn", "--n", "3000", "--all-n", "1200")
    q = doc["parts"]["knn"]["queries"]["torch_cpu_vs_numpy"]
    assert q["identical_rows"] == pytest.approx(0.5)
    assert q["equal_up_to_ties"] == pytest.approx(0.5)  # distances moved by 1e-3 > tol
    assert q["max_abs_delta_distance"] == pytest.approx(1e-3, rel=1e-2)


def test_knn_part_says_why_without_the_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(_search, "compute_knn", lambda x, k, **kw: None)
    doc = _run(tmp_path, "--parts", "knn")
    assert "no device/backend" in doc["parts"]["knn"]["skipped"]


def test_knn_agreement_counts_ties_as_equal():
    ref = _search.KNN(np.array([[0, 1], [2, 3]]), np.array([[0.1, 0.2], [0.3, 0.4]], np.float32),
                      np.arange(2))  # fmt: skip
    swapped = np.array([[1, 0], [2, 3]])  # row 0: a tie at 0.1 resolved the other way
    dist = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)
    dist_tie = dist.copy()
    dist_tie[0] = [0.1, 0.1]
    ref_tie = _search.KNN(ref.indices, dist_tie, ref.queries)
    agree = gc.knn_agreement(ref_tie, swapped, dist_tie)
    assert agree["identical_rows"] == 0.5 and agree["equal_up_to_ties"] == 1.0


def test_compare_leaves_finds_every_difference():
    a = {"x": 1.0, "ci": [0.5, 0.6], "n": 3, "name": "a", "timings_s": {"total": 1}}
    b = {"x": 1.0 + 1e-7, "ci": [0.5, 0.7], "n": 3, "name": "b", "timings_s": {"total": 9}}
    leaves, worst, bad = gc.compare_leaves(a, b, 1e-5)
    assert leaves == 4 and worst == pytest.approx(0.1)
    assert bad == ["/ci[1]", "/name ('a' vs 'b')"]
    assert gc.compare_leaves({"x": [1]}, {"x": [1, 2]}, 1e-5)[2] == ["/x (length 1 vs 2)"]
    assert gc.compare_leaves({"x": None}, {"x": None}, 1e-5) == (0, 0.0, [])


def test_embed_and_evaluate_parts_on_a_cpu_stand_in(tmp_path, monkeypatch):
    ev = importlib.import_module("ferembed.metrics.evaluate")  # the module, not the function
    real = ev.evaluate
    devices = []

    def with_device(x, y, *, device=None, knn_backend=None, **kw):
        devices.append(device)
        return real(x, y, **kw)

    monkeypatch.setattr(ev, "evaluate", with_device)
    sizes = ["--eval-n", "2000", "--eval-small-n", "2000"]
    doc = _run(tmp_path, "--parts", "embed", "evaluate", "--archs", "no_such", "vgg_small", *sizes)
    assert "no_such" in doc["parts"]["embed"]["no_such"]["error"]  # and the next arch still ran
    emb = doc["parts"]["embed"]["vgg_small"]
    assert emb["device_fp32_images_per_s"] > 0 and emb["device_bf16_images_per_s"] > 0
    assert emb["max_abs_delta_device_vs_cpu_fp32"] == 0.0  # the same CPU: the same numbers
    assert 0 < emb["max_abs_delta_amp_vs_fp32"] < 0.1 and emb["min_cosine_amp_vs_fp32"] > 0.99
    row = doc["parts"]["evaluate"]["n=2000"]
    assert devices == ["cpu", "cpu"]
    assert row["equal"] is True and row["numeric_leaves"] > 100 and row["max_abs_delta"] == 0.0
    assert set(row["device_timings_s"]) >= {"retrieval", "geometry", "total"}
