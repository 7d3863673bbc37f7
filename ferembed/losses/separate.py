"""Separate loss (Li, Lu, Li & Lu, ACML 2019), ratio form with learnable centers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferembed.losses._base import FERLoss, check_positive
from ferembed.losses._centers import off_diagonal
from ferembed.losses._registry import register_loss


@register_loss("separate")
class SeparateLoss(FERLoss):
    r"""Softmax + separate loss: high cosine to the own center, low cosine between centers.

    ``S_intra = (1/m) sum_i cos(x_i, c_{y_i})``

    ``S_inter = 1/(C(C-1)) sum_j sum_{k != j} cos(c_j, c_k)``

    ``L_S = (1 + S_inter) / max(1 + S_intra, eps)``,   ``L = CE + lam * L_S``.

    L_S is in [0, 2/eps]; it is 1 for random centers and embeddings and falls toward 0 as features
    align with their centers and the centers spread apart. The (C, D) ``centers`` are an
    ``nn.Parameter`` of the loss (initialised N(0, 1)), trained by the optimiser together with the
    model, so the gradient reaches the embeddings and the centers. This ratio form is our reading of
    the paper's abstract (the exact formula is UNCONFIRMED).

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        lam: lambda, the weight of L_S (default 1.0, our choice: the L_S gradient per embedding is
            ~1/(m |x|), already smaller than CE's).
        eps: lower bound of the denominator.

    Parts returned: ``{"ce", "separate"}`` (``separate`` = lam * L_S).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        lam: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, lam=lam)
        self.eps = check_positive("eps", eps)
        self.centers = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim))

    def separate_term(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``L_S`` (0-d, unweighted). embeddings (B, D)."""
        c = self.centers.to(embeddings.dtype)
        intra = F.cosine_similarity(embeddings, c[labels], dim=1, eps=1e-8).mean()
        u = F.normalize(c, dim=1, eps=1e-8)
        inter = off_diagonal(u @ u.T).mean()
        return (1.0 + inter) / (1.0 + intra).clamp_min(self.eps)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        return {
            "ce": F.cross_entropy(logits, labels),
            "separate": self.lam * self.separate_term(embeddings, labels),
        }
