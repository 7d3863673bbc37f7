import math

import pytest
import torch

from ferembed.losses import LossConfigError, create_loss

COUNTS = [10, 40, 20]
CENTERS = [[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]]
X = [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
Y = [0, 1, 2]


def _loss(**kw):
    loss = create_loss("weighted_cluster", 3, 2, class_counts=COUNTS, **kw)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor(CENTERS))
    return loss


def test_weights_min_over_count():
    loss = _loss()
    assert loss.class_weights.tolist() == pytest.approx([1.0, 0.25, 0.5])


def test_value_by_hand():
    lam = 0.2
    loss = _loss(lam=lam)
    x = torch.tensor(X, requires_grad=True)
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    out = loss(x, logits, torch.tensor(Y))
    # denominators sum_{j != y} ||c_y - c_j||^2 + 1: y=0: 4+1+1=6, y=1: 4+5+1=10, y=2: 1+5+1=7
    # numerators ||x - c_y||^2: 2, 4, 1
    w = [1.0, 0.25, 0.5]
    l_i = [2 / 6, 4 / 10, 1 / 7]
    cluster = lam / 2 * sum(wi * li for wi, li in zip(w, l_i, strict=True)) / 3
    assert out["cluster"].item() == pytest.approx(cluster, rel=1e-6)
    ce_hit = math.log(math.e + 2) - 1
    ce = (1.0 * ce_hit + 0.25 * ce_hit + 0.5 * math.log(3)) / 1.75
    assert out["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert out["loss"].item() == pytest.approx(ce + cluster, rel=1e-6)
    out["loss"].backward()
    # gradient of the cluster term for x_0: lam/2 * w_0 * 2 (x_0 - c_0) / 6 / m
    assert x.grad[0].tolist() == pytest.approx([lam / 2 * 2 / 6 / 3] * 2, rel=1e-6)


def test_weighted_center_update_by_hand():
    loss = _loss(alpha=0.5)
    loss.after_step(torch.tensor(X), torch.tensor(Y))
    # delta_j = (c_j - x_j)/2 ; rate alpha * w_j
    expected = [
        [0 - 0.5 * 1.0 * (0 - 1) / 2, 0 - 0.5 * 1.0 * (0 - 1) / 2],
        [2 - 0.5 * 0.25 * 0 / 2, 0 - 0.5 * 0.25 * (0 - 2) / 2],
        [0 - 0.5 * 0.5 * 0 / 2, 1 - 0.5 * 0.5 * (1 - 0) / 2],
    ]
    for got, exp in zip(loss.centers.tolist(), expected, strict=True):
        assert got == pytest.approx(exp, rel=1e-6)


def test_unweighted_center_update():
    loss = _loss(alpha=0.5, weighted_update=False)
    loss.after_step(torch.tensor(X), torch.tensor(Y))
    assert loss.centers[1].tolist() == pytest.approx([2.0, 0.5])


def test_needs_class_counts():
    with pytest.raises(LossConfigError, match="class_counts"):
        create_loss("weighted_cluster", 3, 2)
    with pytest.raises(LossConfigError, match="shape"):
        create_loss("weighted_cluster", 3, 2, class_counts=[1, 2])
    with pytest.raises(LossConfigError, match="have none"):
        create_loss("weighted_cluster", 3, 2, class_counts=[1, 0, 2])
