"""Center loss (Wen, Zhang, Li & Qiao, ECCV 2016)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ferembed.losses._centers import CenterBuffersLoss
from ferembed.losses._registry import register_loss


@register_loss("center")
class CenterLoss(CenterBuffersLoss):
    r"""Softmax + center loss.

    ``L = CE + lam * L_C``,  ``L_C = 1/2 * (1/m) sum_i ||x_i - c_{y_i}||^2``  (mean over the batch,
    as Wen et al.'s Caffe layer does).

    The (C, D) centers are a buffer, not optimiser parameters: the gradient reaches only the
    embeddings (``dL_C/dx_i = (x_i - c_{y_i}) / m``), and after each optimiser step
    :meth:`after_step` moves every class present in the batch by
    ``delta_c_j = sum_{i:y_i=j} (c_j - x_i) / (1 + n_j)``, ``c_j <- c_j - alpha * delta_c_j``.

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        lam: lambda, the weight of L_C. The default 0.01 suits 128-d embeddings of norm ~10
            (L_C starts at ~50, so lambda L_C ~ 0.5, comparable to CE); Wen et al. used 0.003 for
            face recognition.
        alpha: center update rate in (0, 1] (Wen et al.: 0.5).
        center_init: "zeros" (centers start at 0, as in the paper) or "first_batch" (a class's
            center is set to its mean in the first batch that contains it).

    Parts returned: ``{"ce", "center"}`` (``center`` = lam * L_C).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        lam: float = 0.01,
        alpha: float = 0.5,
        center_init: str = "zeros",
    ) -> None:
        centers = dict(alpha=alpha, center_init=center_init)
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, **centers, lam=lam)

    def center_term(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``L_C = 1/2 mean_i ||x_i - c_{y_i}||^2`` (0-d, unweighted). embeddings (B, D)."""
        c = self.centers.to(embeddings.dtype)[labels]
        return 0.5 * (embeddings - c).pow(2).sum(dim=1).mean()

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        return {
            "ce": F.cross_entropy(logits, labels),
            "center": self.lam * self.center_term(embeddings, labels),
        }
