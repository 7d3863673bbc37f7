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

__all__ = [
    "KINDS",
    "EmbeddingIndex",
    "IndexSpec",
    "KMeansResult",
    "build_index",
    "default_index_name",
    "index_dir",
    "index_recall",
    "kmeans",
    "list_indexes",
    "load_index",
    "record_recall",
    "save_index",
    "use_gpu",
]
