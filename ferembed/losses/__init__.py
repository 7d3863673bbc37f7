"""Losses for FER metric learning, built by name: ``create_loss("center", C, D, **params)``.

Every loss is a :class:`FERLoss` (see ``docs/losses.md`` for the formulas and the trainer
contract). Importing this package registers all of them.
"""

from ferembed.losses._base import FERLoss, LossConfigError
from ferembed.losses._registry import create_loss, get_loss_class, list_losses, register_loss
from ferembed.losses.arcface import ArcFaceLoss
from ferembed.losses.center import CenterLoss
from ferembed.losses.emlf import EMLFLoss
from ferembed.losses.handcrafted import HandcraftedFeatureLoss
from ferembed.losses.island import IslandLoss
from ferembed.losses.separate import SeparateLoss
from ferembed.losses.softmax import SoftmaxLoss
from ferembed.losses.triplet import TripletLoss
from ferembed.losses.weighted_cluster import WeightedClusterLoss

__all__ = [
    "ArcFaceLoss",
    "CenterLoss",
    "EMLFLoss",
    "FERLoss",
    "HandcraftedFeatureLoss",
    "IslandLoss",
    "LossConfigError",
    "SeparateLoss",
    "SoftmaxLoss",
    "TripletLoss",
    "WeightedClusterLoss",
    "create_loss",
    "get_loss_class",
    "list_losses",
    "register_loss",
]
