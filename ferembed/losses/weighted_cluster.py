"""Weighted-cluster loss (Ngo & Yoon, Sensors 2020) with weighted softmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ferembed.losses._base import check_positive, require_nonempty_classes
from ferembed.losses._centers import CenterBuffersLoss
from ferembed.losses._registry import register_loss
from ferembed.losses._weighting import min_count_weights


@register_loss("weighted_cluster")
class WeightedClusterLoss(CenterBuffersLoss):
    r"""Weighted softmax + weighted-cluster loss for imbalanced data.

    Class weights ``w_j = N_min / N_j`` from the training counts (the rarest class gets 1).

    ``l_i = ||x_i - c_{y_i}||^2 / (sum_{j != y_i} ||c_{y_i} - c_j||^2 + delta)``

    ``L_WC = (lam / 2) * (1/m) sum_i w_{y_i} l_i``

    ``L_WS = sum_i w_{y_i} CE_i / sum_i w_{y_i}``  (weighted-mean cross-entropy, PyTorch's
    ``CrossEntropyLoss(weight=w)``; scale-free in w, unlike the re-implementation's ``1/m`` mean)

    ``L = L_WS + L_WC``.

    The centers are buffers (initialised to 0), so the gradient reaches only the embeddings through
    the numerator; the denominator is a constant of the current centers. After each step the
    centers move center-loss style with a per-class rate:
    ``delta_c_j = sum_{i:y_i=j} (c_j - x_i)/(1 + n_j)``, ``c_j <- c_j - alpha * w_j * delta_c_j``
    (``weighted_update=True``; with False the rate is ``alpha`` for every class). Every sample of
    class j carries the same weight w_j, so "move toward the weighted class mean" is this rule.

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: (C,) training counts (required; every class needs >= 1 sample).
        lam: lambda (re-implementation: 0.01 on AffectNet).
        delta: the constant in the denominator (alpha = 1 in Ngo & Yoon; renamed here because
            ``alpha`` is the center rate in every center-based loss).
        alpha: center update rate (default 0.5).
        weighted_update: scale the center rate by w_j.
        center_init: "zeros" or "first_batch".

    Parts returned: ``{"ce", "cluster"}`` (``ce`` = L_WS, ``cluster`` = L_WC).
    """

    needs_class_counts = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        lam: float = 0.01,
        delta: float = 1.0,
        alpha: float = 0.5,
        weighted_update: bool = True,
        center_init: str = "zeros",
    ) -> None:
        centers = dict(alpha=alpha, center_init=center_init)
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, **centers, lam=lam)
        self.delta = check_positive("delta", delta)
        self.weighted_update = bool(weighted_update)
        w = min_count_weights(require_nonempty_classes(self))
        self.register_buffer("class_weights", torch.tensor(w, dtype=torch.float32))

    def cluster_terms(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """(B,) unweighted ``l_i``. embeddings (B, D)."""
        c = self.centers.to(embeddings.dtype)
        own = c[labels]
        # sum_j ||c_y - c_j||^2; the j = y term is 0, so this is the sum over j != y.
        between = (c[:, None, :] - c[None, :, :]).pow(2).sum(dim=(1, 2))
        return (embeddings - own).pow(2).sum(dim=1) / (between[labels] + self.delta)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        w = self.class_weights.to(embeddings.dtype)
        ce = F.cross_entropy(logits, labels, weight=w.to(logits.dtype))
        cluster = 0.5 * self.lam * (w[labels] * self.cluster_terms(embeddings, labels)).mean()
        return {"ce": ce, "cluster": cluster}

    def _center_rates(self):
        return self.class_weights if self.weighted_update else 1.0
