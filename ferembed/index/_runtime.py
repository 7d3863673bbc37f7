"""FAISS runtime choices shared by the index and k-means modules: GPU or not, how many threads.

A leaf module (it imports nothing from ferembed).
"""

from __future__ import annotations

import contextlib

import faiss


def use_gpu(gpu: bool | None = None) -> bool:
    """Whether to put FAISS work on the GPU.

    Args:
        gpu: None: when this FAISS build sees a GPU. True: require one. False: never.

    Raises:
        ValueError: ``gpu=True`` but FAISS sees no GPU.
    """
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpu is None:
        return n > 0
    if gpu and n == 0:
        raise ValueError("gpu=True but FAISS sees no GPU (is faiss-gpu installed?)")
    return bool(gpu)


#: Below this many flops (about a second of one core) a FAISS call runs on one thread. OpenMP's
#: barriers cost more than they save on small problems, and far more when other processes share
#: the cores: measured on a busy 2-core machine, k-means of 100k x 128 into 7 clusters took 0.5 s
#: on one thread and 5.6 s on two.
SMALL_WORK = 1e10


@contextlib.contextmanager
def faiss_threads(work: float):
    """Run the block single-threaded when ``work`` (flops) is small, else with FAISS's default."""
    if work >= SMALL_WORK:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
