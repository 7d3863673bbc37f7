"""Architectures, the registry and the FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferembed.models import (
    FERNet,
    ModelConfigError,
    count_flops,
    create_model,
    list_models,
    normalize_images,
)
from ferembed.models.affinity import AffinityConvBlock, ChannelAffinity

# Small variants keep the forward passes cheap; the full sizes are only counted, not run.
SMALL = {
    "vgg_small": {},
    "vgg": {"widths": (8, 8, 16, 16)},
    "resnet18": {"width": 0.125},
    "affnet": {"stem_width": 8, "widths": (8, 16, 16)},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_registry_lists_the_architectures():
    assert {"vgg", "vgg_small", "resnet18", "affnet", "fusion"} <= set(list_models())


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'vgg19'.*known: \[.*'affnet'"):
        create_model("vgg19", 7)


def test_unknown_keyword_lists_accepted_ones():
    with pytest.raises(ModelConfigError, match=r"unknown keyword\(s\) \['depth'\].*accepted"):
        create_model("vgg", 7, depth=3)


@pytest.mark.parametrize("bad", [{"embedding_dim": 0}, {"emb_norm": "ln"}, {"drop_rate": 1.5}])
def test_bad_core_parameters(bad):
    with pytest.raises(ValueError):
        create_model("vgg_small", 7, **bad)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_shapes_and_separate_embedding_path(arch):
    model = create_model(arch, 5, embedding_dim=16, **SMALL[arch]).eval()
    assert isinstance(model, FERNet)
    assert model.arch == arch and model.model_kwargs == SMALL[arch]
    x = torch.randn(3, 1, 32, 32)
    emb = model.forward_features(x)
    logits = model.forward_head(emb)
    assert emb.shape == (3, 16) and logits.shape == (3, 5)
    emb2, logits2 = model(x)
    torch.testing.assert_close(emb2, emb)
    torch.testing.assert_close(logits2, logits)
    # The embedding does not depend on the head: changing the head leaves it untouched.
    with torch.no_grad():
        model.head.weight.normal_()
        model.head.bias.fill_(3.0)
    torch.testing.assert_close(model.forward_features(x), emb)
    assert not torch.allclose(model.forward_head(emb), logits)


def test_accepts_other_input_sizes_and_channels():
    model = create_model("vgg_small", 3, embedding_dim=8, in_chans=3).eval()
    emb, logits = model(torch.randn(2, 3, 37, 53))
    assert emb.shape == (2, 8) and logits.shape == (2, 3)


def test_emb_norm_none_has_no_batchnorm_on_the_embedding():
    model = create_model("vgg_small", 3, emb_norm="none")
    assert isinstance(model.emb_norm, nn.Identity)


@pytest.mark.parametrize(
    ("arch", "kwargs", "lo", "hi"),
    [
        ("vgg", {}, 1.0e6, 2.0e6),
        ("vgg_small", {}, 0.2e6, 0.45e6),
        ("resnet18", {}, 10.5e6, 12.0e6),
        ("resnet18", {"width": 0.5}, 2.5e6, 3.2e6),
        ("affnet", {}, 0.15e6, 0.6e6),
    ],
)
def test_parameter_counts(arch, kwargs, lo, hi):
    n = create_model(arch, 7, **kwargs).num_params()
    assert lo <= n <= hi, n


def test_affnet_is_clearly_cheaper_than_vgg():
    vgg, aff = create_model("vgg", 7), create_model("affnet", 7)
    assert aff.num_params() < 0.5 * vgg.num_params()
    assert count_flops(aff) < 0.5 * count_flops(vgg)


def test_flop_counter_exact_on_a_hand_computed_net():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),  # out (1, 2, 4, 4): 32 outputs x 9 MACs = 288 MACs
        nn.ReLU(),
        nn.Conv2d(2, 4, 3, padding=1, groups=2),  # 64 outputs x (1 * 9) = 576 MACs
        nn.Flatten(),
        nn.Linear(64, 5),  # 5 outputs x 64 = 320 MACs
    )
    assert count_flops(net, (1, 1, 4, 4)) == 2 * (288 + 576 + 320)
    assert count_flops(net, (3, 1, 4, 4)) == 3 * 2 * (288 + 576 + 320)


def test_flop_counter_counts_the_affinity_products():
    gate = ChannelAffinity(4)  # hidden = max(8, 4 // 4) = 8
    # affinity C*C*HW + aggregation C*C MACs, plus the MLP's 4*8 + 8*4 MACs.
    expected = 2 * (4 * 4 * 9 + 4 * 4) + 2 * (4 * 8 + 8 * 4)
    assert count_flops(gate, (1, 4, 3, 3)) == expected


def test_flop_counter_restores_training_mode():
    model = create_model("vgg_small", 3)
    model.train()
    count_flops(model)
    assert model.training


def test_channel_affinity_is_a_row_stochastic_gate():
    gate = ChannelAffinity(6, temperature=0.5)
    y = torch.randn(2, 6, 5, 5)
    p = gate.affinity(y)
    assert p.shape == (2, 6, 6)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 6))
    out = gate(y)
    ratio = out / y
    assert out.shape == y.shape
    # One positive gate per (sample, channel), strictly between 0 and 1.
    assert torch.all((ratio > 0) & (ratio < 1))
    torch.testing.assert_close(ratio.amin(dim=(2, 3)), ratio.amax(dim=(2, 3)))


@pytest.mark.parametrize(("size", "out"), [(12, 6), (11, 6)])
def test_affinity_block_downsamples(size, out):
    block = AffinityConvBlock(4, 8, stride=2)
    assert block(torch.randn(2, 4, size, size)).shape == (2, 8, out, out)


def test_normalize_images_maps_to_minus_one_one():
    x = torch.tensor([[[0, 255], [51, 204]]], dtype=torch.uint8)
    y = normalize_images(x)
    assert y.shape == (1, 1, 2, 2)
    torch.testing.assert_close(y, torch.tensor([[[[-1.0, 1.0], [-0.6, 0.6]]]]))


# ------------------------------------------------------------------------------------------------
# Input modes and the two-stream model


def test_partial_mode_feeds_the_partial_image_to_the_trunk():
    from ferembed.data.partial import PartialImage

    model = create_model("vgg", 3, embedding_dim=8, widths=(4, 4, 4, 4)).eval()
    x = torch.randn(2, 1, 48, 48)
    full = model.forward_features(PartialImage()(x))
    model.set_input_mode("partial")
    assert model.input_mode == "partial"
    torch.testing.assert_close(model.forward_features(x), full)
    assert "input_transform" not in "".join(model.state_dict())


def test_fused_mode_needs_the_fusion_model():
    with pytest.raises(ModelConfigError, match="fusion"):
        create_model("vgg_small", 3).set_input_mode("fused")
    with pytest.raises(ModelConfigError, match="input_mode"):
        create_model("vgg_small", 3).set_input_mode("half")


def test_fusion_model_two_streams():
    from ferembed.data.partial import PartialImage

    model = create_model(
        "fusion",
        4,
        embedding_dim=8,
        full_arch="vgg",
        partial_arch="affnet",
        stream_kwargs={"widths": (4, 4, 4, 4)},
        partial_stream_kwargs={"stem_width": 4, "widths": (4, 8, 8)},
    ).eval()
    assert model.input_mode == "fused"
    assert model.full.arch == "vgg" and model.partial.arch == "affnet"
    x = torch.randn(3, 1, 48, 48)
    emb, logits = model(x)
    assert emb.shape == (3, 8) and logits.shape == (3, 4)
    e_full, e_part = model.forward_streams(x)
    torch.testing.assert_close(e_full, model.full.forward_features(x))
    torch.testing.assert_close(e_part, model.partial.forward_features(PartialImage()(x)))
    torch.testing.assert_close(emb, model.emb_norm(model.embed(torch.cat([e_full, e_part], 1))))
    with pytest.raises(ModelConfigError):
        model.set_input_mode("full")
