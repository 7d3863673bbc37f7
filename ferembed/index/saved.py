"""Which index saved next to a run answers its neighbour queries (the dashboard's search).

A saved index is used only when it describes the run as it is now: same size, dimension and
distance, and written after the run's embeddings (an index older than a rewritten run is
ignored). The exact flat index comes first (its neighbours are the engine's, ties included);
otherwise the approximate one with the highest recall measured by ``ferembed index``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ferembed._arrays import prepare_embeddings
from ferembed._search import KNN, compute_knn, resolve_engine
from ferembed.index.faiss_index import (
    EmbeddingIndex,
    IndexSpec,
    index_dir,
    list_indexes,
    load_index,
)


def find_index(
    run_dir: str | os.PathLike,
    *,
    distance: str,
    n: int,
    dim: int,
    written_after_ns: int | None = None,
) -> tuple[str, IndexSpec] | None:
    """The saved index to search a run with, as ``(name, spec)``, or None.

    Args:
        run_dir: the run directory.
        distance: the run's distance (the index must use the same).
        n: the run's number of embeddings.
        dim: their dimension.
        written_after_ns: the time (``st_mtime_ns``) the run's embeddings were written; an
            index described by an older sidecar is stale and skipped.
    """
    usable = []
    for name in list_indexes(run_dir):
        path = index_dir(run_dir) / f"{name}.json"
        try:
            spec = IndexSpec.from_json(json.loads(path.read_text()))
            stale = written_after_ns is not None and path.stat().st_mtime_ns < written_after_ns
        except (OSError, ValueError, TypeError):  # unreadable or foreign sidecar: not ours
            continue
        if stale or (spec.distance, spec.n, spec.dim) != (distance, n, dim):
            continue
        recall = max(spec.recall.values(), default=0.0)
        usable.append((spec.kind != "flat", -recall, name, spec))
    if not usable:
        return None
    _, _, name, spec = min(usable, key=lambda item: item[:3])
    return name, spec


def describe_index(name: str, spec: IndexSpec) -> str:
    """One line for a reader: ``"saved index hnsw-cosine (approximate, recall@10 0.973)"``."""
    if spec.kind == "flat":
        return f"saved index {name} (exact)"
    measured = ", ".join(f"{key} {value:.3f}" for key, value in spec.recall.items())
    return f"saved index {name} (approximate, {measured or 'recall not measured'})"


@dataclass
class NeighbourSearch:
    """Leave-one-out neighbour queries over one run's embeddings: through its saved index when
    it has one (:func:`find_index`), else through the exact engine
    (:func:`~ferembed._search.compute_knn`). A flat index and the engine give the same
    neighbours, ties included.

    Attributes:
        embeddings: (N, D) the run's embeddings as stored.
        distance: ``"cosine"`` or ``"euclidean"``.
        index: the saved index, or None.
        name: its name, or None.
    """

    embeddings: np.ndarray
    distance: str
    index: EmbeddingIndex | None = None
    name: str | None = None
    _rows: np.ndarray | None = field(default=None, repr=False)  # prepared once for the engine

    def describe(self) -> str:
        """What answers the queries, in words (an approximate index with its measured recall)."""
        if self.index is not None:
            return describe_index(self.name, self.index.spec)
        engine = resolve_engine()
        return f"exact search ({engine.backend} on the {engine.device})"

    def search(self, rows: np.ndarray, k: int) -> KNN:
        """The ``k`` nearest other samples of each of ``rows`` ((Q,) int), in blocks."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.index is None:
            if self._rows is None:
                x = np.asarray(self.embeddings, dtype=np.float32)
                self._rows = prepare_embeddings(x, self.distance)
            return compute_knn(self._rows, k, distance=self.distance, queries=rows)
        parts = [
            self.index.search(np.asarray(self.embeddings[ids]), k, query_ids=ids)
            for ids in np.array_split(rows, max(1, -(-rows.size // 4096)))
        ]
        return KNN(
            indices=np.concatenate([p.indices for p in parts]),
            distances=np.concatenate([p.distances for p in parts]),
            queries=rows,
            distance=self.distance,
            backend=parts[0].backend,
            device=parts[0].device,
        )


def open_neighbour_search(
    run_dir: str | os.PathLike,
    embeddings: np.ndarray,
    *,
    distance: str,
    written_after_ns: int | None = None,
) -> NeighbourSearch:
    """A :class:`NeighbourSearch` over a run: its saved index (loaded here) when one is usable
    (:func:`find_index`), else the engine."""
    n, dim = embeddings.shape
    found = find_index(run_dir, distance=distance, n=n, dim=dim, written_after_ns=written_after_ns)
    if found is None:
        return NeighbourSearch(embeddings, distance)
    return NeighbourSearch(embeddings, distance, load_index(run_dir, found[0]), found[0])
