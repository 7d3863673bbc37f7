"""A FLOP counter for the networks, by forward hooks.

Convention (the one papers usually quote): FLOPs = 2 x multiply-accumulates (MACs) of

* ``nn.Conv2d``: ``out.numel() * (in_channels / groups) * kh * kw`` MACs;
* ``nn.Linear``: ``out.numel() * in_features`` MACs;
* any module that defines ``flops(inputs, output) -> int`` (already in FLOPs, i.e. 2 x MACs):
  used for work done with functional ops that no hook can see, such as the channel-affinity
  matrix products of :class:`ferembed.models.affinity.ChannelAffinity`.

Biases, BatchNorm, activations, pooling, additions and the dropout mask are not counted (they are
a few percent at most and every FLOP table in the literature leaves them out).
"""

from __future__ import annotations

import torch
from torch import nn

from ferembed.models._base import _device_of


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 1, 48, 48)) -> int:
    """FLOPs (2 x MACs of conv/linear layers) of one forward pass on a zero input.

    The model is run in eval mode under ``torch.no_grad`` and then put back in the mode it was in.

    Args:
        model: any module whose ``forward`` takes one ``input_size`` tensor.
        input_size: shape of the input, batch included; the count is for the whole batch.

    Returns:
        Total FLOPs as an int.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += 2 * output.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += 2 * output.numel() * m.in_features

    def custom_hook(m: nn.Module, inputs, output) -> None:
        nonlocal total
        total += int(m.flops(inputs, output))

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif callable(getattr(m, "flops", None)):
            handles.append(m.register_forward_hook(custom_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_size, device=_device_of(model)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
