import math

import pytest
import torch

from ferembed.losses import create_loss


def test_value_by_hand():
    s, m = 2.0, 0.5
    loss = create_loss("arcface", 2, 2, margin=m, scale=s)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # (D, C): w0=(1,0), w1=(0,1)
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    out = loss(x, None, torch.tensor([0, 0]))
    # sample 0: theta=0 -> target logit s cos(m), other logit 0
    l0 = -math.log(math.exp(s * math.cos(m)) / (math.exp(s * math.cos(m)) + 1))
    # sample 1: theta=pi/2 -> s cos(pi/2 + m) = -s sin(m), other logit s cos 0 = s
    t = math.exp(-s * math.sin(m))
    l1 = -math.log(t / (t + math.exp(s)))
    assert out["arcface"].item() == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_finite_loss_and_gradients():
    torch.manual_seed(0)
    loss = create_loss("arcface", 3, 8)
    assert not loss.uses_head
    x = torch.randn(6, 8, requires_grad=True)
    out = loss(x, None, torch.arange(6) % 3)
    out["loss"].backward()
    assert math.isfinite(out["loss"].item())
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert loss.weight.grad is not None and loss.weight.grad.abs().sum() > 0
    assert [p is loss.weight for p in loss.parameters()] == [True]


def test_cosine_logits():
    torch.manual_seed(0)
    loss = create_loss("arcface", 3, 4)
    x = torch.randn(5, 4)
    cos = loss.cosine_logits(x)
    assert cos.shape == (5, 3)
    w = loss.weight.detach()
    ref = torch.stack(
        [
            torch.stack([torch.dot(xi, w[:, j]) / (xi.norm() * w[:, j].norm()) for j in range(3)])
            for xi in x
        ]
    )
    assert torch.allclose(cos, ref, atol=1e-6)


def test_half_precision_input_keeps_weight_float32():
    torch.manual_seed(0)
    loss = create_loss("arcface", 3, 4)
    out = loss(torch.randn(6, 4).half(), None, torch.arange(6) % 3)
    assert out["loss"].dtype == torch.float32
    assert loss.weight.dtype == torch.float32
