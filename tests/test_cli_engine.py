"""--device / --knn-backend on evaluate, compare and index; the index sidecar's measured recall."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ferembed._search_engine as engine_mod
from ferembed.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small imported run (90 rows, 3 classes, D=6)."""
    tmp = tmp_path_factory.mktemp("cli_engine")
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = 3.0 * np.eye(6, dtype=np.float32)[y] + rng.normal(size=(90, 6)).astype(np.float32)
    np.save(tmp / "e.npy", x)
    (tmp / "l.csv").write_text("label\n" + "".join(f"{c}\n" for c in y))
    argv = ["import", "--embeddings", str(tmp / "e.npy"), "--labels", str(tmp / "l.csv")]
    assert main([*argv, "--out", str(tmp / "run")]) == 0
    return tmp / "run"


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(engine_mod, "faiss_gpu_count", lambda: 0)
    monkeypatch.setattr(engine_mod, "torch_cuda_available", lambda: False)


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{run}", "--device", "cuda"],
        ["compare", "{run}", "{run}", "--device", "cuda"],
        ["index", "{run}", "--device", "cuda"],
        ["evaluate", "{run}", "--device", "cuda", "--knn-backend", "torch"],
    ],
    ids=lambda v: " ".join(v[:1] + v[2:]),
)
def test_cuda_without_a_gpu_is_one_line_exit_2(run_dir, argv, no_gpu, capsys):
    before = sorted(p.name for p in run_dir.iterdir())
    assert main([a.format(run=run_dir) for a in argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ferembed: error:"), err
    assert "device 'cuda' requested but no GPU is usable" in err[0]
    assert sorted(p.name for p in run_dir.iterdir()) == before  # refused before any work


def test_bad_backend_name_is_a_usage_error(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--knn-backend", "annoy"]) == 2
    assert "annoy" in capsys.readouterr().err


def test_evaluate_records_the_engine_and_backends_agree(run_dir):
    """Every backend gives the same metrics; metrics.json says which one ran. The retrieval
    group's fused pass needs whole rows of scores, which FAISS on the CPU computes with the same
    BLAS product as numpy: it is recorded as numpy; without retrieval FAISS runs the search."""
    results = {}
    for backend, include, ran in [
        ("numpy", "retrieval,classification", "numpy"),
        ("faiss", "retrieval,classification", "numpy"),
        ("torch", "retrieval,classification", "torch"),
        ("numpy", "classification", "numpy"),
        ("faiss", "classification", "faiss"),
        ("torch", "classification", "torch"),
    ]:
        argv = ["evaluate", str(run_dir), "--device", "cpu", "--knn-backend", backend]
        assert main([*argv, "--include", include]) == 0
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["knn"] == {"backend": ran, "device": "cpu"}
        results[backend, include] = metrics
    for (_, include), metrics in results.items():
        base = results["numpy", include]
        for key in ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy", "macro_f1"):
            assert metrics[key] == base[key], key


def test_index_sidecar_stores_measured_recall_build_time_and_device(run_dir, capsys):
    assert main(["index", str(run_dir), "--device", "cpu", "--knn-backend", "faiss"]) == 0
    line = capsys.readouterr().out
    assert "recall@10 vs exact 1.0000" in line
    meta = json.loads((run_dir / "index" / "flat-cosine.json").read_text())
    assert meta["recall"] == {"recall@10": 1.0}  # measured for a flat index too
    assert meta["recall_queries"] == 90
    assert meta["recall_exact"] == {"backend": "faiss", "device": "cpu"}
    assert meta["backend"] == "faiss" and meta["device"] == "cpu"
    assert meta["build_seconds"] >= 0 and meta["recall_seconds"] >= 0
