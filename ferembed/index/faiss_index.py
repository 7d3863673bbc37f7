"""FAISS indexes over a run's embeddings: exact (flat), IVF and HNSW; build, search, save, load.

* ``"flat"``: exact search. Cosine is the inner product of L2-normalised vectors
  (``IndexFlatIP``), euclidean is ``IndexFlatL2``.
* ``"ivf"``: inverted file (``IVF{nlist},Flat``): k-means partitions the vectors into ``nlist``
  lists and a query scans the ``nprobe`` nearest lists. Approximate.
* ``"hnsw"``: hierarchical navigable small-world graph (``HNSW{m},Flat``); ``ef_search`` trades
  speed for recall. Approximate, CPU only.

How good an approximate index is, is measured, not assumed: :func:`index_recall` compares its
neighbours with the exact ones and the value can be stored with the index.

An index lives next to a run in ``RUN_DIR/index/NAME.faiss`` with a small ``NAME.json``
describing it (schema ``ferembed.index/1``: kind, distance, parameters, size, measured recall).
Both are written atomically. When FAISS sees a GPU (``faiss.get_num_gpus() > 0``, a faiss-gpu
build), flat and IVF indexes are moved to it; they are always saved from a CPU copy.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ferembed import _io
from ferembed._arrays import check_distance, check_embeddings, l2_normalize
from ferembed._search import KNN, compute_knn
from ferembed._search_backends import exact_topk, index_search
from ferembed._search_engine import FAISS_GPU_MAX_K
from ferembed._search_kernel import numpy_topk
from ferembed._version import __version__
from ferembed.index._runtime import faiss_threads, use_gpu

KINDS = ("flat", "ivf", "hnsw")
SCHEMA = "ferembed.index/1"
INDEX_DIRNAME = "index"


@dataclass
class IndexSpec:
    """What an index is; saved as ``NAME.json`` beside ``NAME.faiss``."""

    kind: str  # "flat" (exact), "ivf" or "hnsw" (approximate)
    distance: str  # "cosine" (inner product on L2-normalised vectors) or "euclidean"
    dim: int  # embedding dimension D
    n: int = 0  # vectors in the index (N)
    nlist: int | None = None  # IVF: number of inverted lists
    nprobe: int | None = None  # IVF: lists scanned per query
    m: int | None = None  # HNSW: graph neighbours per node
    ef_construction: int | None = None  # HNSW: candidate list size while building
    ef_search: int | None = None  # HNSW: candidate list size while searching
    seed: int = 0  # IVF k-means seed
    build_seconds: float | None = None  # wall time of build_index
    backend: str = "faiss"  # what builds and searches it
    device: str = "cpu"  # where it was built: "cpu" or "cuda" (it is saved from a CPU copy)
    recall: dict[str, float] = field(default_factory=dict)  # {"recall@k": value} vs exact
    recall_queries: int | None = None  # query rows the recall was measured on
    recall_seconds: float | None = None  # wall time of that measurement (exact search included)
    recall_exact: dict[str, str] | None = None  # {"backend", "device"} of the exact search

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> IndexSpec:
        if obj.get("schema") != SCHEMA:
            raise ValueError(f"index schema is {obj.get('schema')!r}, expected {SCHEMA!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


@dataclass
class EmbeddingIndex:
    """A FAISS index with the description needed to search it correctly.

    Attributes:
        index: the FAISS index (on the GPU when ``on_gpu``).
        spec: its :class:`IndexSpec`.
        on_gpu: whether ``index`` lives on a GPU.
    """

    index: Any
    spec: IndexSpec
    on_gpu: bool = False

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def set_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall knob of an approximate index (IVF ``nprobe``, HNSW
        ``ef_search``)."""
        if nprobe is not None:
            if self.spec.kind != "ivf":
                raise ValueError(f"nprobe applies to ivf indexes, this one is {self.spec.kind!r}")
            _ivf(self.index).nprobe = int(nprobe)
            self.spec.nprobe = int(nprobe)
        if ef_search is not None:
            if self.spec.kind != "hnsw":
                raise ValueError(
                    f"ef_search applies to hnsw indexes, this one is {self.spec.kind!r}"
                )
            self.index.hnsw.efSearch = int(ef_search)
            self.spec.ef_search = int(ef_search)

    def search(self, queries: np.ndarray, k: int, *, query_ids: np.ndarray | None = None) -> KNN:
        """The k nearest indexed vectors of each query.

        Args:
            queries: (Q, D) embeddings (normalised here for cosine).
            k: neighbours per query.
            query_ids: (Q,) index row of each query when the queries are themselves indexed:
                that row is removed from its own results (leave-one-out), or None.

        Returns:
            :class:`~ferembed._search.KNN`: (Q, k) indices (``-1`` where an approximate
            index found fewer than k) and distances (cosine distance or L2; ``inf`` for ``-1``).
        """
        q, _ = check_embeddings(queries, name="queries")
        if q.shape[1] != self.spec.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, index has {self.spec.dim}")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if self.spec.distance == "cosine":
            q = l2_normalize(q)
        ids = None
        if query_ids is not None:
            ids = np.asarray(query_ids, dtype=np.int64)
            if ids.shape != (q.shape[0],):
                raise ValueError(f"query_ids must have shape ({q.shape[0]},), got {ids.shape}")
        if self.spec.kind == "flat":
            idx, scores = self._search_flat(q, min(k, self.ntotal - (ids is not None)), ids)
        else:
            kk = min(k + (ids is not None), self.ntotal)
            with faiss_threads(2.0 * q.shape[0] * self.ntotal * self.spec.dim):
                scores, idx = self.index.search(q, kk)
            if ids is not None:
                idx, scores = _drop_self(idx, scores, ids)
            if self.spec.distance == "euclidean":
                scores = -scores
        if idx.shape[1] < k:  # fewer vectors than k: pad like FAISS does
            pad = k - idx.shape[1]
            idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=np.nan)
        idx = idx[:, :k].astype(np.int64, copy=False)
        if self.spec.distance == "cosine":
            dist = 1.0 - scores[:, :k]
        else:
            dist = np.sqrt(np.maximum(-scores[:, :k], 0.0))
        dist = np.where(idx < 0, np.inf, dist).astype(np.float32)
        return KNN(
            indices=idx,
            distances=dist,
            queries=np.arange(q.shape[0], dtype=np.int64) if ids is None else ids,
            distance=self.spec.distance,
            exclude_self=ids is not None,
            backend="faiss",
            device="cuda" if self.on_gpu else "cpu",
        )

    def _search_flat(self, q: np.ndarray, k: int, ids: np.ndarray | None):
        """Exact search with the engine's tie rule (score desc, row asc; ``ferembed._search``):
        a flat index gives the same neighbours as :func:`~ferembed._search.compute_knn`."""
        if k < 1:
            return np.empty((q.shape[0], 0), np.int64), np.empty((q.shape[0], 0), np.float32)

        def fallback(qq: np.ndarray, own: np.ndarray | None):
            cpu = faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index
            ref = cpu.reconstruct_n(0, self.ntotal)
            return numpy_topk(qq, ref, k, distance=self.spec.distance, self_rows=own)

        return exact_topk(
            index_search(self.index, self.spec.distance, cpu_threads=not self.on_gpu),
            q,
            k,
            n_ref=self.ntotal,
            self_rows=ids,
            max_k=FAISS_GPU_MAX_K if self.on_gpu else None,
            fallback=fallback,
        )


def _drop_self(idx: np.ndarray, scores: np.ndarray, ids: np.ndarray):
    """Remove each row's own id; rows that do not contain it lose their last column."""
    is_self = idx == ids[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    # The first True per row only (an id appears at most once per row anyway).
    keep = ~is_self
    b, kk = idx.shape
    return idx[keep].reshape(b, kk - 1), scores[keep].reshape(b, kk - 1)


def _ivf(index):
    """The IVF part of an index (works for CPU and GPU IVF indexes)."""
    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return index


def build_index(
    x: np.ndarray,
    *,
    kind: str = "flat",
    distance: str = "cosine",
    nlist: int | None = None,
    nprobe: int | None = None,
    m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 64,
    seed: int = 0,
    gpu: bool | None = None,
) -> EmbeddingIndex:
    """Build a FAISS index over the rows of ``x``.

    Args:
        x: (N, D) embeddings; rows are L2-normalised for cosine.
        kind: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"``.
        distance: ``"cosine"`` or ``"euclidean"``.
        nlist: IVF lists; None: ``4 * sqrt(N)`` capped so that each list gets >= 39 training rows.
        nprobe: IVF lists scanned per query; None: ``min(nlist, 16)``.
        m: HNSW neighbours per node.
        ef_construction: HNSW build-time candidate list size.
        ef_search: HNSW search-time candidate list size.
        seed: IVF k-means seed.
        gpu: put flat/IVF indexes on the GPU (None: when FAISS sees one). HNSW is CPU-only.

    Returns:
        :class:`EmbeddingIndex`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    check_distance(distance)
    x, _ = check_embeddings(x)
    n, d = x.shape
    xs = l2_normalize(x) if distance == "cosine" else x
    metric = faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2
    t0 = time.perf_counter()
    spec = IndexSpec(kind=kind, distance=distance, dim=d, seed=int(seed))
    if kind == "flat":
        index = faiss.index_factory(d, "Flat", metric)
    elif kind == "ivf":
        nlist = _default_nlist(n) if nlist is None else int(nlist)
        if not 1 <= nlist <= n:
            raise ValueError(f"nlist must be in [1, {n}], got {nlist}")
        nprobe = min(nlist, 16) if nprobe is None else int(nprobe)
        if not 1 <= nprobe <= nlist:
            raise ValueError(f"nprobe must be in [1, nlist={nlist}], got {nprobe}")
        index = faiss.index_factory(d, f"IVF{nlist},Flat", metric)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = int(seed)
        ivf.cp.min_points_per_centroid = 1
        with faiss_threads(2.0 * 20 * min(n, 256 * nlist) * nlist * d):
            index.train(xs)
        ivf.nprobe = nprobe
        spec.nlist, spec.nprobe = nlist, nprobe
    else:
        if m < 2 or ef_construction < 1 or ef_search < 1:
            raise ValueError(
                f"need m >= 2, ef_construction >= 1, ef_search >= 1; got {m}, {ef_construction}, "
                f"{ef_search}"
            )
        index = faiss.index_factory(d, f"HNSW{int(m)},Flat", metric)
        index.hnsw.efConstruction = int(ef_construction)
        index.hnsw.efSearch = int(ef_search)
        spec.m, spec.ef_construction, spec.ef_search = int(m), int(ef_construction), int(ef_search)
    on_gpu = kind != "hnsw" and use_gpu(gpu)
    if on_gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    with faiss_threads(2.0 * n * d * (spec.nlist or 1) * (50 if kind == "hnsw" else 1)):
        index.add(xs)
    spec.n = int(index.ntotal)
    spec.build_seconds = round(time.perf_counter() - t0, 4)
    spec.device = "cuda" if on_gpu else "cpu"
    return EmbeddingIndex(index=index, spec=spec, on_gpu=on_gpu)


def _default_nlist(n: int) -> int:
    return int(max(1, min(round(4 * np.sqrt(n)), n // 39)))


def index_recall(
    index: EmbeddingIndex,
    x: np.ndarray,
    *,
    k: int = 10,
    queries: np.ndarray | int | None = 1000,
    exact: KNN | None = None,
    exclude_self: bool = True,
    seed: int = 0,
) -> float:
    """recall@k of an index against exact search: mean over queries of |approx top-k ∩ exact
    top-k| / k.

    Args:
        index: the index to assess, built over ``x``.
        x: (N, D) the indexed embeddings (queries are drawn from them).
        k: neighbours compared.
        queries: rows of ``x`` to query: an array of row indices, an int (that many rows drawn
            at random with ``seed``; all rows if >= N) or None (all rows).
        exact: the exact neighbours of those queries, if already computed (must have
            ``exact.queries`` equal to the query rows), else computed here.
        exclude_self: leave each query's own row out of both result lists.
        seed: RNG seed for drawing query rows.

    Returns:
        recall@k in [0, 1] (1.0 for an exact index, up to ties at the k-th distance).
    """
    x, _ = check_embeddings(x)
    n = x.shape[0]
    if n != index.ntotal:
        raise ValueError(f"x has {n} rows, the index holds {index.ntotal}")
    if queries is None or (isinstance(queries, (int, np.integer)) and queries >= n):
        qidx = np.arange(n, dtype=np.int64)
    elif isinstance(queries, (int, np.integer)):
        if queries < 1:
            raise ValueError(f"queries must be >= 1, got {queries}")
        qidx = np.sort(np.random.default_rng(seed).choice(n, int(queries), replace=False))
    else:
        qidx = np.asarray(queries, dtype=np.int64)
    if exact is None:
        exact = compute_knn(
            x, k, distance=index.spec.distance, queries=qidx, exclude_self=exclude_self
        )
    elif not np.array_equal(exact.queries, qidx) or exact.k < k:
        raise ValueError("exact must hold at least k neighbours of exactly the query rows")
    approx = index.search(x[qidx], k, query_ids=qidx if exclude_self else None)
    a, e = approx.indices, exact.indices[:, :k]
    hits = 0
    for start in range(0, a.shape[0], 8192):  # (rows, k, k) comparisons, bounded
        ab, eb = a[start : start + 8192], e[start : start + 8192]
        hits += int(((ab[:, :, None] == eb[:, None, :]) & (ab[:, :, None] >= 0)).any(2).sum())
    return hits / (a.shape[0] * k)


def record_recall(
    index: EmbeddingIndex,
    x: np.ndarray,
    *,
    k: int = 10,
    queries: int = 1000,
    seed: int = 0,
    device: str | None = None,
    backend: str | None = None,
) -> float:
    """Measure the index's recall@k against the exact engine and store it in its spec.

    Flat indexes are measured too (1.0 up to float ties between two backends' scores): the
    sidecar then says what was measured, never what was assumed. Sets ``spec.recall
    ["recall@k"]``, ``recall_queries``, ``recall_seconds`` and ``recall_exact`` (the backend and
    device of the exact search, :func:`~ferembed._search.compute_knn` with ``device`` /
    ``backend``).

    Args:
        index: the index, built over ``x``.
        x: (N, D) the indexed embeddings.
        k: neighbours compared (reduced to N - 1 for tiny runs).
        queries: rows drawn at random (with ``seed``) as queries; all rows if >= N.
        seed: RNG seed.
        device, backend: the exact search's engine (None: the engine's default).

    Returns:
        recall@k.
    """
    x, _ = check_embeddings(x)
    n = x.shape[0]
    k = min(int(k), n - 1)
    if k < 1:
        raise ValueError("recall needs at least 2 indexed vectors")
    t0 = time.perf_counter()
    qidx = (
        np.arange(n, dtype=np.int64)
        if queries >= n
        else np.sort(np.random.default_rng(seed).choice(n, int(queries), replace=False))
    )
    exact = compute_knn(
        x, k, distance=index.spec.distance, queries=qidx, device=device, backend=backend
    )
    value = index_recall(index, x, k=k, queries=qidx, exact=exact)
    spec = index.spec
    spec.recall[f"recall@{k}"] = round(float(value), 6)
    spec.recall_queries = int(qidx.size)
    spec.recall_seconds = round(time.perf_counter() - t0, 4)
    spec.recall_exact = {"backend": exact.backend, "device": exact.device}
    return value


# ---------------------------------------------------------------------------------------------
# Persistence next to a run: RUN_DIR/index/NAME.faiss + NAME.json
# ---------------------------------------------------------------------------------------------


def index_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN_DIR/index``."""
    return Path(run_dir) / INDEX_DIRNAME


def default_index_name(spec: IndexSpec) -> str:
    """``"{kind}-{distance}"``, e.g. ``"flat-cosine"``."""
    return f"{spec.kind}-{spec.distance}"


def save_index(
    index: EmbeddingIndex, run_dir: str | os.PathLike, *, name: str | None = None
) -> Path:
    """Write ``RUN_DIR/index/NAME.faiss`` and ``NAME.json`` atomically; return the .faiss path.

    The .faiss file is written first and the .json last, so a JSON file always describes a
    complete index.
    """
    name = name or default_index_name(index.spec)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid index name {name!r}")
    folder = index_dir(run_dir)
    cpu = faiss.index_gpu_to_cpu(index.index) if index.on_gpu else index.index
    fpath = folder / f"{name}.faiss"
    with _io.atomic_path(fpath) as tmp:
        faiss.write_index(cpu, str(tmp))
    meta = index.spec.to_json() | {
        "name": name,
        "file": fpath.name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ferembed_version": __version__,
    }
    _io.write_json(folder / f"{name}.json", meta)
    return fpath


def load_index(
    run_dir: str | os.PathLike, name: str = "flat-cosine", *, gpu: bool | None = None
) -> EmbeddingIndex:
    """Load ``RUN_DIR/index/NAME.faiss`` as described by ``NAME.json``.

    Raises:
        FileNotFoundError: no such index (the message lists the ones present).
        ValueError: the JSON and the FAISS file disagree (dimension, size, metric).
    """
    folder = index_dir(run_dir)
    jpath = folder / f"{name}.json"
    if not jpath.is_file():
        have = list_indexes(run_dir)
        raise FileNotFoundError(f"{jpath}: no index {name!r} (present: {have or 'none'})")
    meta = json.loads(jpath.read_text())
    spec = IndexSpec.from_json(meta)
    fpath = folder / meta.get("file", f"{name}.faiss")
    if not fpath.is_file():
        raise FileNotFoundError(f"{fpath}: missing (described by {jpath.name})")
    index = faiss.read_index(str(fpath))
    metric = faiss.METRIC_INNER_PRODUCT if spec.distance == "cosine" else faiss.METRIC_L2
    if index.d != spec.dim or index.ntotal != spec.n or index.metric_type != metric:
        raise ValueError(
            f"{fpath}: index has d={index.d}, n={index.ntotal}, metric={index.metric_type}; "
            f"{jpath.name} says d={spec.dim}, n={spec.n}, distance={spec.distance}"
        )
    on_gpu = spec.kind != "hnsw" and use_gpu(gpu)
    if on_gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    return EmbeddingIndex(index=index, spec=spec, on_gpu=on_gpu)


def list_indexes(run_dir: str | os.PathLike) -> list[str]:
    """Names of the indexes saved next to a run (sorted)."""
    folder = index_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))
