"""Model registry: ``@register_model`` on a builder, ``create_model`` by name (timm-style)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ferembed.models._base import FERNet, ModelConfigError

_REGISTRY: dict[str, Callable[..., FERNet]] = {}
# Keywords create_model passes itself; builders must accept them.
_CORE_KWARGS = ("embedding_dim", "in_chans")
# The FERNet keywords a builder's ``**neck`` forwards to the base class (beyond the core ones).
_NECK_KWARGS = ("emb_norm", "drop_rate")


def register_model(fn: Callable[..., FERNet] | None = None, *, name: str | None = None):
    """Register a builder under ``name`` (default: its ``__name__``); a decorator or a call.

    The builder's signature is ``fn(num_classes, *, <arch keywords>, **neck)`` and it returns a
    :class:`FERNet`; ``**neck`` (embedding_dim, in_chans, emb_norm, drop_rate) goes to
    :class:`FERNet`. A builder whose catch-all is named otherwise takes any keyword unchecked.
    A FERNet subclass with that ``__init__`` signature is its own builder:
    ``register_model(AffNet, name="affnet")``.
    """
    if fn is None:
        return lambda f: register_model(f, name=name)
    key = name or fn.__name__
    if key in _REGISTRY and _REGISTRY[key] is not fn:
        raise ValueError(f"model {key!r} is already registered")
    _REGISTRY[key] = fn
    return fn


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(_REGISTRY)


def is_model(name: str) -> bool:
    return name in _REGISTRY


def model_kwargs_of(name: str) -> list[str]:
    """The architecture keywords ``name`` accepts beyond num_classes/embedding_dim/in_chans."""
    params = inspect.signature(_get(name)).parameters
    names = [
        n
        for n, p in params.items()
        if n not in ("num_classes", *_CORE_KWARGS)
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if "neck" in params and params["neck"].kind == inspect.Parameter.VAR_KEYWORD:
        names += [n for n in _NECK_KWARGS if n not in names]
    return names


def create_model(
    name: str, num_classes: int, *, embedding_dim: int = 128, in_chans: int = 1, **kwargs
) -> FERNet:
    """Build architecture ``name``.

    Args:
        name: a registered name (see :func:`list_models`).
        num_classes: C, the width of the classifier head.
        embedding_dim: D, the width of the embedding (pre-logits) layer.
        in_chans: input channels (1 for grayscale faces).
        **kwargs: architecture keywords (``width`` for resnet18, ``widths`` for vgg, ``emb_norm``,
            ``drop_rate``...); see each builder's docstring.

    Returns:
        The model, in training mode, with ``model.arch = name`` and ``model.model_kwargs =
        kwargs`` (what :func:`ferembed.models.save_checkpoint` records to rebuild it).

    Raises:
        ModelConfigError (a ValueError): unknown name (the message lists the known ones) or an
            unknown keyword (the message lists the accepted ones).
    """
    fn = _get(name)
    params = inspect.signature(fn).parameters
    unchecked = [n for n, p in params.items() if p.kind == p.VAR_KEYWORD and n != "neck"]
    if not unchecked:
        unknown = sorted(set(kwargs) - set(model_kwargs_of(name)))
        if unknown:
            raise ModelConfigError(
                f"model {name!r} got unknown keyword(s) {unknown}; accepted: "
                f"{sorted(model_kwargs_of(name))}"
            )
    model = fn(num_classes, embedding_dim=embedding_dim, in_chans=in_chans, **kwargs)
    model.arch = name
    model.model_kwargs = dict(kwargs)
    return model


def _get(name: str) -> Callable[..., FERNet]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelConfigError(f"unknown model {name!r}; known: {list_models()}") from None
