"""resolve_device: one helper (ferembed._device) for training, embedding and the benchmarks."""

from __future__ import annotations

import pytest
import torch

import ferembed.training
import ferembed.training.config
from ferembed._device import resolve_device
from ferembed.errors import ConfigError


def test_old_import_paths_still_work():
    assert ferembed.training.resolve_device is resolve_device
    assert ferembed.training.ConfigError is ConfigError
    assert ferembed.training.config.ConfigError is ConfigError


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected is None:
        mps = getattr(torch.backends, "mps", None)
        expected = "mps" if mps is not None and mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
