import math

import numpy as np
import pytest
import torch

from ferembed.data._base import ArrayDataset, Sample
from ferembed.losses import _descriptors as D
from ferembed.losses import create_loss
from ferembed.losses._weighting import AdaptiveWeighting


def _dataset(n=5, seed=0, name="synth", split="train", prefix="s"):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    samples = [Sample(f"{prefix}{i}", i % 3) for i in range(n)]
    ds = ArrayDataset(images, samples, ["a", "b", "c"], split=split)
    ds.name = name
    return ds


# ------------------------------------------------------------------ descriptors


def test_descriptor_shapes_match_dims():
    images = _dataset(3).load_all()
    hog = D.compute_hog(images, D.HOGParams())
    lbp = D.compute_lbp(images, D.LBPParams())
    assert hog.shape == (3, 900) == (3, D.hog_dim(48, D.HOGParams()))
    assert lbp.shape == (3, 360) == (3, D.lbp_dim(48, D.LBPParams()))
    assert hog.dtype == lbp.dtype == np.float32
    # each of the 36 cell histograms (10 uniform-LBP bins) sums to 1
    assert np.allclose(lbp.reshape(3, 36, 10).sum(axis=2), 1.0)
    p = D.HOGParams(orientations=6, pixels_per_cell=6, cells_per_block=3)
    assert D.compute_hog(images[:1], p).shape == (1, D.hog_dim(48, p)) == (1, 6 * 6 * 9 * 6)


def test_lbp_matches_per_cell_histograms():
    from skimage.feature import local_binary_pattern

    image = _dataset(1).load_all()[0]
    p = D.LBPParams(points=8, radius=1.0, grid=5)  # 48 px into 5 uneven cells
    codes = local_binary_pattern(image, 8, 1.0, method="uniform").astype(int)
    edges = [0, 10, 19, 29, 38, 48]  # round(linspace(0, 48, 6))
    expected = []
    for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
        for c0, c1 in zip(edges[:-1], edges[1:], strict=True):
            h = np.bincount(codes[r0:r1, c0:c1].ravel(), minlength=10)
            expected.append(h / h.sum())
    got = D.compute_lbp(image[None], p)[0]
    assert np.allclose(got, np.concatenate(expected), atol=1e-6)


def test_standardize():
    f = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    z, mean, std = D.standardize(f)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-6)
    assert np.allclose(z[:, [0, 2]].std(axis=0), 1, atol=1e-6)
    assert np.all(z[:, 1] == 0)  # constant dimension
    assert z[0, 0] == pytest.approx((1 - 3) / math.sqrt(8 / 3), rel=1e-6)


def test_prepare_caches_and_second_prepare_reads(tmp_path, monkeypatch):
    ds = _dataset()
    loss = create_loss("handcrafted", 3, 4)
    loss.prepare(ds, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert len(files) == 2 and files[0].startswith("handcrafted-hog-")
    assert loss.target_hog.shape == (5, 900) and loss.target_lbp.shape == (5, 360)
    assert torch.allclose(loss.target_hog.mean(0), torch.zeros(900), atol=1e-5)

    def fail(*a, **k):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(D, "load_images", fail)
    again = create_loss("handcrafted", 3, 4)
    again.prepare(ds, cache_dir=tmp_path)
    assert torch.equal(again.target_hog, loss.target_hog)
    assert torch.equal(again.target_lbp, loss.target_lbp)
    # targets are per-dataset data, not checkpoint state
    assert not any(k.startswith("target_") for k in again.state_dict())


def test_cache_key_depends_on_dataset_and_params():
    hog = D.make_descriptor("hog")
    base = D.cache_key(_dataset(), hog, 48)
    assert D.cache_key(_dataset(), hog, 48) == base
    assert D.cache_key(_dataset(name="other"), hog, 48) != base
    assert D.cache_key(_dataset(split="val"), hog, 48) != base
    assert D.cache_key(_dataset(prefix="t"), hog, 48) != base
    assert D.cache_key(_dataset(n=4), hog, 48) != base
    assert (
        D.cache_key(_dataset(), D.make_descriptor("hog", D.HOGParams(orientations=8)), 48) != base
    )
    assert D.cache_key(_dataset(), D.make_descriptor("lbp"), 48) != base


def test_prepare_rejects_wrong_image_size():
    loss = create_loss("handcrafted", 3, 4, image_size=64)
    with pytest.raises(ValueError, match="image_size"):
        loss.prepare(_dataset())


# ------------------------------------------------------------------ the loss


def _small(**kw):
    """One 10-d descriptor (LBP, one cell), zero projection: P f(x) = 0."""
    loss = create_loss("handcrafted", 3, 2, descriptors=["lbp"], lbp_grid=1, **kw)
    with torch.no_grad():
        loss.projections["lbp"].weight.zero_()
        loss.projections["lbp"].bias.zero_()
    target = torch.zeros(4, 10)
    target[0, 0] = 2.0
    target[1, :2] = 1.0
    target[2, 9] = -3.0
    loss.target_lbp = target
    return loss


def test_value_by_hand_fixed_weight():
    loss = _small(weighting="fixed", feature_weights=0.5)
    x = torch.zeros(2, 2, requires_grad=True)
    out = loss(x, torch.zeros(2, 3), torch.tensor([0, 1]), indices=torch.tensor([0, 2]))
    # prediction 0: L = (2^2 + 3^2) / (2 rows * 10 dims)
    assert out["feat_lbp"].item() == pytest.approx(0.5 * 13 / 20, rel=1e-6)
    assert out["loss"].item() == pytest.approx(math.log(3) + 0.5 * 13 / 20, rel=1e-6)


def test_gradient_reaches_embeddings_and_projection():
    torch.manual_seed(0)
    loss = create_loss("handcrafted", 3, 4)
    loss.prepare(_dataset())
    x = torch.randn(3, 4, requires_grad=True)
    out = loss(x, torch.zeros(3, 3), torch.tensor([0, 1, 2]), indices=torch.tensor([0, 3, 4]))
    out["loss"].backward()
    assert x.grad.abs().sum() > 0
    assert loss.projections["hog"].weight.grad.abs().sum() > 0
    assert loss.projections["lbp"].weight.grad.abs().sum() > 0


def test_indices_required_in_training_only():
    loss = _small()
    x, logits, y = torch.zeros(2, 2), torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="indices"):
        loss(x, logits, y)
    with pytest.raises(ValueError, match="prepared dataset has 4"):
        loss(x, logits, y, indices=torch.tensor([0, 4]))
    loss.eval()
    out = loss(x, logits, y)
    assert out["feat_lbp"].item() == 0.0


def test_prepare_required():
    loss = create_loss("handcrafted", 3, 2)
    with pytest.raises(RuntimeError, match="prepare"):
        loss(torch.zeros(1, 2), torch.zeros(1, 3), torch.tensor([0]), indices=torch.tensor([0]))


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ("linear", [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]),
        (
            "cosine",
            [
                1.0,
                (1 + math.cos(math.pi / 4)) / 2,
                0.5,
                (1 + math.cos(3 * math.pi / 4)) / 2,
                0.0,
                0.0,
            ],
        ),
        ("step", [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]),
    ],
)
def test_schedule_decays_to_zero(schedule, expected):
    loss = _small(weighting="fixed", schedule=schedule, active_epochs=4)
    got = [loss.schedule_value()]
    for epoch in range(5):
        loss.on_epoch_end(epoch)
        got.append(loss.schedule_value())
    assert got == pytest.approx(expected)
    out = loss(
        torch.zeros(2, 2), torch.zeros(2, 3), torch.tensor([0, 1]), indices=torch.tensor([0, 1])
    )
    assert out["feat_lbp"].item() == 0.0


def test_dwa_weights_by_hand():
    w = AdaptiveWeighting(2, "dwa", temperature=2.0)
    epochs = [(4.0, 2.0), (2.0, 1.5), (1.0, 1.2)]
    for loss_a, loss_b in epochs[:2]:
        assert w.weights.tolist() == [1.0, 1.0]  # first two epochs
        w.record(torch.tensor([loss_a * 0.5, loss_b * 0.5]))
        w.record(torch.tensor([loss_a * 1.5, loss_b * 1.5]))  # epoch mean = (a, b)
        w.end_epoch()
    # r = L(t-1)/L(t-2) = (2/4, 1.5/2) -> w_k = 2 exp(r_k/2) / sum exp(r_j/2)
    ea, eb = math.exp(0.5 / 2), math.exp(0.75 / 2)
    assert w.weights.tolist() == pytest.approx([2 * ea / (ea + eb), 2 * eb / (ea + eb)], rel=1e-6)
    w.record(torch.tensor(epochs[2]))
    w.end_epoch()
    ea, eb = math.exp((1.0 / 2.0) / 2), math.exp((1.2 / 1.5) / 2)
    assert w.weights.tolist() == pytest.approx([2 * ea / (ea + eb), 2 * eb / (ea + eb)], rel=1e-6)


def test_dwa_through_the_loss():
    # two descriptors with tiny dims: HOG 1 orientation, 2x2 cells of 24 px, 1 block -> 4 dims
    loss = create_loss(
        "handcrafted",
        3,
        2,
        weighting="dwa",
        temperature=1.0,
        lbp_grid=1,
        hog_orientations=1,
        hog_pixels_per_cell=24,
    )
    for proj in loss.projections.values():
        with torch.no_grad():
            proj.weight.zero_()
            proj.bias.zero_()
    loss.target_hog = torch.tensor([[2.0, 0, 0, 0], [1.0, 1.0, 0, 0]])  # mean sq: 1, 0.5
    loss.target_lbp = torch.tensor([[1.0] * 10, [2.0] * 10])  # mean sq: 1, 4
    x, logits, y = torch.zeros(1, 2), torch.zeros(1, 3), torch.tensor([0])
    for epoch, row in enumerate([0, 1]):
        out = loss(x, logits, y, indices=torch.tensor([row]))
        assert out["feat_hog"].item() == pytest.approx([1.0, 0.5][row] * (1 - epoch / 10))
        loss.on_epoch_end(epoch)
    # r = (0.5/1, 4/1); w_k = 2 exp(r_k) / (exp(0.5) + exp(4))
    e_hog, e_lbp = math.exp(0.5), math.exp(4.0)
    w = [2 * e_hog / (e_hog + e_lbp), 2 * e_lbp / (e_hog + e_lbp)]
    stats = loss.stats()
    assert [stats["w_hog"], stats["w_lbp"]] == pytest.approx(w, rel=1e-6)
    out = loss(x, logits, y, indices=torch.tensor([0]))
    s = 1 - 2 / 10
    assert out["feat_hog"].item() == pytest.approx(s * w[0] * 1.0, rel=1e-6)
    assert out["feat_lbp"].item() == pytest.approx(s * w[1] * 1.0, rel=1e-6)


def test_uncertainty_weighting():
    loss = _small(weighting="uncertainty")
    assert [n for n, _ in loss.named_parameters()] == [
        "projections.lbp.weight",
        "projections.lbp.bias",
        "adaptive.log_vars",
    ]
    with torch.no_grad():
        loss.adaptive.log_vars.fill_(math.log(2.0))
    out = loss(
        torch.zeros(2, 2), torch.zeros(2, 3), torch.tensor([0, 1]), indices=torch.tensor([0, 2])
    )
    l_f = 13 / 20
    # exp(-s) L + s with s = log 2
    assert out["feat_lbp"].item() == pytest.approx(l_f / 2 + math.log(2), rel=1e-6)
    out["loss"].backward()
    # d/ds = -exp(-s) L + 1
    assert loss.adaptive.log_vars.grad.item() == pytest.approx(1 - l_f / 2, rel=1e-6)


def test_bad_parameters():
    with pytest.raises(ValueError, match="weighting"):
        create_loss("handcrafted", 3, 4, weighting="magic")
    with pytest.raises(ValueError, match="descriptor"):
        create_loss("handcrafted", 3, 4, descriptors=["sift"])
    with pytest.raises(ValueError, match="feature_weights"):
        create_loss("handcrafted", 3, 4, feature_weights=[1.0])
    with pytest.raises(ValueError, match="active_epochs"):
        create_loss("handcrafted", 3, 4, active_epochs=0)
    with pytest.raises(ValueError, match="cells"):
        create_loss("handcrafted", 3, 4, image_size=8, hog_pixels_per_cell=8)
