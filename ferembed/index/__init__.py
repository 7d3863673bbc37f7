"""FAISS indexes over run embeddings (exact, IVF, HNSW; CPU or GPU) and FAISS k-means."""

from ferembed.index.faiss_index import (
    KINDS,
    EmbeddingIndex,
    IndexSpec,
    build_index,
    default_index_name,
    index_dir,
    index_recall,
    list_indexes,
    load_index,
    record_recall,
    save_index,
    use_gpu,
)
from ferembed.index.kmeans import KMeansResult, kmeans
from ferembed.index.saved import (
    NeighbourSearch,
    describe_index,
    find_index,
    open_neighbour_search,
)

__all__ = [
    "KINDS",
    "EmbeddingIndex",
    "IndexSpec",
    "KMeansResult",
    "NeighbourSearch",
    "build_index",
    "default_index_name",
    "describe_index",
    "find_index",
    "index_dir",
    "index_recall",
    "kmeans",
    "list_indexes",
    "load_index",
    "open_neighbour_search",
    "record_recall",
    "save_index",
    "use_gpu",
]
