import math

import pytest
import torch
from loss_helpers import loss_with_centers

from ferembed.losses import create_loss

X = [[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]
Y = [0, 1, 0]
CENTERS = [[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]]


def _loss(**kw):
    return loss_with_centers("center", CENTERS, **kw)


def test_value_by_hand():
    loss = _loss(lam=0.1)
    x = torch.tensor(X, requires_grad=True)
    out = loss(x, torch.zeros(3, 3), torch.tensor(Y))
    # ||x - c_y||^2 = 1, 5, 1 -> L_C = 1/2 * 7/3; CE with zero logits = log 3
    assert out["center"].item() == pytest.approx(0.1 * 0.5 * 7 / 3, rel=1e-6)
    assert out["ce"].item() == pytest.approx(math.log(3), rel=1e-6)
    assert out["loss"].item() == pytest.approx(math.log(3) + 0.1 * 7 / 6, rel=1e-6)


def test_gradient_reaches_embeddings_only():
    loss = _loss(lam=0.1)
    x = torch.tensor(X, requires_grad=True)
    loss(x, torch.zeros(3, 3), torch.tensor(Y))["loss"].backward()
    # d(lam L_C)/dx_i = lam (x_i - c_{y_i}) / m
    expected = [
        [0.1 * (1 - 1) / 3, 0.1 * (2 - 1) / 3],
        [0.1 * (3 - 2) / 3, 0.1 * (4 - 2) / 3],
        [0.1 * (0 - 1) / 3, 0.1 * (1 - 1) / 3],
    ]
    for got, exp in zip(x.grad.tolist(), expected, strict=True):
        assert got == pytest.approx(exp, rel=1e-6)
    assert list(loss.parameters()) == []
    assert "centers" in loss.state_dict()


def test_alpha_rule_by_hand():
    loss = _loss(alpha=0.5)
    loss.after_step(torch.tensor(X), torch.tensor(Y))
    # class 0: sum(c - x) = (0,-1) + (1,0) = (1,-1), n=2 -> delta (1/3, -1/3)
    # class 1: (2,2) - (3,4) = (-1,-2), n=1 -> delta (-1/2, -1); class 2 absent
    expected = [
        [1 - 0.5 / 3, 1 + 0.5 / 3],
        [2 + 0.5 * 0.5, 2 + 0.5 * 1.0],
        [5.0, 5.0],
    ]
    for got, exp in zip(loss.centers.tolist(), expected, strict=True):
        assert got == pytest.approx(exp, rel=1e-6)


def test_first_batch_init_sets_means_then_alpha_rule():
    loss = create_loss("center", 3, 2, center_init="first_batch", alpha=0.5)
    loss.after_step(torch.tensor(X), torch.tensor(Y))
    assert loss.centers.tolist() == [[0.5, 1.5], [3.0, 4.0], [0.0, 0.0]]
    loss.after_step(torch.tensor([[1.0, 1.0]]), torch.tensor([1]))
    # class 1 now follows the rule: delta = ((3,4) - (1,1)) / 2
    assert loss.centers[1].tolist() == pytest.approx([3 - 0.5 * 1.0, 4 - 0.5 * 1.5])
    loss.after_step(torch.tensor([[2.0, 2.0]]), torch.tensor([2]))
    assert loss.centers[2].tolist() == [2.0, 2.0]


def test_zero_init_default():
    loss = create_loss("center", 3, 2)
    assert loss.centers.abs().sum() == 0
    assert loss.config() == {"lam": 0.01, "alpha": 0.5, "center_init": "zeros"}


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        create_loss("center", 3, 2, alpha=1.5)
