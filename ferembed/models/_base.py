"""The network interface every ferembed model implements.

A :class:`FERNet` maps a batch of normalised grayscale faces to an embedding and to class logits
through two separate paths (timm's ``forward_features`` / ``forward_head`` split)::

    x (B, in_chans, H, W) --trunk--> (B, F, h, w) --avg pool--> (B, F) --dropout--> FC --> BN
        = embedding (B, D)  --head (linear)--> logits (B, C)

The embedding is *never* recovered from the logits. It is the output of a dedicated fully
connected layer (``embed``) followed by ``BatchNorm1d`` (``emb_norm="bn"``, the default) or by
nothing (``emb_norm="none"``). There is no activation after it, so embeddings span the whole space
(center-style losses pull them to arbitrary class centers; cosine losses see signed directions).
The BN keeps the embedding scale stable whatever the loss does to it, which keeps a fixed
center-loss weight meaningful across architectures; turn it off for losses that normalise
embeddings themselves if you prefer raw features.

Input convention: float32 ``(B, in_chans, H, W)`` normalised as ``(x / 255 - 0.5) / 0.5``
(:func:`normalize_images`); the architectures are designed for 48x48 but accept any size (global
average pooling).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ferembed._partial import PartialInput
from ferembed.errors import FerembedError

#: Normalisation of uint8 pixels into the model's input range [-1, 1].
INPUT_MEAN = 0.5
INPUT_STD = 0.5
#: Native input size of the architectures (FER2013 crops).
INPUT_SIZE = 48
#: Input modes a model can be trained and embedded in (recorded in the checkpoint sidecar).
INPUT_MODES = ("full", "partial", "fused")


class ModelConfigError(FerembedError, ValueError):
    """A bad model name, keyword or input mode (a ValueError the CLI shows as one line)."""


def normalize_images(images: Tensor) -> Tensor:
    """uint8 images to the model's float input.

    Args:
        images: (B, H, W) or (B, 1, H, W) uint8 (or float in [0, 255]).

    Returns:
        (B, 1, H, W) float32 in [-1, 1]: ``(x / 255 - 0.5) / 0.5``.
    """
    x = images.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return (x / 255.0 - INPUT_MEAN) / INPUT_STD


class FERNet(nn.Module):
    """Base class: a conv trunk, a pooled embedding path and a linear head.

    Subclasses build ``self.trunk`` (an ``nn.Module`` mapping ``(B, in_chans, H, W)`` to a
    feature map ``(B, F, h, w)``) and then call :meth:`build_neck` with F. Models that are not a
    single trunk (the two-stream fusion model) override :meth:`forward_features`.

    Attributes:
        num_classes: C, the width of the head.
        embedding_dim: D, the width of the embedding.
        in_chans: input channels (1 for grayscale).
        num_features: F, channels of the trunk's output map.
        input_mode: "full" (the model sees the face), "partial" (the model sees
            :class:`ferembed.data.partial.PartialImage` of the face, computed inside
            :meth:`forward_features`), or "fused" (two-stream model). Whatever the mode, callers
            always pass the full normalised face.
        arch: registry name, set by :func:`ferembed.models.create_model`.
        model_kwargs: the extra keyword arguments it was built with (for the checkpoint).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        embedding_dim: int = 128,
        in_chans: int = 1,
        emb_norm: str = "bn",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 1:
            raise ModelConfigError(f"num_classes must be an integer >= 1, got {num_classes}")
        if int(embedding_dim) != embedding_dim or embedding_dim < 1:
            raise ModelConfigError(f"embedding_dim must be an integer >= 1, got {embedding_dim}")
        if int(in_chans) != in_chans or in_chans < 1:
            raise ModelConfigError(f"in_chans must be an integer >= 1, got {in_chans}")
        if emb_norm not in ("bn", "none"):
            raise ModelConfigError(f"emb_norm must be 'bn' or 'none', got {emb_norm!r}")
        if not 0.0 <= drop_rate < 1.0:
            raise ModelConfigError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.in_chans = int(in_chans)
        self.emb_norm_kind = emb_norm
        self.drop_rate = float(drop_rate)
        self.num_features = 0
        self.input_mode = "full"
        # Parameter-free; replaced by a PartialImage transform for input_mode="partial".
        self.input_transform: nn.Module | None = None
        self.arch = type(self).__name__.lower()
        self.model_kwargs: dict = {}

    def build_neck(self, num_features: int) -> None:
        """Create the embedding path (pool, dropout, FC, BN) and the head for F input features."""
        self.num_features = int(num_features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(self.drop_rate) if self.drop_rate > 0 else nn.Identity()
        self.embed = nn.Linear(self.num_features, self.embedding_dim)
        self.emb_norm = (
            nn.BatchNorm1d(self.embedding_dim) if self.emb_norm_kind == "bn" else nn.Identity()
        )
        self.head = nn.Linear(self.embedding_dim, self.num_classes)

    # ----------------------------------------------------------------------------------------

    def forward_trunk(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) normalised images -> (B, F, h, w) feature map."""
        return self.trunk(x)

    def embed_pooled(self, feats: Tensor) -> Tensor:
        """(B, F) pooled features -> (B, D) embedding (dropout, FC, BN)."""
        return self.emb_norm(self.embed(self.drop(feats)))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) normalised full faces -> (B, D) embedding (pre-logits)."""
        if self.input_transform is not None:
            x = self.input_transform(x)
        feats = self.pool(self.forward_trunk(x)).flatten(1)
        return self.embed_pooled(feats)

    def forward_head(self, emb: Tensor) -> Tensor:
        """(B, D) embedding -> (B, C) logits."""
        return self.head(emb)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, in_chans, H, W) -> ((B, D) embedding, (B, C) logits)."""
        emb = self.forward_features(x)
        return emb, self.forward_head(emb)

    # ----------------------------------------------------------------------------------------

    def set_input_mode(self, mode: str) -> FERNet:
        """Select what the trunk sees; returns ``self``. The state dict does not change.

        Args:
            mode: "full" or "partial" ("fused" needs the two-stream ``fusion`` model).
        """
        if mode not in INPUT_MODES:
            raise ModelConfigError(f"input_mode must be one of {list(INPUT_MODES)}, got {mode!r}")
        if mode == "fused":
            raise ModelConfigError(
                f"input_mode 'fused' needs the two-stream model: create_model('fusion', ..., "
                f"full_arch={self.arch!r}) (the trainer does this for you)"
            )
        if mode == "partial":
            self.input_transform = PartialInput()
        else:
            self.input_transform = None
        self.input_mode = mode
        return self

    def num_params(self) -> int:
        """Number of parameters (trainable or not; buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"in_chans={self.in_chans}, input_mode={self.input_mode!r}"
        )


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, unit BN, small normal linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv_bn_relu(cin: int, cout: int, *, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
