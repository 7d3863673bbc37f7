"""Fixtures shared by every test package: where the real datasets are, or a clean skip.

The real data (FER2013 and CK+ crops) live outside the repository, at ``../shared/datasets``
relative to the repo root, or wherever ``FEREMBED_DATA`` points. Tests that need them are marked
``@pytest.mark.realdata`` and take one of the fixtures below, which skip when the data are absent
(a fresh clone) and run in CI, where the data are present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_datasets() -> Path | None:
    """``$FEREMBED_DATA`` if set (then only it), else ``REPO_ROOT/../shared/datasets``.

    Returns None when that folder is absent.
    """
    env = os.environ.get("FEREMBED_DATA")
    path = Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "datasets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder holding the real datasets (``fer2013/``, ``ckplus48/``), or skip the test."""
    path = find_shared_datasets()
    if path is None:
        where = os.environ.get("FEREMBED_DATA") or REPO_ROOT.parent / "shared" / "datasets"
        pytest.skip(f"real datasets not found at {where} (set FEREMBED_DATA)")
    return path


@pytest.fixture(scope="session")
def realdata_root(shared_datasets: Path) -> Path:
    """Alias of :func:`shared_datasets`."""
    return shared_datasets


def _dataset_dir(shared: Path, name: str) -> Path:
    path = shared / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name} not found in {shared}")
    return path


@pytest.fixture(scope="session")
def fer2013_root(shared_datasets: Path) -> Path:
    """The real FER2013 image folders (train/, val/, test/), or skip."""
    return _dataset_dir(shared_datasets, "fer2013")


@pytest.fixture(scope="session")
def ckplus_root(shared_datasets: Path) -> Path:
    """The real CK+ 48x48 crops (one folder per class), or skip."""
    return _dataset_dir(shared_datasets, "ckplus48")


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny tensors: no OpenMP wait on a shared, busy CPU).

    Test modules of tiny models opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
