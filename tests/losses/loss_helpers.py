"""Shared by the center-style loss tests: a loss whose centers are set by hand."""

from __future__ import annotations

import torch

from ferembed.losses import create_loss


def loss_with_centers(name: str, centers, **params):
    """``create_loss(name, C, D, **params)`` with its (C, D) ``centers`` buffer set by hand."""
    c = torch.tensor(centers)
    loss = create_loss(name, c.shape[0], c.shape[1], **params)
    with torch.no_grad():
        loss.centers.copy_(c)
    return loss
