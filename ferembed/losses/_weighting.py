"""Weights: per-class weights from class counts, and adaptive weights between several loss terms.

Class weights (pure functions of the (C,) training counts):

* :func:`inverse_frequency_weights` -- ``w_j = (1/N_j) / mean_k(1/N_k)`` (mean 1 over classes).
* :func:`min_count_weights` -- ``w_j = N_min / N_j`` (the rarest class gets 1).

Adaptive weighting of K loss terms L_1..L_K (:class:`AdaptiveWeighting`):

* ``"fixed"``: term_k = L_k.
* ``"dwa"`` (dynamic weight averaging, Liu, Johns & Davison, CVPR 2019):
  ``w_k(t) = K * exp(r_k / T) / sum_j exp(r_j / T)`` with ``r_k = L_k(t-1) / L_k(t-2)`` the ratio
  of the last two *per-epoch mean* losses; ``w_k = 1`` for the first two epochs. term_k = w_k L_k.
* ``"uncertainty"`` (Kendall, Gal & Cipolla, CVPR 2018): learned log-variances s_k (initial 0),
  term_k = ``exp(-s_k) * L_k + s_k``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

WEIGHTING_METHODS = ("fixed", "dwa", "uncertainty")


def inverse_frequency_weights(class_counts) -> np.ndarray:
    """Inverse-frequency class weights normalised to mean 1 over classes.

    ``w_j = (1 / N_j) / ((1/C) * sum_k 1 / N_k)``. The normalisation keeps the weights readable
    (a balanced set gives all ones); it does not change a weighted-mean cross-entropy.

    Args:
        class_counts: (C,) positive counts.

    Returns:
        (C,) float64 weights with mean 1.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if np.any(counts <= 0):
        raise ValueError(f"class counts must be positive, got {counts.tolist()}")
    inv = 1.0 / counts
    return inv / inv.mean()


def min_count_weights(class_counts) -> np.ndarray:
    """Class weights ``w_j = N_min / N_j`` (Ngo & Yoon 2020): the rarest class gets 1.

    Args:
        class_counts: (C,) positive counts.

    Returns:
        (C,) float64 weights in (0, 1].
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if np.any(counts <= 0):
        raise ValueError(f"class counts must be positive, got {counts.tolist()}")
    return counts.min() / counts


def dwa_weights(last: Tensor, before_last: Tensor, temperature: float) -> Tensor:
    """Dynamic weight averaging (Liu et al. 2019).

    ``w_k = K * exp(r_k / T) / sum_j exp(r_j / T)`` with ``r_k = last_k / before_last_k``.

    Args:
        last: (K,) per-epoch mean losses of epoch t-1.
        before_last: (K,) per-epoch mean losses of epoch t-2.
        temperature: T > 0; larger T gives more even weights.

    Returns:
        (K,) weights summing to K.
    """
    r = last / before_last.clamp_min(1e-12)
    return last.numel() * torch.softmax(r / temperature, dim=0)


class AdaptiveWeighting(nn.Module):
    """Combine K loss terms with fixed, DWA or uncertainty weights (see the module docstring).

    Usage: ``terms = w(losses)`` each step (``losses`` (K,) with grad), ``w.record(losses)`` to
    accumulate the epoch means DWA needs, ``w.end_epoch()`` after each epoch.

    Args:
        num_terms: K.
        method: "fixed", "dwa" or "uncertainty".
        temperature: DWA temperature T.
    """

    def __init__(self, num_terms: int, method: str = "dwa", *, temperature: float = 2.0) -> None:
        super().__init__()
        if method not in WEIGHTING_METHODS:
            raise ValueError(f"weighting must be one of {list(WEIGHTING_METHODS)}, got {method!r}")
        self.num_terms = int(num_terms)
        self.method = method
        self.temperature = float(temperature)
        k = self.num_terms
        # DWA state: running sums for the current epoch, the last two epoch means, the weights.
        self.register_buffer("epoch_sum", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("epoch_batches", torch.zeros((), dtype=torch.int64))
        self.register_buffer("history", torch.zeros(2, k, dtype=torch.float64))  # [t-2, t-1]
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("weights", torch.ones(k))
        if method == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(k))

    def forward(self, losses: Tensor) -> Tensor:
        """(K,) weighted terms from (K,) losses."""
        if self.method == "uncertainty":
            s = self.log_vars.to(losses.dtype)
            return torch.exp(-s) * losses + s
        if self.method == "dwa":
            return self.weights.to(losses.dtype) * losses
        return losses

    @torch.no_grad()
    def record(self, losses: Tensor) -> None:
        """Add one batch's (K,) unweighted losses to the current epoch's mean."""
        self.epoch_sum += losses.detach().to(self.epoch_sum)
        self.epoch_batches += 1

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Close the epoch: store its mean losses and, for DWA, recompute the weights."""
        if int(self.epoch_batches) == 0:
            return
        mean = self.epoch_sum / self.epoch_batches
        self.history[0] = self.history[1]
        self.history[1] = mean
        self.epochs_seen += 1
        self.epoch_sum.zero_()
        self.epoch_batches.zero_()
        if self.method == "dwa" and int(self.epochs_seen) >= 2:
            w = dwa_weights(self.history[1], self.history[0], self.temperature)
            self.weights.copy_(w.to(self.weights))

    def current(self) -> Tensor:
        """(K,) the multiplier of each L_k now (``exp(-s_k)`` for uncertainty)."""
        if self.method == "uncertainty":
            return torch.exp(-self.log_vars.detach())
        return self.weights.clone()
