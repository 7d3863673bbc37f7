import math

import pytest
import torch

from ferembed.losses import LossConfigError, create_loss


def test_plain_cross_entropy_value_and_grad():
    loss = create_loss("softmax", 2, 4)
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    labels = torch.tensor([0, 0])
    out = loss(torch.zeros(2, 4), logits, labels)
    # -log softmax: sample 0 log(1 + e^-1), sample 1 log(1 + e^2)
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(2))) / 2
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)
    assert out["ce"].item() == pytest.approx(expected, rel=1e-6)
    out["loss"].backward()
    assert logits.grad.abs().sum() > 0


def test_class_weights_inverse_frequency_mean_one():
    loss = create_loss("softmax", 3, 4, class_counts=[10, 30, 60], class_weighted=True)
    # 1/N = 0.1, 1/30, 1/60; mean = 0.05 -> 2, 2/3, 1/3
    w = loss.class_weights.tolist()
    assert w == pytest.approx([2.0, 2 / 3, 1 / 3], rel=1e-6)
    assert sum(w) / 3 == pytest.approx(1.0)


def test_class_weighted_value_is_weighted_mean():
    loss = create_loss("softmax", 3, 4, class_counts=[10, 30, 60], class_weighted=True)
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    ce0 = math.log(math.e + 2) - 1
    ce2 = math.log(3)
    expected = (2 * ce0 + (1 / 3) * ce2) / (2 + 1 / 3)
    assert loss(torch.zeros(2, 4), logits, labels)["loss"].item() == pytest.approx(
        expected, rel=1e-6
    )


def test_label_smoothing_value():
    eps = 0.2
    loss = create_loss("softmax", 2, 4, label_smoothing=eps)
    logits = torch.tensor([[1.0, 0.0]])
    p0 = math.exp(1) / (math.exp(1) + 1)
    q0, q1 = 1 - eps + eps / 2, eps / 2
    expected = -(q0 * math.log(p0) + q1 * math.log(1 - p0))
    out = loss(torch.zeros(1, 4), logits, torch.tensor([0]))
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_class_weighted_needs_counts():
    with pytest.raises(LossConfigError, match="class_counts"):
        create_loss("softmax", 3, 4, class_weighted=True)


def test_class_weighted_rejects_empty_class():
    with pytest.raises(LossConfigError, match=r"\[1\]"):
        create_loss("softmax", 3, 4, class_counts=[5, 0, 2], class_weighted=True)


def test_bad_label_smoothing():
    with pytest.raises(LossConfigError, match="label_smoothing"):
        create_loss("softmax", 3, 4, label_smoothing=1.0)
