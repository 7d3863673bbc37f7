"""Softmax cross-entropy, optionally class-weighted and label-smoothed (the baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ferembed.losses._base import FERLoss, LossConfigError, require_nonempty_classes
from ferembed.losses._registry import register_loss
from ferembed.losses._weighting import inverse_frequency_weights


@register_loss("softmax")
class SoftmaxLoss(FERLoss):
    r"""Cross-entropy on the head logits.

    ``L = -(1/m) sum_i log p_{y_i}(x_i)`` with ``p = softmax(logits)``.

    With ``class_weighted=True`` each sample is weighted by its class weight
    ``w_j = (1/N_j) / mean_k(1/N_k)`` (inverse frequency, normalised to mean 1 over the C classes)
    and the batch is reduced by the weighted mean (PyTorch's ``CrossEntropyLoss(weight=w)``):
    ``L = sum_i w_{y_i} CE_i / sum_i w_{y_i}``. With label smoothing ``eps`` the target is
    ``(1 - eps) onehot + eps / C``.

    Args:
        num_classes: C.
        embedding_dim: D (unused; the loss reads the logits).
        class_counts: (C,) training counts; required when ``class_weighted``.
        class_weighted: weight classes by inverse frequency.
        label_smoothing: eps in [0, 1).

    Parts returned: ``{"ce"}``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        class_weighted: bool = False,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(num_classes, embedding_dim, class_counts=class_counts)
        self.class_weighted = bool(class_weighted)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise LossConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        if self.class_weighted:
            if self.class_counts is None:
                raise LossConfigError("softmax(class_weighted=True) needs class_counts")
            w = inverse_frequency_weights(require_nonempty_classes(self))
            self.register_buffer("class_weights", torch.tensor(w, dtype=torch.float32))
        else:
            self.class_weights = None

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        w = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        ce = F.cross_entropy(logits, labels, weight=w, label_smoothing=self.label_smoothing)
        return {"ce": ce}
