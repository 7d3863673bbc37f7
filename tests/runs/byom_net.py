"""A small network defined outside ferembed, as a user would write it (for the --model tests).

``create()`` is the factory that ``--model python:byom_net.py:create`` calls. Its forward returns
``(embedding, logits)``; ``embed`` is the layer that gives the embedding, ``head`` the logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

CLASSES = ("angry", "happy", "sad")  # canonical order, as the imagefolder loader lists them
EMB_DIM = 12
CHANNELS = 3
MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = len(CLASSES), dim: int = EMB_DIM) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(CHANNELS, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.embed = nn.Linear(32, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(self.features(x))
        return emb, self.head(emb)


def create() -> nn.Module:
    """An untrained TinyNet (the weights come from --weights)."""
    return TinyNet()


def not_a_module():
    return {"weights": 1}


def trained(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet().eval()


def make_imagefolder(root: Path, per_class: int = 5, size: int = 48) -> Path:
    """ROOT/test/<class>/*.png random grayscale faces; returns ROOT."""
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / "test" / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(img, "L").save(root / "test" / c / f"{c}_{i}.png")
    return root


def direct_forward(net: nn.Module, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and logits of every image, in the loader's order (class, then file name),
    computed here with PIL and torch only: pixels / 255, minus MEAN, over STD, per channel."""
    files = sorted(
        (root / "test").glob("*/*.png"), key=lambda p: (CLASSES.index(p.parent.name), p.name)
    )
    gray = np.stack([np.asarray(Image.open(f).convert("L"), np.float32) / 255.0 for f in files])
    x = torch.from_numpy(gray)[:, None].repeat(1, CHANNELS, 1, 1)
    x = (x - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)
    with torch.no_grad():
        emb, logits = net(x)
    return emb.numpy(), logits.numpy()
