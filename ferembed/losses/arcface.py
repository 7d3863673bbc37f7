"""ArcFace (Deng, Guo, Xue & Zafeiriou, CVPR 2019) through pytorch-metric-learning."""

from __future__ import annotations

import math

import torch.nn.functional as F
from pytorch_metric_learning import losses
from torch import Tensor

from ferembed.losses._base import FERLoss, check_positive
from ferembed.losses._registry import register_loss


@register_loss("arcface")
class ArcFaceLoss(FERLoss):
    r"""Additive angular margin loss.

    With ``cos theta_ij = <x_i/|x_i|, W_j/|W_j|>`` for the (D, C) class weight W (a parameter of
    this loss, not the model's head):

    ``L = -(1/m) sum_i log( e^{s cos(theta_{i,y_i} + margin)} / (e^{s cos(theta_{i,y_i} + margin)}
    + sum_{j != y_i} e^{s cos theta_ij}) )``

    computed by PML ``ArcFaceLoss`` (which keeps the target logit monotonic for
    ``theta > pi - margin``). ``uses_head`` is False: the trainer fits the model's head as a linear
    probe. :meth:`cosine_logits` gives the (B, C) cosines to the ArcFace class weights for callers
    that want ArcFace's own classifier.

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        margin: additive angular margin in radians (default 0.5, as the paper; PML takes degrees,
            the conversion is done here).
        scale: s (default 64, as the paper).

    Parts returned: ``{"arcface"}``.
    """

    uses_head = False

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        margin: float = 0.5,
        scale: float = 64.0,
    ) -> None:
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, margin=margin)
        self.scale = check_positive("scale", scale)
        self.arcface = losses.ArcFaceLoss(
            num_classes=self.num_classes,
            embedding_size=self.embedding_dim,
            margin=math.degrees(self.margin),
            scale=self.scale,
        )

    @property
    def weight(self) -> Tensor:
        """(D, C) ArcFace class weights (an ``nn.Parameter``; PML's ``W``)."""
        return self.arcface.W

    def cosine_logits(self, embeddings: Tensor) -> Tensor:
        """(B, C) cosine similarity of each embedding to each class weight, no margin or scale.

        Args:
            embeddings: (B, D) float.
        """
        w = self.weight.to(embeddings)
        return F.normalize(embeddings, dim=1) @ F.normalize(w, dim=0)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        return {"arcface": self.arcface(embeddings, labels)}
