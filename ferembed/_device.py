"""Which torch device to run on: one helper for training, embedding and the benchmarks."""

from __future__ import annotations

import torch

from ferembed.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda if available, else mps, else cpu; other names are checked.

    Raises:
        ConfigError: the requested device is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' requested but MPS is not available")
    return torch.device(name)
