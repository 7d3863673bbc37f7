import math

import pytest
import torch
from loss_helpers import loss_with_centers

from ferembed.losses import create_loss

CENTERS = [[0.0, 0.0], [3.0, 0.0], [0.0, 2.0]]


def _loss(**kw):
    return loss_with_centers("emlf", CENTERS, **kw)


def test_value_and_gradient_by_hand():
    lam, beta, m = 0.1, 2.0, 1.0
    loss = _loss(lam=lam, beta=beta, margin=m)
    x = torch.tensor([[1.0, 1.0], [2.0, 1.0]], requires_grad=True)
    out = loss(x, torch.zeros(2, 3), torch.tensor([0, 1]))
    # x0=(1,1), y=0: d = 2, 5, 2 -> own 2, nearest other 2 -> hinge m + 2 - 2 = 1
    # x1=(2,1), y=1: d = 5, 2, 5 -> own 2, nearest other 5 -> hinge max(0, 1 + 2 - 5) = 0
    pull = (2 + 2) / 2
    push = (1 + 0) / 2
    assert out["emlf_pull"].item() == pytest.approx(lam * pull, rel=1e-6)
    assert out["emlf_push"].item() == pytest.approx(lam * beta * push, rel=1e-6)
    assert out["loss"].item() == pytest.approx(math.log(3) + lam * (pull + beta * push), rel=1e-6)
    out["loss"].backward()
    # pull: lam * 2 (x - c_y) / m
    # push (x0 only): lam*beta/m * (2(x0-c0) - 2(x0-c2)) = lam*beta*(c2-c0)
    g0 = [lam * 1 + lam * beta * 0, lam * 1 + lam * beta * 2]
    g1 = [lam * (2 - 3), lam * (1 - 0)]
    assert x.grad[0].tolist() == pytest.approx(g0, rel=1e-6)
    assert x.grad[1].tolist() == pytest.approx(g1, rel=1e-6)


def test_alpha_rule_by_hand():
    loss = _loss(alpha=0.4)
    loss.after_step(torch.tensor([[1.0, 1.0], [3.0, 2.0]]), torch.tensor([0, 0]))
    # class 0: sum(c - x) = (-4, -3), n = 2 -> delta (-4/3, -1)
    assert loss.centers[0].tolist() == pytest.approx([0.4 * 4 / 3, 0.4 * 1.0])
    assert loss.centers[1:].tolist() == CENTERS[1:]


def test_zero_centers_give_finite_loss():
    loss = create_loss("emlf", 3, 2)
    x = torch.randn(4, 2, requires_grad=True)
    out = loss(x, torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(x.grad).all()
