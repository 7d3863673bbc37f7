"""Expression metric loss function, EMLF (Yu & Bai, IEEE Access 2020; our center-based form).

The paper pairs EMLF with a *partial image* input (brows/eyes and mouth crops stacked into one
face-sized image): see :class:`ferembed.data.partial.PartialImage`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ferembed.losses._centers import CenterBuffersLoss
from ferembed.losses._registry import register_loss


@register_loss("emlf")
class EMLFLoss(CenterBuffersLoss):
    r"""Softmax + EMLF: pull to the own center, push the own center closer than any other by m.

    With squared distances ``d_ij = ||x_i - c_j||^2``:

    ``EMLF = (1/m) sum_i d_{i,y_i} + beta * (1/m) sum_i max(0, margin + d_{i,y_i}
    - min_{j != y_i} d_ij)``,   ``L = CE + lam * EMLF``.

    The centers are buffers moved by the center-loss rule after each step
    (``delta_c_j = sum_{i:y_i=j} (c_j - x_i)/(1 + n_j)``, ``c_j <- c_j - alpha * delta_c_j``); the
    gradient reaches the embeddings only. The paper's exact EMLF is UNCONFIRMED; this "intra pull +
    margin push against the nearest other center" form is our documented design.

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        lam: lambda, weight of EMLF against CE (default 0.01, as for the center loss).
        beta: weight of the push term (default 1).
        margin: m, in squared-distance units (default 1; scale it with the embedding norm).
        alpha: center update rate (default 0.5).
        center_init: "zeros" or "first_batch".

    Parts returned: ``{"ce", "emlf_pull", "emlf_push"}`` with ``emlf_pull = lam * mean_i d_{i,y_i}``
    and ``emlf_push = lam * beta * mean_i max(0, ...)``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        lam: float = 0.01,
        beta: float = 1.0,
        margin: float = 1.0,
        alpha: float = 0.5,
        center_init: str = "zeros",
    ) -> None:
        weights = dict(lam=lam, beta=beta, margin=margin)
        centers = dict(alpha=alpha, center_init=center_init)
        super().__init__(
            num_classes, embedding_dim, class_counts=class_counts, **centers, **weights
        )

    def emlf_terms(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(pull, push): ``mean_i d_{i,y_i}`` and ``mean_i max(0, m + d_{i,y_i} - min_{j!=y_i}
        d_ij)``, both 0-d and unweighted. embeddings (B, D)."""
        c = self.centers.to(embeddings.dtype)
        d = (embeddings[:, None, :] - c[None, :, :]).pow(2).sum(dim=2)  # (B, C)
        own = d.gather(1, labels[:, None]).squeeze(1)
        others = d.masked_fill(F.one_hot(labels, self.num_classes).bool(), float("inf"))
        nearest_other = others.min(dim=1).values
        push = torch.relu(self.margin + own - nearest_other)
        return own.mean(), push.mean()

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        pull, push = self.emlf_terms(embeddings, labels)
        return {
            "ce": F.cross_entropy(logits, labels),
            "emlf_pull": self.lam * pull,
            "emlf_push": self.lam * self.beta * push,
        }
