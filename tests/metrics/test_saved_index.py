"""The saved index that answers a run's neighbour queries (the dashboard's search)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ferembed._search import compute_knn
from ferembed.index import (
    build_index,
    describe_index,
    find_index,
    open_neighbour_search,
    record_recall,
    save_index,
)


@pytest.fixture(scope="module")
def tied() -> np.ndarray:
    """(400, 32) unit rows, 16 entries of +-0.25: exact products, many exact ties (so the flat
    index and the engine agree to the bit); rows 10..19 copy row 5."""
    rng = np.random.default_rng(4)
    x = np.zeros((400, 32), np.float32)
    for i in range(400):
        x[i, rng.choice(32, 16, replace=False)] = rng.choice([-0.25, 0.25], 16)
    x[10:20] = x[5]
    return x


def test_flat_index_answers_exactly_as_the_engine(tied, tmp_path):
    save_index(build_index(tied, kind="flat", gpu=False), tmp_path)
    search = open_neighbour_search(tmp_path, tied, distance="cosine")
    assert search.name == "flat-cosine"
    assert search.describe() == "saved index flat-cosine (exact)"
    got = search.search(np.arange(len(tied)), 12)
    want = compute_knn(tied, 12, distance="cosine", backend="numpy")
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.distances, want.distances, atol=1e-6)


def test_without_an_index_the_engine_answers(tied, tmp_path):
    search = open_neighbour_search(tmp_path, tied, distance="euclidean")
    assert search.index is None and search.describe().startswith("exact search (")
    got = search.search(np.array([5, 399]), 4)
    want = compute_knn(tied, 4, distance="euclidean", queries=np.array([5, 399]))
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.indices[0], [10, 11, 12, 13])  # duplicates, lowest rows


def test_flat_first_then_best_recall_and_stale_or_foreign_indexes_skipped(tied, tmp_path):
    hnsw = build_index(tied, kind="hnsw", m=4, ef_search=8)
    value = record_recall(hnsw, tied, k=10, queries=400)
    save_index(hnsw, tmp_path)
    name, spec = find_index(tmp_path, distance="cosine", n=400, dim=32)
    assert name == "hnsw-cosine" and spec.recall == {"recall@10": round(value, 6)}
    assert (
        describe_index(name, spec)
        == f"saved index hnsw-cosine (approximate, recall@10 {value:.3f})"
    )
    save_index(build_index(tied, kind="flat", gpu=False), tmp_path)
    assert find_index(tmp_path, distance="cosine", n=400, dim=32)[0] == "flat-cosine"
    assert find_index(tmp_path, distance="euclidean", n=400, dim=32) is None
    assert find_index(tmp_path, distance="cosine", n=399, dim=32) is None  # another run's size
    later = time.time_ns() + 10**9  # the run was rewritten after the indexes: they are stale
    assert find_index(tmp_path, distance="cosine", n=400, dim=32, written_after_ns=later) is None
    (tmp_path / "index" / "junk.json").write_text("{not json")
    assert find_index(tmp_path, distance="cosine", n=400, dim=32)[0] == "flat-cosine"
