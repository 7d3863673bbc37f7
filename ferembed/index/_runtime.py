"""FAISS runtime choices shared by the index and k-means modules: GPU or not, how many threads.

The thread rule (:func:`faiss_threads`) is the search engine's (``ferembed._search_engine``),
which runs FAISS too and sits below this package.
"""

from __future__ import annotations

from ferembed._search_engine import SMALL_WORK, faiss_gpu_count, faiss_threads

__all__ = ["SMALL_WORK", "faiss_threads", "use_gpu"]


def use_gpu(gpu: bool | None = None) -> bool:
    """Whether to put FAISS work on the GPU.

    Args:
        gpu: None: when this FAISS build sees a GPU. True: require one. False: never.

    Raises:
        ValueError: ``gpu=True`` but FAISS sees no GPU.
    """
    n = faiss_gpu_count()
    if gpu is None:
        return n > 0
    if gpu and n == 0:
        raise ValueError("gpu=True but FAISS sees no GPU (is faiss-gpu installed?)")
    return bool(gpu)
