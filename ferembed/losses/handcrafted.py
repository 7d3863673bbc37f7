"""Adaptively weighted handcrafted-feature losses (Xie, Shen & Duan, T-Cyb 2021; our design)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferembed.losses._base import FERLoss, LossConfigError, check_choice, check_positive
from ferembed.losses._descriptors import (
    DESCRIPTOR_NAMES,
    HOGParams,
    LBPParams,
    make_descriptor,
    prepare_descriptors,
)
from ferembed.losses._registry import register_loss
from ferembed.losses._weighting import WEIGHTING_METHODS, AdaptiveWeighting

SCHEDULES = ("linear", "cosine", "step")


def schedule_factor(schedule: str, epochs_done: int, active_epochs: int) -> float:
    """The early-training factor s(t) after ``t = epochs_done`` epochs.

    ``linear``: ``max(0, 1 - t/T0)``; ``cosine``: ``(1 + cos(pi t/T0))/2`` for t < T0, else 0;
    ``step``: 1 for t < T0, else 0. ``T0 = active_epochs``; s(0) = 1.
    """
    t, t0 = int(epochs_done), int(active_epochs)
    if t >= t0:
        return 0.0
    if schedule == "linear":
        return 1.0 - t / t0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / t0))
    return 1.0


@register_loss("handcrafted")
class HandcraftedFeatureLoss(FERLoss):
    r"""Softmax + feature losses tying the embedding to handcrafted descriptors early in training.

    For each descriptor k (HOG, LBP histograms) of the *un-augmented* image, precomputed by
    :meth:`prepare` and z-scored per dimension, a learnable projection ``P_k`` (``nn.Linear(D,
    D_k)``, a parameter of this loss) maps the embedding f(x) to the descriptor space:

    ``L_F,k = 1/(m D_k) sum_i ||P_k f(x_i) - h_k(x_i)||^2``   (mean squared error per dimension,
    so HOG's 900 and LBP's 360 dims are on one scale)

    ``L = CE + s(t) * sum_k w0_k * term_k``, where, by ``weighting``:

    * ``"fixed"``: ``term_k = L_F,k``;
    * ``"dwa"``: ``term_k = w_k(t) L_F,k``, ``w_k(t) = K exp(r_k/T) / sum_j exp(r_j/T)``,
      ``r_k = Lbar_k(t-1) / Lbar_k(t-2)`` from per-epoch mean losses (w = 1 in epochs 0 and 1);
    * ``"uncertainty"``: ``term_k = exp(-s_k) L_F,k + s_k`` with learned log-variances s_k.

    ``s(t)`` is the early-training schedule (:func:`schedule_factor`) after t finished epochs,
    reaching 0 at ``active_epochs``; :meth:`on_epoch_end` advances it and the DWA weights.

    The descriptors are looked up by the batch's dataset ``indices`` (``forward(...,
    indices=...)``), so they describe the stored image, not the augmented one the network saw:
    with flips/crops the target is the descriptor of the un-augmented face. In eval mode
    (``loss.eval()``) and once s(t) = 0 the feature terms are 0 and ``indices`` are not needed.

    Args:
        num_classes: C.
        embedding_dim: D.
        class_counts: unused.
        descriptors: which descriptors, a subset of ("hog", "lbp").
        weighting: "dwa" (default), "uncertainty" or "fixed".
        feature_weights: w0, a float or one per descriptor (default 1).
        temperature: DWA temperature T (default 2, as Liu et al.).
        active_epochs: T0, epochs after which the feature terms are off (default 10).
        schedule: "linear" (default), "cosine" or "step".
        image_size: side of the dataset's images (default 48).
        hog_orientations, hog_pixels_per_cell, hog_cells_per_block: HOG parameters
            (default 9, 8, 2: 900 dims at 48 px).
        lbp_points, lbp_radius, lbp_grid: uniform LBP P, R and the grid of histogram cells
            (default 8, 1, 6: 36 cells x 10 bins = 360 dims).

    Parts returned: ``{"ce", "feat_<descriptor>", ...}`` (weighted feature terms).
    """

    needs_indices = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        class_counts=None,
        descriptors: Sequence[str] = ("hog", "lbp"),
        weighting: str = "dwa",
        feature_weights: float | Sequence[float] = 1.0,
        temperature: float = 2.0,
        active_epochs: int = 10,
        schedule: str = "linear",
        image_size: int = 48,
        hog_orientations: int = 9,
        hog_pixels_per_cell: int = 8,
        hog_cells_per_block: int = 2,
        lbp_points: int = 8,
        lbp_radius: float = 1.0,
        lbp_grid: int = 6,
    ) -> None:
        super().__init__(num_classes, embedding_dim, class_counts=class_counts)
        if isinstance(descriptors, str):
            descriptors = (descriptors,)
        descriptors = tuple(descriptors)
        if not descriptors or len(set(descriptors)) != len(descriptors):
            raise LossConfigError(f"descriptors must be distinct names, got {list(descriptors)}")
        for d in descriptors:
            check_choice("descriptor", d, DESCRIPTOR_NAMES)
        self.descriptors = descriptors
        self.weighting = check_choice("weighting", weighting, WEIGHTING_METHODS)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.temperature = check_positive("temperature", temperature)
        if int(active_epochs) != active_epochs or active_epochs < 1:
            raise LossConfigError(f"active_epochs must be an integer >= 1, got {active_epochs}")
        self.active_epochs = int(active_epochs)
        self.image_size = int(image_size)
        k = len(descriptors)
        if isinstance(feature_weights, (int, float)):
            w0 = [float(feature_weights)] * k
            self.feature_weights = float(feature_weights)
        else:
            w0 = [float(w) for w in feature_weights]
            if len(w0) != k:
                raise LossConfigError(
                    f"feature_weights needs {k} values (one per descriptor), got {len(w0)}"
                )
            self.feature_weights = w0
        for w in w0:
            check_positive("feature_weights", w, allow_zero=True)
        self.register_buffer("w0", torch.tensor(w0))

        self.hog_orientations = int(hog_orientations)
        self.hog_pixels_per_cell = int(hog_pixels_per_cell)
        self.hog_cells_per_block = int(hog_cells_per_block)
        self.lbp_points = int(lbp_points)
        self.lbp_radius = float(lbp_radius)
        self.lbp_grid = int(lbp_grid)
        params = {
            "hog": HOGParams(
                self.hog_orientations, self.hog_pixels_per_cell, self.hog_cells_per_block
            ),
            "lbp": LBPParams(self.lbp_points, self.lbp_radius, self.lbp_grid),
        }
        self._descs = [make_descriptor(d, params[d]) for d in descriptors]
        try:
            dims = {d.name: d.dim(self.image_size) for d in self._descs}
        except ValueError as exc:
            raise LossConfigError(str(exc)) from None
        self.descriptor_dims = dims
        self.projections = nn.ModuleDict(
            {n: nn.Linear(self.embedding_dim, dims[n]) for n in descriptors}
        )
        self.adaptive = AdaptiveWeighting(k, self.weighting, temperature=self.temperature)
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.int64))
        for n in descriptors:
            # Per-dataset targets: moved with .to(device) but not saved in checkpoints.
            self.register_buffer(f"target_{n}", None, persistent=False)

    # ----------------------------------------------------------------------------------------

    def prepare(self, dataset, *, cache_dir=None) -> None:
        """Compute (or read from ``cache_dir``) the z-scored descriptors of every image of
        ``dataset`` (the training set; ``indices`` in ``forward`` index it).

        Args:
            dataset: a FERDataset of ``image_size`` images.
            cache_dir: folder for ``handcrafted-<descriptor>-<key>.npy`` files, or None.
        """
        arrays = prepare_descriptors(
            dataset, self._descs, image_size=self.image_size, cache_dir=cache_dir
        )
        device = self.w0.device
        for n in self.descriptors:
            setattr(self, f"target_{n}", torch.from_numpy(arrays[n]).to(device))

    def schedule_value(self) -> float:
        """s(t) for the current epoch."""
        return schedule_factor(self.schedule, int(self.epochs_done), self.active_epochs)

    def on_epoch_end(self, epoch: int) -> None:
        """Close epoch ``epoch`` (0-based): t = epoch + 1 epochs done; update DWA weights."""
        self.epochs_done.fill_(int(epoch) + 1)
        self.adaptive.end_epoch()

    def feature_losses(self, embeddings: Tensor, indices: Tensor) -> Tensor:
        """(K,) unweighted ``L_F,k`` for the batch. embeddings (B, D), indices (B,)."""
        losses = []
        for n in self.descriptors:
            target = getattr(self, f"target_{n}")
            if target is None:
                raise RuntimeError(
                    "handcrafted loss: call loss.prepare(train_dataset) before training"
                )
            if target.device != embeddings.device:
                target = target.to(embeddings.device)
                setattr(self, f"target_{n}", target)
            idx = indices.to(device=target.device, dtype=torch.int64)
            n_rows = target.shape[0]
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= n_rows:
                raise ValueError(
                    f"handcrafted loss: indices in [{lo}, {hi}] but the prepared dataset has "
                    f"{n_rows} samples (indices must index the dataset given to prepare())"
                )
            pred = self.projections[n](embeddings)
            losses.append(F.mse_loss(pred, target[idx].to(pred.dtype)))
        return torch.stack(losses)

    def compute(self, embeddings, logits, labels, *, indices=None) -> dict[str, Tensor]:
        parts = {"ce": F.cross_entropy(logits, labels)}
        s = self.schedule_value()
        if not self.training or s == 0.0:
            zero = embeddings.new_zeros(())
            parts.update({f"feat_{n}": zero for n in self.descriptors})
            return parts
        if indices is None:
            raise ValueError(
                "handcrafted loss needs indices= (the batch's positions in the prepared "
                "dataset) in training mode"
            )
        losses = self.feature_losses(embeddings, indices)
        self.adaptive.record(losses)
        terms = s * self.w0.to(losses.dtype) * self.adaptive(losses)
        parts.update({f"feat_{n}": terms[i] for i, n in enumerate(self.descriptors)})
        return parts

    def stats(self) -> dict[str, float]:
        w = self.adaptive.current().tolist()
        out = {"schedule": self.schedule_value()}
        out.update({f"w_{n}": float(v) for n, v in zip(self.descriptors, w, strict=True)})
        return out
