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
