"""AffNet: an efficient CNN of affinity-convolution blocks (after Fang et al., Sensors 2023).

The paper's abstract names an "affinity convolution (AC) module" that cuts compute but does not
describe it, so this is **our design**, built to be cheap and to use pairwise channel affinity:

**Affinity-convolution block** ``AffinityConvBlock(cin, cout, stride)``::

    y = ReLU(BN(depthwise3x3(x, stride)))          # spatial mixing, 9 MACs per pixel per channel
    y = BN(pointwise1x1(y))                        # channel mixing (cin -> cout)
    y = ChannelAffinity(y)                         # reweight channels by their affinity
    out = ReLU(y + shortcut(x))                    # identity, or avg-pool + 1x1 conv + BN

**Channel affinity** ``ChannelAffinity(C)`` on a map ``Y`` of shape (B, C, H, W):

1. Flatten each channel map and L2-normalise it: ``u_c = Y_c / ||Y_c||``, (B, C, HW).
2. Cosine affinity between channels: ``A = U U^T``, (B, C, C), entries in [-1, 1].
3. Row softmax with temperature tau: ``P = softmax(A / tau)``; row c says which channels respond
   where channel c responds.
4. Channel descriptors ``d = mean_HW(Y)`` (B, C); affinity-aggregated context ``z = P d``: each
   channel's descriptor smoothed over the channels that co-activate with it.
5. Per-channel gates ``w = sigmoid(MLP(z))`` with a bottleneck MLP (C -> C/r -> C) and the output
   ``Y * w``.

It is a squeeze-and-excitation gate whose squeeze is affinity-aware: channels that fire on the same
facial region share evidence before being gated, so a region (brows, mouth corners) is emphasised
or suppressed as a group. The affinity costs ``C^2 * HW`` MACs, which
:meth:`ChannelAffinity.flops` reports to :func:`~ferembed.models.count_flops`.

**Network** ``affnet`` for 48x48: a 3x3 conv stem (32 channels, stride 1), then three stages
(64, 128, 256 channels) of two AC blocks each, the first of each stage with stride 2
(48 -> 24 -> 12 -> 6), then the shared embedding path. About 0.3 M parameters and 0.06 GFLOPs per
48x48 face, versus ~1.2 M and ~0.24 GFLOPs for ``vgg``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferembed.models._base import FERNet, ModelConfigError, conv_bn_relu, init_weights
from ferembed.models._registry import register_model


class ChannelAffinity(nn.Module):
    """Channel reweighting from the channels' pairwise cosine affinity (see the module docstring).

    Args:
        channels: C.
        reduction: bottleneck ratio r of the gate MLP (hidden width max(8, C // r)).
        temperature: tau of the row softmax over the cosine affinities.
    """

    def __init__(self, channels: int, *, reduction: int = 4, temperature: float = 0.1) -> None:
        super().__init__()
        if not temperature > 0:
            raise ModelConfigError(f"affinity temperature must be > 0, got {temperature}")
        hidden = max(8, channels // int(reduction))
        self.temperature = float(temperature)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def affinity(self, y: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, C) row-stochastic channel affinity ``softmax(U U^T / tau)``."""
        u = F.normalize(y.flatten(2), dim=2, eps=1e-6)
        return torch.softmax(torch.bmm(u, u.transpose(1, 2)) / self.temperature, dim=-1)

    def forward(self, y: Tensor) -> Tensor:
        p = self.affinity(y)
        d = y.mean(dim=(2, 3))
        z = torch.bmm(p, d.unsqueeze(-1)).squeeze(-1)
        w = torch.sigmoid(self.mlp(z))
        return y * w[:, :, None, None]

    def flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """FLOPs of the two matrix products (the MLP is counted by its Linear hooks)."""
        b, c, h, w = inputs[0].shape
        return 2 * (b * c * c * h * w + b * c * c)


class AffinityConvBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 convolution, channel-affinity gate, residual.

    Args:
        cin: input channels.
        cout: output channels.
        stride: 1, or 2 to halve the resolution.
        reduction, temperature: see :class:`ChannelAffinity`.
    """

    def __init__(
        self, cin: int, cout: int, stride: int = 1, *, reduction: int = 4, temperature: float = 0.1
    ) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.affinity = ChannelAffinity(cout, reduction=reduction, temperature=temperature)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or cin != cout:
            pool: nn.Module = (
                nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False)
                if stride > 1
                else nn.Identity()
            )
            self.shortcut: nn.Module = nn.Sequential(
                pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.dw(x)))
        y = self.affinity(self.bn2(self.pw(y)))
        return self.relu(y + self.shortcut(x))


class AffNet(FERNet):
    """Stem + stages of :class:`AffinityConvBlock`.

    Args:
        num_classes: C.
        stem_width: channels of the 3x3 stride-1 stem.
        widths: channels of each stage; the first block of every stage has stride 2.
        blocks_per_stage: AC blocks per stage.
        reduction, temperature: see :class:`ChannelAffinity`.
        **neck: embedding_dim, in_chans, emb_norm, drop_rate (see :class:`FERNet`).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        stem_width: int = 32,
        widths: Sequence[int] = (64, 128, 256),
        blocks_per_stage: int = 2,
        reduction: int = 4,
        temperature: float = 0.1,
        **neck,
    ) -> None:
        super().__init__(num_classes, **neck)
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1 or stem_width < 1 or blocks_per_stage < 1:
            raise ModelConfigError(
                f"affnet needs positive widths, stem_width and blocks_per_stage, got "
                f"widths={widths}, stem_width={stem_width}, blocks_per_stage={blocks_per_stage}"
            )
        layers: list[nn.Module] = [conv_bn_relu(self.in_chans, stem_width)]
        cin = stem_width
        for w in widths:
            for j in range(blocks_per_stage):
                layers.append(
                    AffinityConvBlock(
                        cin,
                        w,
                        stride=2 if j == 0 else 1,
                        reduction=reduction,
                        temperature=temperature,
                    )
                )
                cin = w
        self.trunk = nn.Sequential(*layers)
        self.build_neck(cin)
        init_weights(self)


#: ``affnet``: affinity-convolution network, ~0.3 M parameters (see the module docstring).
register_model(AffNet, name="affnet")
