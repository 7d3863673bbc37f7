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

from ferembed._partial import PartialInput
from ferembed.models._base import FERNet, ModelConfigError, init_weights
from ferembed.models._registry import create_model, register_model


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
        **neck: in_chans, emb_norm (see :class:`FERNet`); ``drop_rate`` applies to the
            concatenation.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        full_arch: str = "vgg_small",
        partial_arch: str | None = None,
        stream_kwargs: dict | None = None,
        partial_stream_kwargs: dict | None = None,
        **neck,
    ) -> None:
        super().__init__(num_classes, **neck)
        if full_arch == "fusion" or partial_arch == "fusion":
            raise ModelConfigError("fusion streams must be single-stream architectures")
        stream_kwargs = dict(stream_kwargs or {})
        partial_kwargs = dict(
            stream_kwargs if partial_stream_kwargs is None else partial_stream_kwargs
        )
        streams = dict(embedding_dim=self.embedding_dim, in_chans=self.in_chans)
        self.full = create_model(full_arch, num_classes, **streams, **stream_kwargs)
        self.partial = create_model(
            partial_arch or full_arch, num_classes, **streams, **partial_kwargs
        )
        # Only the streams' forward_features are used.
        self.full.head = nn.Identity()
        self.partial.head = nn.Identity()
        self.to_partial = PartialInput()
        # The fused neck: the concatenated stream embeddings (2D) -> FC -> BN -> (B, D).
        self.build_neck(2 * self.embedding_dim)
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


#: ``fusion``: the two-stream full + partial network for ``input_mode="fused"`` (EMLF).
register_model(TwoStreamNet, name="fusion")
