"""VGG-style FER CNN for 48x48 grayscale faces.

The classic FER2013 baseline shape: four stages of ``convs_per_stage`` 3x3 conv-BN-ReLU layers,
each stage followed by a 2x2 max-pool (48 -> 24 -> 12 -> 6 -> 3), then global average pooling
into the shared embedding path of :class:`~ferembed.models._base.FERNet`.

=============  ====================  =========  =====================
name           widths                params     FLOPs (48x48, 1 img)
=============  ====================  =========  =====================
``vgg``        32, 64, 128, 256      ~1.2 M     ~0.24 G
``vgg_small``  16, 32, 64, 128       ~0.31 M    ~0.06 G
=============  ====================  =========  =====================

(params with embedding_dim=128 and 7 classes; ``bench/bench_models.py`` prints exact numbers.)
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ferembed.models._base import FERNet, ModelConfigError, conv_bn_relu, init_weights
from ferembed.models._registry import register_model


class VGGNet(FERNet):
    """Stacks of 3x3 conv-BN-ReLU with max-pooling between stages.

    Args:
        num_classes: C.
        widths: output channels of each stage; one 2x2 max-pool follows every stage.
        convs_per_stage: 3x3 convolutions per stage.
        **neck: embedding_dim, in_chans, emb_norm, drop_rate (see :class:`FERNet`).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        widths: Sequence[int] = (32, 64, 128, 256),
        convs_per_stage: int = 2,
        **neck,
    ) -> None:
        super().__init__(num_classes, **neck)
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1 or convs_per_stage < 1:
            raise ModelConfigError(
                f"vgg needs positive widths and convs_per_stage >= 1, got widths={widths}, "
                f"convs_per_stage={convs_per_stage}"
            )
        layers: list[nn.Module] = []
        cin = self.in_chans
        for w in widths:
            for _ in range(convs_per_stage):
                layers.append(conv_bn_relu(cin, w))
                cin = w
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.trunk = nn.Sequential(*layers)
        self.build_neck(cin)
        init_weights(self)


#: ``vgg``: VGG-style FER CNN, ~1.2 M parameters (widths 32-64-128-256, two convs per stage).
register_model(VGGNet, name="vgg")


@register_model
def vgg_small(
    num_classes: int,
    *,
    widths: Sequence[int] = (16, 32, 64, 128),
    convs_per_stage: int = 2,
    **neck,
) -> VGGNet:
    """Quarter-width VGG for CPU demos, ~0.31 M parameters (widths 16-32-64-128)."""
    return VGGNet(num_classes, widths=widths, convs_per_stage=convs_per_stage, **neck)
