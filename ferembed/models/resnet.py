"""ResNet-18 adapted to 48x48 faces.

The ImageNet stem (7x7 stride-2 conv + 3x3 max-pool) would shrink a 48x48 face to 12x12 before
the first residual stage; as for CIFAR, it is replaced by a 3x3 stride-1 conv and no max-pool, so
the four stages see 48, 24, 12 and 6 pixels. Stage widths are 64-128-256-512 times ``width``
(``width=0.5`` gives a ~2.8 M-parameter variant with a quarter of the FLOPs).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ferembed.models._base import FERNet, ModelConfigError, conv_bn_relu, init_weights
from ferembed.models._registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or cin != cout:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNet(FERNet):
    """ResNet with a small-input stem.

    Args:
        num_classes: C.
        layers: BasicBlocks per stage.
        width: channel multiplier of the 64-128-256-512 stage widths (>= 8 channels each).
        **neck: embedding_dim, in_chans, emb_norm, drop_rate (see :class:`FERNet`).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        layers: Sequence[int] = (2, 2, 2, 2),
        width: float = 1.0,
        **neck,
    ) -> None:
        super().__init__(num_classes, **neck)
        if not width > 0:
            raise ModelConfigError(f"resnet width must be > 0, got {width}")
        if len(layers) != 4 or min(layers) < 1:
            raise ModelConfigError(f"resnet layers must be 4 positive counts, got {list(layers)}")
        widths = [max(8, round(c * width)) for c in (64, 128, 256, 512)]
        stages: list[nn.Module] = [conv_bn_relu(self.in_chans, widths[0])]
        cin = widths[0]
        for i, (n, w) in enumerate(zip(layers, widths, strict=True)):
            for j in range(n):
                stages.append(BasicBlock(cin, w, stride=2 if (i > 0 and j == 0) else 1))
                cin = w
        self.trunk = nn.Sequential(*stages)
        self.build_neck(cin)
        init_weights(self)


@register_model
def resnet18(num_classes: int, *, width: float = 1.0, **neck) -> ResNet:
    """ResNet-18 for 48x48 input (3x3 stride-1 stem, no max-pool), ~11 M parameters at width 1."""
    return ResNet(num_classes, layers=(2, 2, 2, 2), width=width, **neck)
