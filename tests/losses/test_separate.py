import math

import pytest
import torch

from ferembed.losses import create_loss


def _loss(centers, **kw):
    loss = create_loss("separate", len(centers), 2, **kw)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor(centers))
    return loss


def test_value_by_hand_two_classes():
    loss = _loss([[1.0, 0.0], [0.0, 1.0]], lam=0.5)
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    out = loss(x, torch.zeros(2, 2), torch.tensor([0, 1]))
    s_intra = (1 / math.sqrt(2) + 1) / 2
    s_inter = 0.0
    expected = (1 + s_inter) / (1 + s_intra)
    assert out["separate"].item() == pytest.approx(0.5 * expected, rel=1e-6)
    assert out["loss"].item() == pytest.approx(math.log(2) + 0.5 * expected, rel=1e-6)


def test_value_by_hand_three_classes():
    loss = _loss([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], lam=1.0)
    x = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    out = loss(x, torch.zeros(2, 3), torch.tensor([0, 2]))
    r = 1 / math.sqrt(2)
    s_inter = (2 * (0 + r + r)) / 6  # mean over the 6 ordered pairs
    s_intra = (1 + r) / 2
    assert out["separate"].item() == pytest.approx((1 + s_inter) / (1 + s_intra), rel=1e-6)


def test_gradient_reaches_embeddings_and_centers():
    torch.manual_seed(0)
    loss = create_loss("separate", 3, 4)
    assert [n for n, _ in loss.named_parameters()] == ["centers"]
    x = torch.randn(6, 4, requires_grad=True)
    loss(x, torch.zeros(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))["loss"].backward()
    assert x.grad.abs().sum() > 0
    assert loss.centers.grad.abs().sum() > 0


def test_gradient_steps_lower_the_term():
    torch.manual_seed(0)
    loss = create_loss("separate", 3, 4)
    x = torch.randn(9, 4, requires_grad=True)
    y = torch.arange(9) % 3
    params = [x, loss.centers]
    first = loss.separate_term(x, y).item()
    for _ in range(20):
        grads = torch.autograd.grad(loss.separate_term(x, y), params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= 0.5 * g
    assert loss.separate_term(x, y).item() < first
