"""Island loss (Cai, Meng, Khan, Li, O'Reilly & Tong, FG 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from ferembed.losses._base import check_positive
from ferembed.losses._centers import off_diagonal
from ferembed.losses._registry import register_loss
from ferembed.losses.center import CenterLoss

_NORM_EPS = 1e-8


def pairwise_center_cosine(centers: Tensor, eps: float = _NORM_EPS) -> Tensor:
    """(C, C) cosine similarity between centers; a zero center has cosine 0 with everything.

    Args:
        centers: (C, D) float.
    """
    norms = centers.norm(dim=1)
    u = centers / norms.clamp_min(eps)[:, None]
    return u @ u.T


def island_delta(centers: Tensor, lam1: float, eps: float = _NORM_EPS) -> Tensor:
    """The island part of the center step, ``lam1/(K-1) * sum_{k!=j} d cos(c_j, c_k) / d c_j``.

    ``d cos(c_j, c_k)/d c_j = c_k/(|c_k||c_j|) - (c_k . c_j) c_j/(|c_k||c_j|^3)
    = (u_k - cos_jk u_j) / |c_j|`` with ``u = c/|c|``. Centers with norm < eps (e.g. the zero
    initial centers) have no direction: they neither move nor push others.

    Args:
        centers: (K, D) float.
        lam1: lambda_1.

    Returns:
        (K, D) float.
    """
    k = centers.shape[0]
    norms = centers.norm(dim=1)
    valid = norms > eps
    u = torch.where(valid[:, None], centers / norms.clamp_min(eps)[:, None], 0.0)
    cos = u @ u.T
    off = ~torch.eye(k, dtype=torch.bool, device=centers.device)
    sum_u = off.to(u.dtype) @ u  # sum_{k != j} u_k (invalid u_k are 0)
    sum_cos = (cos * off).sum(dim=1)
    grad = (sum_u - sum_cos[:, None] * u) / norms.clamp_min(eps)[:, None]
    grad = torch.where(valid[:, None], grad, 0.0)
    return lam1 / (k - 1) * grad


@register_loss("island")
class IslandLoss(CenterLoss):
    r"""Softmax + island loss: center loss plus a push between centers.

    ``L = CE + lam * (L_C + lam1 * sum_j sum_{k != j} (cos(c_j, c_k) + 1))`` with
    ``L_C = 1/2 mean_i ||x_i - c_{y_i}||^2`` and the sum over ordered pairs of classes (each
    term in [0, 2]).

    The centers are buffers, so the pairwise term has no gradient in the backward pass; its effect
    is in the center update, which adds the term's gradient to the center-loss step
    (reference-doc structure, UNCONFIRMED):

    ``delta_c_j = sum_{i:y_i=j} (c_j - x_i)/(1 + n_j)
    + lam1/(K-1) * sum_{k != j} [c_k/(|c_k||c_j|) - (c_k . c_j) c_j/(|c_k||c_j|^3)]``,
    ``c_j <- c_j - alpha * delta_c_j``  (every class, also those absent from the batch).

    The second sum is ``sum_{k!=j} d cos(c_j, c_k)/d c_j`` (half the gradient of the ordered-pair
    sum), so the step lowers the cosines between centers. Its size scales as ``1/|c_j|``; zero
    centers (the initial state) are skipped until the center step has moved them.

    Args:
        num_classes: K.
        embedding_dim: D.
        class_counts: unused.
        lam: lambda (Cai et al. / reference implementation: 0.01).
        lam1: lambda_1, weight of the pairwise term (default 10).
        alpha: center update rate (default 0.5).
        center_init: "zeros" or "first_batch" (see :class:`CenterLoss`).

    Parts returned: ``{"ce", "center", "island"}`` with ``center = lam * L_C`` and
    ``island = lam * lam1 * sum_{j != k} (cos + 1)`` (constant w.r.t. the network; reported so the
    total equals the paper's objective).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        lam: float = 0.01,
        lam1: float = 10.0,
        alpha: float = 0.5,
        center_init: str = "zeros",
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            class_counts=class_counts,
            lam=lam,
            alpha=alpha,
            center_init=center_init,
        )
        self.lam1 = check_positive("lam1", lam1, allow_zero=True)

    def island_term(self) -> Tensor:
        """``sum_{j != k} (cos(c_j, c_k) + 1)`` over ordered pairs (0-d, unweighted)."""
        return (off_diagonal(pairwise_center_cosine(self.centers)) + 1.0).sum()

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        parts = super().compute(embeddings, logits, labels, indices=indices)
        parts["island"] = (self.lam * self.lam1 * self.island_term()).to(embeddings.dtype)
        return parts

    def _extra_delta(self) -> Tensor | None:
        if self.lam1 == 0:
            return None
        return island_delta(self.centers, self.lam1)
