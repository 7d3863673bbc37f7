"""The kNN engine: every backend available here (numpy, faiss-cpu, torch-cpu) gives the same
neighbours, ties included; the GPU's FAISS path is exercised on a CPU index; the device choice."""

from __future__ import annotations

import importlib.util

import faiss
import numpy as np
import pytest

import ferembed._search_engine as engine_mod
from ferembed._search import compute_knn, resolve_engine, search_engine
from ferembed._search_backends import (
    FAISS_GPU_MAX_K,
    TIE_MARGIN,
    exact_topk,
    index_search,
    order_candidates,
)
from ferembed._search_kernel import numpy_topk
from ferembed.errors import ConfigError

BACKENDS = ["numpy", "faiss"] + (["torch"] if importlib.util.find_spec("torch") else [])


@pytest.fixture(scope="module")
def tied() -> np.ndarray:
    """(300, 32) unit rows with 16 entries of +-0.25 (the rest 0): every product is a multiple
    of 1/16, exact in float32 whatever the summation order, so scores tie a lot and exactly.
    Rows 40..49 are copies of row 30 (duplicates)."""
    rng = np.random.default_rng(0)
    x = np.zeros((300, 32), np.float32)
    for i in range(300):
        x[i, rng.choice(32, 16, replace=False)] = rng.choice([-0.25, 0.25], 16)
    x[40:50] = x[30]
    return x


def reference_knn(q, ref, k, *, distance, self_rows=None):
    """Brute force in float64 (exact on the tied data): (score desc, row asc), own row dropped."""
    q, ref = q.astype(np.float64), ref.astype(np.float64)
    if distance == "cosine":
        s = q @ ref.T
    else:
        s = -((q[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    if self_rows is not None:
        s[np.arange(len(q)), self_rows] = -np.inf
    cols = np.broadcast_to(np.arange(ref.shape[0]), s.shape)
    order = np.lexsort((cols, -s), axis=1)[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 7, 60])
def test_backends_break_ties_by_row_leave_one_out(tied, backend, distance, k):
    knn = compute_knn(tied, k, distance=distance, backend=backend, device="cpu")
    want, s = reference_knn(tied, tied, k, distance=distance, self_rows=np.arange(len(tied)))
    np.testing.assert_array_equal(knn.indices, want)
    dist = 1 - s if distance == "cosine" else np.sqrt(-s)
    np.testing.assert_allclose(knn.distances, dist, atol=1e-6)
    assert (knn.backend, knn.device) == (backend, "cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_of_the_query_stay_neighbours(tied, backend):
    """exclude_self drops the query's own row by index, never its exact copies."""
    knn = compute_knn(tied, 9, backend=backend, device="cpu", queries=np.array([30, 45]))
    np.testing.assert_array_equal(knn.indices[0], np.arange(40, 49))
    np.testing.assert_array_equal(knn.indices[1], [30, *range(40, 45), 46, 47, 48])
    np.testing.assert_allclose(knn.distances, 0.0, atol=1e-6)
    # without exclusion the query's own row is its first neighbour (lowest row among equals)
    own = compute_knn(tied, 3, backend=backend, device="cpu", exclude_self=False)
    np.testing.assert_array_equal(own.indices[45], [30, 40, 41])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_backends_agree_with_a_reference_set_and_query_subset(tied, backend, distance):
    rows = np.array([3, 30, 44, 299])
    knn = compute_knn(
        tied[:100], 25, distance=distance, reference=tied[100:], backend=backend, device="cpu"
    )
    want, _ = reference_knn(tied[:100], tied[100:], 25, distance=distance)
    np.testing.assert_array_equal(knn.indices, want)
    sub = compute_knn(tied, 12, distance=distance, queries=rows, backend=backend, device="cpu")
    want, _ = reference_knn(tied[rows], tied, 12, distance=distance, self_rows=rows)
    np.testing.assert_array_equal(sub.indices, want)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_backends_agree_on_continuous_data(distance):
    x = np.random.default_rng(1).standard_normal((2000, 24)).astype(np.float32)
    base = compute_knn(x, 10, distance=distance, backend="numpy")
    for backend in BACKENDS[1:]:
        knn = compute_knn(x, 10, distance=distance, backend=backend, device="cpu")
        assert (knn.indices == base.indices).all(axis=1).mean() >= 0.995
        np.testing.assert_allclose(knn.distances, base.distances, atol=1e-5)


def test_order_candidates_resorts_ties_and_flags_a_tie_across_the_cut():
    # FAISS returns equal scores highest row first; the engine wants lowest row first.
    idx = np.array([[9, 7, 5, 3, 1], [4, 2, 8, 6, 0]])
    scores = np.array([[1.0, 0.5, 0.5, 0.5, 0.25], [0.875, 0.75, 0.625, 0.625, 0.625]], np.float32)
    top, s, unsure = order_candidates(idx, scores, 3)
    np.testing.assert_array_equal(top, [[9, 3, 5], [4, 2, 0]])
    np.testing.assert_array_equal(s[:, -1], [0.5, 0.625])
    # row 0: its 3rd score (0.5) is above the lowest fetched (0.25): nothing unseen can tie.
    # row 1: the 3rd score equals the lowest fetched: an unseen row could tie and come first.
    np.testing.assert_array_equal(unsure, [False, True])
    assert not order_candidates(idx, scores, 3, complete=True)[2].any()
    top, _, _ = order_candidates(idx, scores, 3, self_rows=np.array([9, 2]))
    np.testing.assert_array_equal(top, [[3, 5, 7], [4, 0, 6]])


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("max_k", [FAISS_GPU_MAX_K, 8 + TIE_MARGIN + 1])
def test_gpu_flat_index_path_on_a_cpu_index(tied, distance, max_k):
    """The GPU backend's search (a flat index through ``index_search``, at most
    ``FAISS_GPU_MAX_K`` candidates, then the fallback) run on a CPU index. With the small
    ``max_k`` the rows whose ties run past the fetched candidates take the fallback."""
    index = faiss.IndexFlatIP(32) if distance == "cosine" else faiss.IndexFlatL2(32)
    index.add(tied)
    used = []

    def fallback(q, own):
        used.append(len(q))
        return numpy_topk(q, tied, 8, distance=distance, self_rows=own)

    rows = np.arange(len(tied))
    got, _ = exact_topk(
        index_search(index, distance),
        tied,
        8,
        n_ref=len(tied),
        self_rows=rows,
        max_k=max_k,
        fallback=fallback,
    )
    want, _ = reference_knn(tied, tied, 8, distance=distance, self_rows=rows)
    np.testing.assert_array_equal(got, want)
    assert bool(used) == (max_k < FAISS_GPU_MAX_K)  # the tied data has ties wider than 25


def test_raw_faiss_order_differs_from_the_rule(tied):
    """Why the re-sort exists: FAISS alone puts tied rows in another order on this data."""
    index = faiss.IndexFlatIP(32)
    index.add(tied)
    _, raw = index.search(tied, 9)
    want, _ = reference_knn(tied, tied, 9, distance="cosine")
    assert not np.array_equal(raw, want)


def test_saved_flat_index_search_equals_the_engine(tied):
    from ferembed.index import build_index

    index = build_index(tied, kind="flat", distance="cosine", gpu=False)
    rows = np.arange(len(tied))
    got = index.search(tied, 11, query_ids=rows)
    want = compute_knn(tied, 11, backend="numpy")
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.distances, want.distances, atol=1e-6)


# ------------------------------------------------------------------------------ engine choice
@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(engine_mod, "faiss_gpu_count", lambda: 0)
    monkeypatch.setattr(engine_mod, "torch_cuda_available", lambda: False)


def test_auto_takes_the_cpu_default_without_a_gpu(no_gpu):
    small, large = engine_mod.CPU_FAISS_MAX_K, engine_mod.CPU_FAISS_MAX_K + 1
    assert resolve_engine("auto", "auto", k=small) == engine_mod.SearchEngine("faiss", "cpu")
    assert resolve_engine("auto", "auto", k=large) == engine_mod.SearchEngine("numpy", "cpu")
    assert resolve_engine("auto", "torch").device == "cpu"
    assert resolve_engine("cpu", "faiss") == engine_mod.SearchEngine("faiss", "cpu")


def test_auto_prefers_faiss_gpu_then_cuda_torch(monkeypatch):
    monkeypatch.setattr(engine_mod, "faiss_gpu_count", lambda: 0)
    monkeypatch.setattr(engine_mod, "torch_installed", lambda: True)
    monkeypatch.setattr(engine_mod, "torch_cuda_available", lambda: True)
    assert resolve_engine("auto", "auto") == engine_mod.SearchEngine("torch", "cuda")
    assert resolve_engine("cuda", "auto") == engine_mod.SearchEngine("torch", "cuda")
    assert resolve_engine("auto", "faiss") == engine_mod.SearchEngine("faiss", "cpu")
    monkeypatch.setattr(engine_mod, "faiss_gpu_count", lambda: 1)
    assert resolve_engine("auto", "auto") == engine_mod.SearchEngine("faiss", "cuda")


@pytest.mark.parametrize(
    ("device", "backend", "message"),
    [
        ("cuda", "auto", "no GPU is usable"),
        ("cuda", "faiss", "faiss-gpu"),
        ("cuda", "numpy", "CPU only"),
        ("gpu", "auto", "device must be one of"),
        ("cpu", "annoy", "kNN backend must be one of"),
    ],
)
def test_impossible_choices_are_one_line_errors(no_gpu, device, backend, message):
    with pytest.raises(ConfigError, match=message) as err:
        resolve_engine(device, backend)
    assert "\n" not in str(err.value)


def test_search_engine_sets_the_default_of_a_block(no_gpu):
    x = np.random.default_rng(2).standard_normal((50, 4)).astype(np.float32)
    with search_engine("cpu", "faiss"):
        assert compute_knn(x, 3).backend == "faiss"
        assert compute_knn(x, 3, backend="numpy").backend == "numpy"  # explicit wins
    assert compute_knn(x, 3).backend == engine_mod.cpu_backend(3) == "faiss"
    with pytest.raises(ConfigError):
        with search_engine("cuda"):
            compute_knn(x, 3)


@pytest.mark.skipif("torch" not in BACKENDS, reason="torch not installed")
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_torch_score_blocks_equal_the_numpy_ones(tied, distance):
    """The fused R-precision / MAP@R pass gets the same rows of scores from torch (here on the
    CPU, with the host threads the GPU path uses) as from numpy, own rows masked."""
    from ferembed._search import map_score_blocks
    from ferembed._search_backends import torch_score_blocks
    from ferembed._search_kernel import spans_of

    rows = np.arange(len(tied))
    got = {}
    for name in ("numpy", "torch"):
        out = np.empty((len(tied), len(tied)), np.float32)

        def keep(start, stop, s, work, out=out):
            out[start:stop] = s

        if name == "numpy":
            engine = map_score_blocks(
                keep,
                tied,
                tied,
                spans_of(len(tied), 64),
                distance=distance,
                self_rows=rows,
                backend="numpy",
            )
            assert engine.backend == "numpy"
        else:
            torch_score_blocks(
                keep,
                tied,
                tied,
                spans_of(len(tied), 64),
                distance=distance,
                self_rows=rows,
                workers=2,
            )
        got[name] = out
    np.testing.assert_array_equal(got["torch"], got["numpy"])
    assert np.isneginf(np.diag(got["torch"])).all()


def test_a_k_beyond_what_the_backend_can_fetch_goes_to_the_fallback(tied):
    index = faiss.IndexFlatIP(32)
    index.add(tied)
    rows = np.arange(len(tied))

    def fallback(q, own):
        return numpy_topk(q, tied, 40, distance="cosine", self_rows=own)

    got, _ = exact_topk(
        index_search(index, "cosine"),
        tied,
        40,
        n_ref=300,
        self_rows=rows,
        max_k=32,
        fallback=fallback,
    )
    want, _ = reference_knn(tied, tied, 40, distance="cosine", self_rows=rows)
    np.testing.assert_array_equal(got, want)


def test_auto_leaves_a_k_too_large_for_faiss_gpu_to_torch(monkeypatch):
    monkeypatch.setattr(engine_mod, "faiss_gpu_count", lambda: 1)
    monkeypatch.setattr(engine_mod, "torch_installed", lambda: True)
    monkeypatch.setattr(engine_mod, "torch_cuda_available", lambda: True)
    assert resolve_engine("cuda", "auto", k=10).backend == "faiss"
    assert resolve_engine("cuda", "auto", k=engine_mod.FAISS_GPU_MAX_K).backend == "torch"
