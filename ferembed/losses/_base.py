"""The loss interface every ferembed loss implements.

:class:`FERLoss` owns the control flow (PML's ``BaseMetricLossFunction`` pattern): ``forward``
validates the batch, calls the subclass's one hook :meth:`FERLoss.compute`, and sums the named
terms it returns. The trainer only ever calls the five methods of the contract::

    parts = loss(embeddings, logits, labels, indices=idx)   # parts["loss"].backward()
    loss.after_step(embeddings.detach(), labels)            # after optimizer.step()
    loss.on_epoch_end(epoch)                                # after each epoch
    loss.prepare(train_dataset, cache_dir=...)              # once, before training
    loss.config()                                           # hyper-parameters for the run record
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ferembed._io import to_jsonable
from ferembed.errors import FerembedError


class LossConfigError(FerembedError, ValueError):
    """A bad loss name, parameter or class-count array (a ValueError the CLI shows as one line)."""


class FERLoss(nn.Module):
    """Base class of every loss: validates inputs, calls :meth:`compute`, sums the parts.

    Subclasses set ``name`` (via ``@register_loss``), declare their hyper-parameters as keyword
    arguments of ``__init__`` (with defaults; :meth:`config` returns them), and implement
    :meth:`compute`. Centers that follow an update rule are registered *buffers* (saved in the
    state dict, not optimised); learnable extras are ``nn.Parameter``s of the loss, which the
    trainer optimises together with the model.

    Attributes:
        name: registry name.
        uses_head: False when the loss does not train the classifier head; the trainer then fits
            the head on detached embeddings with plain CE (a linear probe).
        needs_class_counts: True when ``class_counts`` must be given to ``__init__``.
        needs_indices: True when ``forward`` needs the batch's dataset ``indices`` (training mode).
        num_classes: C.
        embedding_dim: D.
    """

    name: str = "base"
    uses_head: bool = True
    needs_class_counts: bool = False
    needs_indices: bool = False

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts: Sequence[int] | np.ndarray | Tensor | None = None,
        **weights: float,
    ) -> None:
        """Check C, D and the class counts; ``weights`` are non-negative term weights (``lam``,
        ``margin``...), each checked and stored as an attribute of its name."""
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 2:
            raise LossConfigError(
                f"{self.name}: num_classes must be an integer >= 2, got {num_classes}"
            )
        if int(embedding_dim) != embedding_dim or embedding_dim < 1:
            raise LossConfigError(
                f"{self.name}: embedding_dim must be an integer >= 1, got {embedding_dim}"
            )
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.class_counts = (
            None if class_counts is None else check_class_counts(class_counts, self.num_classes)
        )
        if self.needs_class_counts and self.class_counts is None:
            raise LossConfigError(
                f"loss {self.name!r} needs class_counts (the (C,) number of training samples per "
                f"class, e.g. dataset.class_counts())"
            )
        for key, value in weights.items():
            setattr(self, key, check_positive(key, value, allow_zero=True))

    # ----------------------------------------------------------------------------------------
    # Control flow (subclasses do not override these)

    def forward(
        self,
        embeddings: Tensor,
        logits: Tensor | None,
        labels: Tensor,
        *,
        indices: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Validate the batch, compute the terms, return the total and the detached parts.

        Args:
            embeddings: (B, D) float embeddings (pre-logits features).
            logits: (B, C) float head logits; may be None when ``uses_head`` is False.
            labels: (B,) integer class labels in [0, C).
            indices: (B,) integer positions of the batch's samples in the prepared dataset
                (only losses with ``needs_indices`` use them).

        Returns:
            ``{"loss": sum of the parts (with grad), "<part>": part.detach(), ...}``; every part
            is a 0-d tensor that is already weighted, so ``loss == sum(parts)``.
        """
        self._check_batch(embeddings, logits, labels, indices)
        # Losses are computed in (at least) float32, also under autocast (PML's ArcFace would
        # otherwise cast its weight to half); the casts keep the graph.
        embeddings = _at_least_float32(embeddings)
        logits = None if logits is None else _at_least_float32(logits)
        labels = labels.long()
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            parts = self.compute(embeddings, logits, labels, indices=indices)
        if not parts:
            raise RuntimeError(f"{self.name}: compute() returned no terms")
        total = sum(parts.values())
        out = {"loss": total}
        out.update({k: v.detach() for k, v in parts.items()})
        return out

    @torch.no_grad()
    def after_step(self, embeddings: Tensor, labels: Tensor) -> None:
        """Update rule-based state (centers) with the batch's detached embeddings.

        Call after ``optimizer.step()`` with the embeddings of the batch just trained on.

        Args:
            embeddings: (B, D) float.
            labels: (B,) integer in [0, C).
        """
        self._check_batch(embeddings, None, labels, None, need_logits=False)
        self.update(embeddings.detach(), labels)

    # ----------------------------------------------------------------------------------------
    # Hooks

    def compute(
        self,
        embeddings: Tensor,
        logits: Tensor | None,
        labels: Tensor,
        *,
        indices: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Return the named, already-weighted terms of the loss (0-d tensors), e.g.
        ``{"ce": ce, "center": lam * l_c}``. Inputs are validated by :meth:`forward`."""
        raise NotImplementedError

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        """Rule-based state update, run under ``torch.no_grad`` by :meth:`after_step`."""

    def prepare(self, dataset, *, cache_dir=None) -> None:
        """Precompute per-sample targets for ``dataset`` (default: nothing to do)."""

    def on_epoch_end(self, epoch: int) -> None:
        """Advance schedules; ``epoch`` is the 0-based index of the epoch that just finished."""

    def config(self) -> dict:
        """The hyper-parameters, JSON-serialisable: ``create_loss(name, C, D,
        class_counts=..., **loss.config())`` rebuilds an equivalent loss."""
        out = {}
        for p in _init_params(type(self)):
            value = getattr(self, p, None)
            out[p] = to_jsonable(value)
        return out

    def stats(self) -> dict[str, float]:
        """Optional diagnostics for logging (current adaptive weights, schedule factor...)."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    # ----------------------------------------------------------------------------------------

    def _check_batch(self, embeddings, logits, labels, indices, *, need_logits=None) -> None:
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            raise ValueError(
                f"{self.name}: embeddings must be a (B, D) tensor, got "
                f"{getattr(embeddings, 'shape', type(embeddings).__name__)}"
            )
        b, d = embeddings.shape
        if d != self.embedding_dim:
            raise ValueError(
                f"{self.name}: embeddings have D={d}, loss built for {self.embedding_dim}"
            )
        if not embeddings.is_floating_point():
            raise ValueError(
                f"{self.name}: embeddings must be floating point, got {embeddings.dtype}"
            )
        if b == 0:
            raise ValueError(f"{self.name}: empty batch")
        if not isinstance(labels, Tensor) or labels.shape != (b,):
            raise ValueError(
                f"{self.name}: labels must have shape ({b},), got "
                f"{getattr(labels, 'shape', type(labels).__name__)}"
            )
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"{self.name}: labels must be integers, got {labels.dtype}")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= self.num_classes:
            raise ValueError(
                f"{self.name}: labels must be in [0, {self.num_classes}), got [{lo}, {hi}]"
            )
        if need_logits is None:
            need_logits = self.uses_head
        if logits is not None or need_logits:
            if not isinstance(logits, Tensor) or logits.shape != (b, self.num_classes):
                raise ValueError(
                    f"{self.name}: logits must have shape ({b}, {self.num_classes}), got "
                    f"{getattr(logits, 'shape', None)}"
                )
        if indices is not None:
            if not isinstance(indices, Tensor) or indices.shape != (b,):
                raise ValueError(
                    f"{self.name}: indices must have shape ({b},), got "
                    f"{getattr(indices, 'shape', type(indices).__name__)}"
                )
            if indices.is_floating_point() or indices.dtype == torch.bool:
                raise ValueError(f"{self.name}: indices must be integers, got {indices.dtype}")


def check_class_counts(class_counts, num_classes: int) -> np.ndarray:
    """Validate per-class sample counts.

    Returns:
        (C,) int64 array.

    Raises:
        LossConfigError: wrong length, negative or non-integer values.
    """
    if isinstance(class_counts, Tensor):
        class_counts = class_counts.detach().cpu().numpy()
    counts = np.asarray(class_counts)
    if counts.shape != (num_classes,):
        raise LossConfigError(f"class_counts must have shape ({num_classes},), got {counts.shape}")
    if counts.dtype.kind not in "iuf" or not np.all(np.isfinite(counts)):
        raise LossConfigError(f"class_counts must be finite numbers, got dtype {counts.dtype}")
    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise LossConfigError(f"class_counts must be non-negative integers, got {counts.tolist()}")
    return counts.astype(np.int64)


def require_nonempty_classes(loss: FERLoss) -> np.ndarray:
    """(C,) counts of a loss that weights classes by 1/N_j; every class must have a sample."""
    counts = loss.class_counts
    assert counts is not None
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise LossConfigError(
            f"{loss.name}: class weights need every class to have samples; classes "
            f"{empty.tolist()} have none"
        )
    return counts


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a scalar hyper-parameter (> 0, or >= 0 with ``allow_zero``)."""
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise LossConfigError(f"{name} must be {bound}, got {value}")
    return v


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise LossConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _init_params(cls) -> list[str]:
    """Keyword hyper-parameters of ``cls.__init__`` (beyond num_classes/embedding_dim/counts)."""
    sig = inspect.signature(cls.__init__)
    skip = {"self", "num_classes", "embedding_dim", "class_counts"}
    return [
        n
        for n, p in sig.parameters.items()
        if n not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _at_least_float32(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
