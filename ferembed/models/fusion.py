"""Two-stream full-face + partial-image network (the PI&DML / EMLF setting, Yu & Bai 2020).

One stream embeds the full face, the other the *partial image* (the expression-related regions
assembled by :class:`ferembed.data.partial.PartialImage`), and the two embeddings are fused::

    x (B, 1, 48, 48) full face ----------------> full stream    -> e_f (B, D)
                      \\-- PartialImage(x) ----> partial stream -> e_p (B, D)
    embedding = BN(FC([e_f, e_p]))  (B, D)   -> head -> logits (B, C)

The partial image is computed *inside* ``forward`` from the full normalised face, so a checkpoint
embeds from the full image alone, like every other model. Each stream is any registered
single-trunk architecture (the same one for both, or one each); the streams' own heads are unused
and dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ferembed.models._base import FERNet, ModelConfigError, init_weights
from ferembed.models._registry import create_model, register_model


class PartialInput(nn.Module):
    """Normalised full faces -> normalised partial images, with :class:`PartialImage`.

    The partial image is made of crops resized bilinearly, which commutes with the affine input
    normalisation, so it is applied to the normalised tensor directly. Parameter-free (nothing in
    the state dict); ``PartialImage`` (default regions of an aligned 48x48 face) is imported
    lazily so the models package does not need the data package at import time.
    """

    def __init__(self) -> None:
        super().__init__()
        from ferembed.data.partial import PartialImage

        self.partial = PartialImage()

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, 48, 48) float -> (B, 1, 48, 48) float partial images (same value range)."""
        return self.partial(x)


class TwoStreamNet(FERNet):
    """Full-face stream + partial-image stream, embeddings concatenated and projected.

    Args:
        num_classes: C.
        full_arch: registered architecture of the full-face stream.
        partial_arch: architecture of the partial-image stream (None: same as ``full_arch``).
        stream_kwargs: keywords for the full stream's builder (and the partial stream's when
            ``partial_stream_kwargs`` is None).
        partial_stream_kwargs: keywords for the partial stream's builder.
        embedding_dim: D, of each stream and of the fused embedding.
        in_chans, emb_norm: see :class:`FERNet`; ``drop_rate`` applies to the concatenation.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        full_arch: str = "vgg_small",
        partial_arch: str | None = None,
        stream_kwargs: dict | None = None,
        partial_stream_kwargs: dict | None = None,
        embedding_dim: int = 128,
        in_chans: int = 1,
        emb_norm: str = "bn",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim=embedding_dim,
            in_chans=in_chans,
            emb_norm=emb_norm,
            drop_rate=drop_rate,
        )
        if full_arch == "fusion" or partial_arch == "fusion":
            raise ModelConfigError("fusion streams must be single-stream architectures")
        stream_kwargs = dict(stream_kwargs or {})
        partial_kwargs = dict(
            stream_kwargs if partial_stream_kwargs is None else partial_stream_kwargs
        )
        self.full = create_model(
            full_arch, num_classes, embedding_dim=embedding_dim, in_chans=in_chans, **stream_kwargs
        )
        self.partial = create_model(
            partial_arch or full_arch,
            num_classes,
            embedding_dim=embedding_dim,
            in_chans=in_chans,
            **partial_kwargs,
        )
        # Only the streams' forward_features are used.
        self.full.head = nn.Identity()
        self.partial.head = nn.Identity()
        self.to_partial = PartialInput()
        self.drop = nn.Dropout(self.drop_rate) if self.drop_rate > 0 else nn.Identity()
        self.embed = nn.Linear(2 * embedding_dim, embedding_dim)
        self.emb_norm = nn.BatchNorm1d(embedding_dim) if emb_norm == "bn" else nn.Identity()
        self.head = nn.Linear(embedding_dim, num_classes)
        self.num_features = 2 * embedding_dim
        for m in (self.embed, self.emb_norm, self.head):
            init_weights(m)
        self.input_mode = "fused"

    def forward_streams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 1, H, W) full faces -> ((B, D) full-stream, (B, D) partial-stream embeddings)."""
        return self.full.forward_features(x), self.partial.forward_features(self.to_partial(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) normalised full faces -> (B, D) fused embedding."""
        e_full, e_part = self.forward_streams(x)
        return self.embed_pooled(torch.cat([e_full, e_part], dim=1))

    def forward_trunk(self, x: Tensor) -> Tensor:
        raise NotImplementedError("the fusion model has two trunks; use forward_streams")

    def set_input_mode(self, mode: str) -> TwoStreamNet:
        if mode != "fused":
            raise ModelConfigError(
                f"the fusion model always runs input_mode 'fused', got {mode!r}; train a "
                f"single-stream architecture for 'full' or 'partial'"
            )
        return self


@register_model
def fusion(
    num_classes: int,
    *,
    embedding_dim: int = 128,
    in_chans: int = 1,
    full_arch: str = "vgg_small",
    partial_arch: str | None = None,
    stream_kwargs: dict | None = None,
    partial_stream_kwargs: dict | None = None,
    emb_norm: str = "bn",
    drop_rate: float = 0.0,
) -> TwoStreamNet:
    """Two-stream full + partial network for ``input_mode="fused"`` (EMLF)."""
    return TwoStreamNet(
        num_classes,
        full_arch=full_arch,
        partial_arch=partial_arch,
        stream_kwargs=stream_kwargs,
        partial_stream_kwargs=partial_stream_kwargs,
        embedding_dim=embedding_dim,
        in_chans=in_chans,
        emb_norm=emb_norm,
        drop_rate=drop_rate,
    )
