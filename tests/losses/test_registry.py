import json

import pytest
import torch

from ferembed.errors import FerembedError
from ferembed.losses import FERLoss, LossConfigError, create_loss, list_losses, register_loss

NAMES = [
    "arcface",
    "center",
    "emlf",
    "handcrafted",
    "island",
    "separate",
    "softmax",
    "triplet",
    "weighted_cluster",
]


def test_all_losses_registered():
    assert list_losses() == NAMES


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown loss 'nope'.*center"):
        create_loss("nope", 3, 4)


def test_unknown_parameter_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['lamda'\].*'lam'"):
        create_loss("center", 3, 4, lamda=0.1)


def test_error_is_user_facing():
    assert issubclass(LossConfigError, FerembedError) and issubclass(LossConfigError, ValueError)


@pytest.mark.parametrize("name", NAMES)
def test_config_roundtrip_and_forward(name):
    torch.manual_seed(0)
    loss = create_loss(name, 3, 6, class_counts=[4, 5, 6])
    cfg = loss.config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = create_loss(name, 3, 6, class_counts=[4, 5, 6], **cfg)
    assert again.config() == cfg
    loss.eval()  # handcrafted: feature terms off without prepare()
    x = torch.randn(6, 6, requires_grad=True)
    out = loss(x, torch.randn(6, 3), torch.arange(6) % 3)
    parts = {k: v for k, v in out.items() if k != "loss"}
    assert parts and all(v.ndim == 0 and not v.requires_grad for v in parts.values())
    assert out["loss"].item() == pytest.approx(sum(v.item() for v in parts.values()), rel=1e-5)
    loss.after_step(x.detach(), torch.arange(6) % 3)
    out32 = loss(x, torch.randn(6, 3), (torch.arange(6) % 3).int())  # int32 labels accepted
    assert torch.isfinite(out32["loss"])


def test_num_classes_and_dim_validated():
    with pytest.raises(LossConfigError, match="num_classes"):
        create_loss("center", 1, 4)
    with pytest.raises(LossConfigError, match="embedding_dim"):
        create_loss("center", 3, 0)


def test_batch_validation():
    loss = create_loss("center", 3, 4)
    with pytest.raises(ValueError, match="D=5"):
        loss(torch.zeros(2, 5), torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        loss(torch.zeros(2, 4), torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels must have shape"):
        loss(torch.zeros(2, 4), torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        loss(torch.zeros(2, 4), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        loss(torch.zeros(2, 4), torch.zeros(2, 3), torch.tensor([0.0, 1.0]))


def test_register_needs_ferloss():
    with pytest.raises(TypeError):
        register_loss("bad")(object)


def test_register_custom_loss():
    @register_loss("_test_zero")
    class Zero(FERLoss):
        def compute(self, embeddings, logits, labels, *, indices=None):
            return {"zero": embeddings.sum() * 0}

    try:
        loss = create_loss("_test_zero", 2, 3)
        assert loss.name == "_test_zero"
        assert loss(torch.ones(2, 3), torch.zeros(2, 2), torch.tensor([0, 1]))["loss"].item() == 0
    finally:
        from ferembed.losses import _registry

        _registry._REGISTRY.pop("_test_zero")


def test_centers_in_state_dict():
    for name in ["center", "island", "emlf", "weighted_cluster"]:
        loss = create_loss(name, 3, 4, class_counts=[1, 2, 3])
        assert loss.state_dict()["centers"].shape == (3, 4)
        assert list(loss.parameters()) == []
