"""Dataset registry: ``create_dataset(name, root=..., split=...)`` builds any supported loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ferembed.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    factory: Callable  # (root, split, *, fold, num_folds, image_size, **kw) -> FERDataset
    splits: tuple[str, ...]
    layout: str  # one paragraph: the on-disk layout this loader expects
    needs_root: bool = True


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, splits: tuple[str, ...], layout: str, needs_root: bool = True):
    def deco(factory):
        _REGISTRY[name] = DatasetInfo(name, factory, splits, layout, needs_root)
        return factory

    return deco


def list_datasets() -> list[DatasetInfo]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_dataset_info(name: str) -> DatasetInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(_REGISTRY)}") from None


def create_dataset(name: str, root=None, split: str = "train", **kwargs):
    """Build dataset ``name`` for ``split``. Raises DataError naming what is wrong."""
    info = get_dataset_info(name)
    if info.needs_root and root is None:
        raise DataError(f"dataset {name!r} needs --root (expected layout: {info.layout})")
    if split not in info.splits:
        raise DataError(f"dataset {name!r} has no split {split!r}; splits: {list(info.splits)}")
    return info.factory(root, split, **kwargs)
