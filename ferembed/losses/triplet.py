"""Triplet loss (batch-hard: Hermans, Beyer & Leibe 2017; semi-hard: Schroff, Kalenichenko &
Philbin 2015) through pytorch-metric-learning."""

from __future__ import annotations

import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners
from torch import Tensor

from ferembed.losses._base import FERLoss, LossConfigError
from ferembed.losses._registry import register_loss

#: The ``mining`` choices: how the triplets of a batch are picked.
TRIPLET_MINING = ("batch_hard", "semihard", "all")


@register_loss("triplet")
class TripletLoss(FERLoss):
    r"""Triplet loss over mined triplets, optionally with a cross-entropy term.

    ``L_tri = mean over triplets (a, p, n) with a positive hinge of max(0, d(a, p) - d(a, n) +
    margin)`` (PML ``TripletMarginLoss`` with its ``AvgNonZeroReducer``), where d is the Euclidean
    distance between L2-normalised embeddings (``normalize=True``) or raw embeddings, and the
    triplets are chosen by ``mining``:

    - ``"batch_hard"`` (default): for every anchor a, its hardest positive (farthest same-class
      sample) and hardest negative (closest other-class sample) (PML ``BatchHardMiner``). On noisy
      labels (FER2013) the hardest pairs are mostly mislabelled faces and training can collapse
      every embedding to one point.
    - ``"semihard"``: every triplet with ``d(a, p) < d(a, n) < d(a, p) + margin`` (PML
      ``TripletMarginMiner(type_of_triplets="semihard")``, FaceNet's rule): negatives farther than
      the positive but inside the margin, which never rewards pulling everything together.
    - ``"all"``: every valid triplet of the batch (batch-all; no miner).

    ``L = L_tri + ce_weight * CE``. A batch without a valid triplet gives a zero loss (with grad).

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        margin: triplet margin (default 0.2, for normalised embeddings).
        normalize: L2-normalise embeddings before the distances.
        ce_weight: weight of CE on the head logits; 0 (default) makes ``uses_head`` False and the
            trainer fits the head as a linear probe.
        mining: ``"batch_hard"`` (default), ``"semihard"`` or ``"all"`` (above).

    Parts returned: ``{"triplet"}`` plus ``{"ce"}`` when ``ce_weight > 0``.

    Raises:
        LossConfigError: ``mining`` is not one of :data:`TRIPLET_MINING`.
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
        mining: str = "batch_hard",
    ) -> None:
        weights = dict(margin=margin, ce_weight=ce_weight)
        super().__init__(num_classes, embedding_dim, class_counts=class_counts, **weights)
        if mining not in TRIPLET_MINING:
            raise LossConfigError(
                f"triplet: mining must be one of {list(TRIPLET_MINING)}, got {mining!r}"
            )
        self.normalize = bool(normalize)
        self.mining = mining
        self.uses_head = self.ce_weight > 0
        distance = distances.LpDistance(p=2, power=1, normalize_embeddings=self.normalize)
        if mining == "batch_hard":
            self.miner = miners.BatchHardMiner(distance=distance)
        elif mining == "semihard":
            self.miner = miners.TripletMarginMiner(
                margin=self.margin, type_of_triplets="semihard", distance=distance
            )
        else:
            self.miner = None  # TripletMarginLoss forms every valid triplet itself
        self.triplet = losses.TripletMarginLoss(margin=self.margin, distance=distance)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        triplets = None if self.miner is None else self.miner(embeddings, labels)
        parts = {"triplet": self.triplet(embeddings, labels, triplets)}
        if self.uses_head:
            parts["ce"] = self.ce_weight * F.cross_entropy(logits, labels)
        return parts
