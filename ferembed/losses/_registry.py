"""Loss registry: ``@register_loss(name)`` on a FERLoss subclass; ``create_loss`` by name."""

from __future__ import annotations

from ferembed.losses._base import FERLoss, LossConfigError, _init_params

_REGISTRY: dict[str, type[FERLoss]] = {}


def register_loss(name: str):
    """Class decorator: register a :class:`FERLoss` subclass under ``name`` (sets ``cls.name``)."""

    def deco(cls: type[FERLoss]) -> type[FERLoss]:
        if not (isinstance(cls, type) and issubclass(cls, FERLoss)):
            raise TypeError(f"@register_loss({name!r}) needs a FERLoss subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"loss {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_losses() -> list[str]:
    """Names of the registered losses, sorted."""
    return sorted(_REGISTRY)


def get_loss_class(name: str) -> type[FERLoss]:
    """The class registered under ``name``.

    Raises:
        LossConfigError (a ValueError): unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LossConfigError(f"unknown loss {name!r}; known: {list_losses()}") from None


def create_loss(
    name: str, num_classes: int, embedding_dim: int, *, class_counts=None, **params
) -> FERLoss:
    """Build loss ``name`` for ``num_classes`` classes and ``embedding_dim``-d embeddings.

    Args:
        name: a registered name (see :func:`list_losses`).
        num_classes: C.
        embedding_dim: D.
        class_counts: (C,) training samples per class; required by class-weighted losses.
        **params: the loss's hyper-parameters (see its class docstring / ``docs/losses.md``).

    Raises:
        LossConfigError (a ValueError): unknown name, unknown parameter (the accepted ones are
            listed), a bad value, or missing ``class_counts``.
    """
    cls = get_loss_class(name)
    accepted = _init_params(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise LossConfigError(
            f"loss {name!r} got unknown parameter(s) {unknown}; accepted: {sorted(accepted)}"
        )
    return cls(num_classes, embedding_dim, class_counts=class_counts, **params)
