"""Batch-hard triplet loss (Hermans, Beyer & Leibe 2017) through pytorch-metric-learning."""

from __future__ import annotations

import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners
from torch import Tensor

from ferembed.losses._base import FERLoss
from ferembed.losses._registry import register_loss


@register_loss("triplet")
class TripletLoss(FERLoss):
    r"""Batch-hard triplet loss, optionally with a cross-entropy term.

    For every anchor a in the batch, the hardest positive p (farthest same-class sample) and the
    hardest negative n (closest other-class sample) are mined (PML ``BatchHardMiner``), and

    ``L_tri = mean over triplets with a positive hinge of max(0, d(a, p) - d(a, n) + margin)``

    (PML ``TripletMarginLoss`` with its ``AvgNonZeroReducer``), where d is the Euclidean distance
    between L2-normalised embeddings (``normalize=True``) or raw embeddings.
    ``L = L_tri + ce_weight * CE``. A batch without a valid triplet gives a zero loss (with grad).

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        margin: triplet margin (default 0.2, for normalised embeddings).
        normalize: L2-normalise embeddings before the distances.
        ce_weight: weight of CE on the head logits; 0 (default) makes ``uses_head`` False and the
            trainer fits the head as a linear probe.

    Parts returned: ``{"triplet"}`` plus ``{"ce"}`` when ``ce_weight > 0``.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        margin: float = 0.2,
        normalize: bool = True,
        ce_weight: float = 0.0,
    ) -> None:
        weights = dict(margin=margin, ce_weight=ce_weight)
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, **weights)
        self.normalize = bool(normalize)
        self.uses_head = self.ce_weight > 0
        distance = distances.LpDistance(p=2, power=1, normalize_embeddings=self.normalize)
        self.miner = miners.BatchHardMiner(distance=distance)
        self.triplet = losses.TripletMarginLoss(margin=self.margin, distance=distance)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        triplets = self.miner(embeddings, labels)
        parts = {"triplet": self.triplet(embeddings, labels, triplets)}
        if self.uses_head:
            parts["ce"] = self.ce_weight * F.cross_entropy(logits, labels)
        return parts
