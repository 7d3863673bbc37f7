import math

import pytest
import torch

from ferembed.losses import create_loss


def test_batch_hard_value_by_hand():
    loss = create_loss("triplet", 2, 2, margin=0.5, normalize=False)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    out = loss(x, None, y)
    # hardest positive / negative distances per anchor: (1,3) (1,2) (2,2) (2,4);
    # hinges max(0, p - n + 0.5): 0, 0, 0.5, 0 -> mean over non-zero = 0.5
    assert out["triplet"].item() == pytest.approx(0.5, rel=1e-6)
    out["loss"].backward()
    # only anchor 2 (x=3): d/dx of |x2-x3| - |x2-x1|: x2 -1 - 1, x3 +1, x1 +1
    assert x.grad[:, 0].tolist() == pytest.approx([0.0, 1.0, -2.0, 1.0])
    assert not loss.uses_head
    assert set(out) == {"loss", "triplet"}


def test_random_batch_finite_with_grad():
    torch.manual_seed(0)
    loss = create_loss("triplet", 3, 8)
    x = torch.randn(12, 8, requires_grad=True)
    out = loss(x, torch.zeros(12, 3), torch.arange(12) % 3)
    out["loss"].backward()
    assert math.isfinite(out["loss"].item())
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ce_weight_uses_head():
    torch.manual_seed(0)
    loss = create_loss("triplet", 3, 8, ce_weight=0.5)
    assert loss.uses_head
    logits = torch.zeros(6, 3, requires_grad=True)
    out = loss(torch.randn(6, 8), logits, torch.arange(6) % 3)
    assert out["ce"].item() == pytest.approx(0.5 * math.log(3), rel=1e-6)
    with pytest.raises(ValueError, match="logits"):
        loss(torch.randn(6, 8), None, torch.arange(6) % 3)


def test_single_class_batch_gives_zero():
    loss = create_loss("triplet", 3, 4)
    x = torch.randn(4, 4, requires_grad=True)
    out = loss(x, None, torch.zeros(4, dtype=torch.long))
    out["loss"].backward()
    assert out["loss"].item() == 0.0


# Four points on a line, classes {0: a=0, b=1}, {1: c=1.3, d=5}, margin 0.5, raw distances.
# The eight (anchor, positive, negative) triplets and their hinges d(a,p) - d(a,n) + 0.5:
# (a,b,c) 0.2   (a,b,d) -3.5   (b,a,c) 1.2   (b,a,d) -2.5
# (c,d,a) 2.9   (c,d,b) 3.9    (d,c,a) -0.8  (d,c,b) 0.2
_LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.3, 0.0], [5.0, 0.0]])
_LINE_Y = torch.tensor([0, 0, 1, 1])


def test_semihard_mining_value_by_hand():
    loss = create_loss("triplet", 2, 2, margin=0.5, normalize=False, mining="semihard")
    x = _LINE.clone().requires_grad_(True)
    out = loss(x, None, _LINE_Y)
    # semi-hard: d(a,p) < d(a,n) <= d(a,p) + margin, i.e. only (a,b,c) and (d,c,b), each 0.2
    assert out["triplet"].item() == pytest.approx(0.2, rel=1e-6)
    out["loss"].backward()
    # L = ((|a-b| - |a-c| + .5) + (|d-c| - |d-b| + .5)) / 2: dL/da = (-1 + 1) / 2,
    # dL/db = (1 + 1) / 2, dL/dc = (-1 - 1) / 2, dL/dd = (1 - 1) / 2
    assert x.grad[:, 0].tolist() == pytest.approx([0.0, 1.0, -1.0, 0.0], abs=1e-6)
    assert loss.config()["mining"] == "semihard"


def test_batch_all_mining_value_by_hand():
    loss = create_loss("triplet", 2, 2, margin=0.5, normalize=False, mining="all")
    out = loss(_LINE, None, _LINE_Y)
    # mean over the five positive hinges: (0.2 + 1.2 + 2.9 + 3.9 + 0.2) / 5
    assert out["triplet"].item() == pytest.approx(8.4 / 5, rel=1e-6)


def test_semihard_without_semihard_triplets_gives_zero_with_grad():
    loss = create_loss("triplet", 2, 2, margin=0.5, normalize=False, mining="semihard")
    # every negative is far outside the margin: no semi-hard triplet
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]], requires_grad=True)
    out = loss(x, None, _LINE_Y)
    out["loss"].backward()
    assert out["loss"].item() == 0.0


def test_unknown_mining_is_a_config_error():
    from ferembed.losses import LossConfigError

    with pytest.raises(LossConfigError, match="mining must be one of"):
        create_loss("triplet", 3, 4, mining="hardest")
