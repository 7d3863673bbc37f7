"""Class centers kept as buffers and moved by the center-loss update rule (Wen et al. 2016).

The centers are not optimiser parameters. After each optimiser step the trainer calls
``loss.after_step(embeddings, labels)`` and every class j present in the batch moves by

    delta_c_j = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j),      c_j <- c_j - alpha * delta_c_j,

with n_j the number of class-j samples in the batch (so ``c_j`` moves a fraction
``alpha * n_j / (1 + n_j)`` of the way to the batch's class mean). Subclasses may scale the rate
per class (:meth:`_center_rates`) or add a term to ``delta_c`` (:meth:`_extra_delta`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ferembed.losses._base import FERLoss, LossConfigError, check_choice

CENTER_INITS = ("zeros", "first_batch")


def center_delta(centers: Tensor, embeddings: Tensor, labels: Tensor) -> Tensor:
    """The center-loss step ``delta_c_j = sum_{i: y_i=j} (c_j - x_i) / (1 + n_j)``.

    Args:
        centers: (C, D) float.
        embeddings: (B, D) float, same dtype as ``centers``.
        labels: (B,) int64 in [0, C).

    Returns:
        (C, D): zero rows for classes absent from the batch.
    """
    c = centers.shape[0]
    n = torch.bincount(labels, minlength=c).to(centers.dtype)
    sums = torch.zeros_like(centers).index_add_(0, labels, embeddings)
    # sum_i (c_j - x_i) over the n_j samples of class j = n_j c_j - sum_i x_i
    return (n[:, None] * centers - sums) / (1.0 + n[:, None])


def off_diagonal(matrix: Tensor) -> Tensor:
    """The (K * (K - 1),) entries of a (K, K) matrix off its diagonal, row by row."""
    k = matrix.shape[0]
    return matrix[~torch.eye(k, dtype=torch.bool, device=matrix.device)]


class CenterBuffersLoss(FERLoss):
    """Base for losses whose (C, D) ``centers`` buffer follows the alpha rule (see module doc).

    Subclasses declare their hyper-parameters in their own ``__init__`` (the registry reads it)
    and pass them here: ``alpha`` and ``center_init`` set up the centers, every other keyword is
    a non-negative term weight (``lam``, ``beta``...) that :class:`FERLoss` checks and stores.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        alpha: float = 0.5,
        center_init: str = "zeros",
        **weights: float,
    ) -> None:
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, **weights)
        self._init_centers(alpha, center_init)

    def _init_centers(self, alpha: float, center_init: str) -> None:
        alpha = float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise LossConfigError(
                f"{self.name}: alpha (center rate) must be in (0, 1], got {alpha}"
            )
        self.alpha = alpha
        self.center_init = check_choice("center_init", center_init, CENTER_INITS)
        self.register_buffer("centers", torch.zeros(self.num_classes, self.embedding_dim))
        if self.center_init == "first_batch":
            self.register_buffer(
                "centers_initialized", torch.zeros(self.num_classes, dtype=torch.bool)
            )

    def _center_rates(self) -> Tensor | float:
        """Per-class multiplier of ``alpha`` ((C,) tensor or a scalar)."""
        return 1.0

    def _extra_delta(self) -> Tensor | None:
        """(C, D) term added to ``delta_c`` (e.g. the island push); None for none."""
        return None

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        centers = self.centers
        x = embeddings.to(centers.dtype)
        labels = labels.to(torch.int64)
        delta = center_delta(centers, x, labels)
        extra = self._extra_delta()
        if extra is not None:
            delta = delta + extra
        rates = self._center_rates()
        if isinstance(rates, Tensor):
            rates = rates.to(centers)[:, None]
        new = centers - self.alpha * rates * delta
        if self.center_init == "first_batch":
            # A class seen for the first time starts at its batch mean instead of moving from 0.
            n = torch.bincount(labels, minlength=self.num_classes)
            fresh = (n > 0) & ~self.centers_initialized
            if bool(fresh.any()):
                sums = torch.zeros_like(centers).index_add_(0, labels, x)
                means = sums / n.clamp_min(1).to(centers.dtype)[:, None]
                new = torch.where(fresh[:, None], means, new)
                self.centers_initialized |= fresh
        centers.copy_(new)
