import math

import pytest
import torch
from loss_helpers import loss_with_centers

from ferembed.losses import create_loss

CENTERS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
R = 1 / math.sqrt(2)


def _loss(**kw):
    return loss_with_centers("island", CENTERS, **kw)


def test_value_by_hand():
    loss = _loss(lam=0.1, lam1=2.0)
    x = torch.tensor([[1.0, 1.0], [0.0, 3.0]], requires_grad=True)
    out = loss(x, torch.zeros(2, 3), torch.tensor([0, 1]))
    # pair cosines: (c0,c1) 0, (c0,c2) 1/sqrt2, (c1,c2) 1/sqrt2; ordered pairs count twice
    pairs = 2 * ((0 + 1) + (R + 1) + (R + 1))
    assert out["island"].item() == pytest.approx(0.1 * 2.0 * pairs, rel=1e-6)
    # ||x - c_y||^2 = 1 and 4 -> L_C = 1/2 * 5/2
    assert out["center"].item() == pytest.approx(0.1 * 1.25, rel=1e-6)
    expected = math.log(3) + 0.1 * 1.25 + 0.1 * 2.0 * pairs
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)
    out["loss"].backward()
    assert x.grad.abs().sum() > 0


def test_center_update_by_hand():
    lam1, alpha = 0.2, 0.5
    loss = _loss(lam1=lam1, alpha=alpha)
    # embeddings at the centers: the center-loss step is 0, only the island step remains.
    # sum_{k!=j} d cos(c_j,c_k)/d c_j = sum_k (u_k - cos_jk u_j) / |c_j|:
    # c0: (0,1) + (0, 1/sqrt2); c1: (1,0) + (1/sqrt2, 0); c2: (1/2,-1/2) + (-1/2,1/2) = 0
    loss.after_step(torch.tensor(CENTERS), torch.tensor([0, 1, 2]))
    step = alpha * lam1 / 2
    expected = [[1.0, -step * (1 + R)], [-step * (1 + R), 1.0], [1.0, 1.0]]
    for got, exp in zip(loss.centers.tolist(), expected, strict=True):
        assert got == pytest.approx(exp, rel=1e-6, abs=1e-7)


def test_update_matches_autograd_of_pairwise_cosine():
    torch.manual_seed(0)
    k, d, lam1, alpha = 4, 3, 0.3, 0.5
    c = torch.randn(k, d, dtype=torch.float64)
    loss = create_loss("island", k, d, lam1=lam1, alpha=alpha).double()
    loss.centers.copy_(c)
    # reference: lam1/(K-1) * d/dc_j of sum_{k != j} cos(c_j, c_k), with j's own pairs only,
    # i.e. half the gradient of the ordered-pair sum
    cc = c.clone().requires_grad_(True)
    u = cc / cc.norm(dim=1, keepdim=True)
    cos = u @ u.T
    (cos.sum() - cos.diagonal().sum()).backward()
    expected = c - alpha * lam1 / (k - 1) * 0.5 * cc.grad
    loss.after_step(c.clone(), torch.arange(k))
    assert torch.allclose(loss.centers, expected, atol=1e-10)


def test_update_pushes_centers_apart_in_cosine():
    torch.manual_seed(1)
    k, d = 5, 4
    loss = create_loss("island", k, d, lam1=0.5)
    c = torch.randn(k, d) + 2.0  # a tight cone: high pairwise cosine

    def mean_cos(c):
        u = c / c.norm(dim=1, keepdim=True)
        cos = u @ u.T
        return (cos.sum() - cos.diagonal().sum()).item() / (k * (k - 1))

    loss.centers.copy_(c)
    before = mean_cos(loss.centers)
    for _ in range(5):
        loss.after_step(loss.centers.clone(), torch.arange(k))
    assert mean_cos(loss.centers) < before


def test_zero_centers_stay_finite():
    loss = create_loss("island", 3, 2)
    out = loss(torch.ones(2, 2), torch.zeros(2, 3), torch.tensor([0, 1]))
    assert torch.isfinite(out["loss"])
    loss.after_step(torch.ones(2, 2), torch.tensor([0, 1]))
    assert torch.isfinite(loss.centers).all()
    assert loss.centers[2].tolist() == [0.0, 0.0]  # absent and zero: no direction to push
