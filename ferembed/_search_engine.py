"""Which backend and device run the exact kNN search: ``numpy``, ``faiss`` or ``torch``, on the
CPU or a CUDA GPU.

``resolve_engine(device, backend)`` turns the user's choice (``"auto"`` or a name) into a
:class:`SearchEngine`, or raises a one-line :class:`~ferembed.errors.ConfigError` when the choice
cannot run here (``"cuda"`` without a GPU, ``torch`` not installed, ``numpy`` on a GPU).
``"auto"`` takes the GPU when one is usable (faiss-gpu first, then CUDA torch) and otherwise the
CPU backend that ``bench/bench_knn.py`` measured fastest for the search's k (:func:`cpu_backend`).

:func:`search_engine` sets the choice that ``device=None`` / ``backend=None`` mean for the
searches in its ``with`` block, so that a command reaches every search of a library call (a
comparison searches both runs) without threading the option through each signature.

A leaf module: it imports faiss and torch only when asked, and detects a GPU without importing
torch on machines that have no NVIDIA driver (torch costs seconds to import).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import sys
from dataclasses import dataclass

from ferembed.errors import ConfigError

#: Search backends, in the order ``"auto"`` prefers them on a GPU (numpy is CPU-only).
BACKENDS = ("faiss", "torch", "numpy")
#: Devices a search can be asked to run on.
DEVICES = ("auto", "cpu", "cuda")
#: The CPU backend of ``"auto"`` is the fastest of numpy, faiss-cpu and torch-cpu in
#: bench/bench_knn.py on a 2-core box (docs/benchmarks.md, "k-NN engine"): FAISS up to this k
#: (about twice numpy's speed at k = 10: its heap beats a partition of every row of scores),
#: numpy above it (three times FAISS's at k = R = 12 500: FAISS's heaps grow with k).
CPU_FAISS_MAX_K = 512

#: The largest k a FAISS flat search on a GPU accepts; ``"auto"`` leaves larger searches to
#: CUDA torch.
FAISS_GPU_MAX_K = 2048

_DEFAULT: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "ferembed_search_engine", default=("auto", "auto")
)


@dataclass(frozen=True)
class SearchEngine:
    """A resolved search backend: what actually runs."""

    backend: str  # "numpy", "faiss" or "torch"
    device: str  # "cpu" or "cuda"

    def to_json(self) -> dict[str, str]:
        return {"backend": self.backend, "device": self.device}


def check_engine_choice(device: str, backend: str) -> None:
    """Raise ConfigError unless ``device`` is in :data:`DEVICES` and ``backend`` is ``"auto"`` or
    in :data:`BACKENDS`."""
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if backend != "auto" and backend not in BACKENDS:
        raise ConfigError(
            f"kNN backend must be one of auto, {', '.join(BACKENDS)}; got {backend!r}"
        )


@contextlib.contextmanager
def search_engine(device: str = "auto", backend: str = "auto"):
    """Within the block, searches called with ``device=None`` / ``backend=None`` use these."""
    check_engine_choice(device, backend)
    token = _DEFAULT.set((device, backend))
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def faiss_installed() -> bool:
    return importlib.util.find_spec("faiss") is not None


def faiss_gpu_count() -> int:
    """GPUs this FAISS build sees (0 for faiss-cpu, or without FAISS)."""
    if not faiss_installed():
        return 0
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_cuda_available() -> bool:
    """Whether CUDA torch sees a GPU. On Linux without an NVIDIA driver this answers False
    without importing torch."""
    if not torch_installed():
        return False
    if sys.platform.startswith("linux") and not (
        os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")
    ):
        return False
    import torch

    return bool(torch.cuda.is_available())


def cpu_backend(k: int | None = None) -> str:
    """The CPU backend ``"auto"`` picks for a search of ``k`` neighbours (None: a small k)."""
    small = k is None or k <= CPU_FAISS_MAX_K
    return "faiss" if small and faiss_installed() else "numpy"


def resolve_engine(
    device: str | None = None, backend: str | None = None, *, k: int | None = None
) -> SearchEngine:
    """The backend and device a search runs on.

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; None: the :func:`search_engine` default.
        backend: ``"auto"``, ``"numpy"``, ``"faiss"`` or ``"torch"``; None: likewise.
        k: neighbours the search keeps (the CPU default depends on it), None if unknown.

    Raises:
        ConfigError: an unknown name, or a choice that cannot run on this machine.
    """
    default_device, default_backend = _DEFAULT.get()
    device = default_device if device is None else device
    backend = default_backend if backend is None else backend
    check_engine_choice(device, backend)
    if backend == "numpy":
        if device == "cuda":
            raise ConfigError(
                "kNN backend 'numpy' runs on the CPU only; use backend torch or faiss with "
                "device cuda"
            )
        return SearchEngine("numpy", "cpu")
    if backend == "torch" and not torch_installed():
        raise ConfigError("kNN backend 'torch' needs PyTorch: pip install torch")
    if backend == "faiss" and not faiss_installed():
        raise ConfigError("kNN backend 'faiss' needs FAISS: pip install faiss-cpu (or faiss-gpu)")
    if device == "cpu":
        return SearchEngine(cpu_backend(k) if backend == "auto" else backend, "cpu")
    fits = backend == "faiss" or k is None or k + 64 <= FAISS_GPU_MAX_K
    gpu = {
        "faiss": backend in ("auto", "faiss") and fits and faiss_gpu_count() > 0,
        "torch": backend in ("auto", "torch") and torch_cuda_available(),
    }
    for name in BACKENDS[:2]:
        if gpu[name]:
            return SearchEngine(name, "cuda")
    if device == "cuda":
        need = {
            "auto": "faiss-gpu (pip install -e .[gpu]) or a CUDA build of torch",
            "faiss": "faiss-gpu (pip install -e .[gpu])",
            "torch": "a CUDA build of torch",
        }[backend]
        raise ConfigError(
            f"device 'cuda' requested but no GPU is usable: the kNN search needs {need} and a "
            "visible GPU; use device cpu or auto"
        )
    return SearchEngine(cpu_backend(k) if backend == "auto" else backend, "cpu")


#: Below this many flops (about a second of one core) a FAISS call runs on one thread. OpenMP's
#: barriers cost more than they save on small problems, and far more when other processes share
#: the cores: measured on a busy 2-core machine, k-means of 100k x 128 into 7 clusters took 0.5 s
#: on one thread and 5.6 s on two.
SMALL_WORK = 1e10


@contextlib.contextmanager
def faiss_threads(work: float):
    """Run the block single-threaded when ``work`` (flops) is small, else with FAISS's default."""
    import faiss

    if work >= SMALL_WORK:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
