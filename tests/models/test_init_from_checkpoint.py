"""Fine-tuning initialisation: ``init_from_checkpoint`` and ``TrainConfig.init_checkpoint``."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from ferembed.errors import CheckpointError
from ferembed.models import checkpoint_paths, create_model, load_checkpoint, save_checkpoint
from ferembed.models.checkpoint import init_from_checkpoint
from ferembed.training import TrainConfig, train
from ferembed.training.setup import build_datasets, build_model, init_model

WIDTHS = (4, 4, 8, 8)
SOURCE_CLASSES = ["angry", "happy", "sad", "surprise"]
# Another order, synonyms ("anger", "sadness") and a class the source lacks ("contempt").
TARGET_CLASSES = ["surprise", "anger", "contempt", "happy", "sadness"]
# target row -> source row, by canonical name; None: not in the source.
EXPECTED_MAP = [3, 0, None, 1, 2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _vgg(num_classes, *, seed, embedding_dim=8, widths=WIDTHS, perturb=False):
    torch.manual_seed(seed)
    model = create_model("vgg", num_classes, embedding_dim=embedding_dim, widths=widths)
    if perturb:  # move every weight and the BN statistics away from their init
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
            model.train()
            model(torch.randn(8, 1, 48, 48))
    return model.eval()


@pytest.fixture
def source(tmp_path):
    """A saved 4-class checkpoint: ``(stem, {key: tensor} as saved)``."""
    model = _vgg(len(SOURCE_CLASSES), seed=1, perturb=True)
    stem = tmp_path / "src"
    save_checkpoint(stem, model, meta={"class_names": SOURCE_CLASSES})
    weights, _ = checkpoint_paths(stem)
    saved = {k[len("model.") :]: v for k, v in load_file(str(weights)).items()}
    return stem, saved


def _clone_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_body_and_matched_head_rows_are_copied(source):
    stem, saved = source
    model = _vgg(len(TARGET_CLASSES), seed=7)
    fresh = _clone_state(model)
    info = init_from_checkpoint(model, stem, TARGET_CLASSES)
    state = model.state_dict()

    body = [k for k in state if not k.startswith("head.")]
    assert body and set(body) == {k for k in saved if not k.startswith("head.")}
    for k in body:
        assert torch.equal(state[k], saved[k]), k
    # The fresh body really was different, so the equality above is not trivial.
    assert any(not torch.equal(fresh[k], saved[k]) for k in body if saved[k].is_floating_point())

    for row, src in enumerate(EXPECTED_MAP):
        if src is None:
            assert torch.equal(state["head.weight"][row], fresh["head.weight"][row])
            assert torch.equal(state["head.bias"][row], fresh["head.bias"][row])
            assert not torch.equal(state["head.weight"][row], saved["head.weight"][0])
        else:
            assert torch.equal(state["head.weight"][row], saved["head.weight"][src]), row
            assert torch.equal(state["head.bias"][row], saved["head.bias"][src]), row

    assert info["copied_classes"] == ["surprise", "anger", "happy", "sadness"]
    assert info["new_classes"] == ["contempt"]
    weights, sidecar_path = checkpoint_paths(stem)
    assert info["checkpoint"] == str(weights)
    assert info["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert info["sha256"] == json.loads(sidecar_path.read_text())["sha256"]


def test_model_still_runs_after_init(source):
    stem, _ = source
    model = _vgg(len(TARGET_CLASSES), seed=7)
    init_from_checkpoint(model, stem, TARGET_CLASSES)
    emb, logits = model.eval()(torch.randn(2, 1, 48, 48))
    assert emb.shape == (2, 8) and logits.shape == (2, len(TARGET_CLASSES))


def test_accepts_weights_and_sidecar_paths(source):
    stem, saved = source
    weights, sidecar = checkpoint_paths(stem)
    for path in (weights, sidecar):
        model = _vgg(len(SOURCE_CLASSES), seed=3)
        info = init_from_checkpoint(model, path, SOURCE_CLASSES)
        assert info["copied_classes"] == SOURCE_CLASSES and info["new_classes"] == []
        state = model.state_dict()
        for k, v in saved.items():  # same classes, same order: everything is copied
            assert torch.equal(state[k], v), k


def test_unknown_class_names_keep_fresh_rows(source):
    stem, _ = source
    model = _vgg(2, seed=4)
    fresh = _clone_state(model)
    info = init_from_checkpoint(model, stem, ["not-an-emotion", "happy"])
    assert info["new_classes"] == ["not-an-emotion"] and info["copied_classes"] == ["happy"]
    assert torch.equal(model.state_dict()["head.weight"][0], fresh["head.weight"][0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"embedding_dim": 16},
        {"widths": (4, 8, 8, 8)},
    ],
    ids=["embedding_dim", "widths"],
)
def test_mismatched_body_names_the_file(source, kwargs):
    stem, _ = source
    model = _vgg(len(TARGET_CLASSES), seed=7, **kwargs)
    with pytest.raises(CheckpointError) as exc:
        init_from_checkpoint(model, stem, TARGET_CLASSES)
    weights, _ = checkpoint_paths(stem)
    assert str(weights) in str(exc.value)


def test_other_architecture_names_the_file(source):
    stem, _ = source
    torch.manual_seed(0)
    model = create_model("vgg_small", len(TARGET_CLASSES), embedding_dim=8)
    with pytest.raises(CheckpointError) as exc:
        init_from_checkpoint(model, stem, TARGET_CLASSES)
    assert str(checkpoint_paths(stem)[0]) in str(exc.value)


def test_mismatch_leaves_the_model_untouched(source):
    stem, _ = source
    model = _vgg(len(TARGET_CLASSES), seed=7, embedding_dim=16)
    before = _clone_state(model)
    with pytest.raises(CheckpointError):
        init_from_checkpoint(model, stem, TARGET_CLASSES)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_tampered_weights(source):
    stem, _ = source
    weights, _ = checkpoint_paths(stem)
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256"):
        init_from_checkpoint(_vgg(len(TARGET_CLASSES), seed=7), stem, TARGET_CLASSES)


def test_class_list_must_fit_the_head(source):
    stem, _ = source
    with pytest.raises(ValueError, match="4 class names for a model with 3 classes"):
        init_from_checkpoint(_vgg(3, seed=0), stem, ["happy", "sad", "angry", "fear"])


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        init_from_checkpoint(_vgg(3, seed=0), tmp_path / "nope", ["happy", "sad", "angry"])


# ------------------------------------------------------------------------------------------------
# TrainConfig.init_checkpoint through the trainer


def _synth_config(tmp_path, name, **changes):
    base = dict(
        dataset="synthfer",
        val_split=None,
        max_train_samples=32,
        arch="vgg",
        model_kwargs={"widths": list(WIDTHS)},
        embedding_dim=8,
        epochs=1,
        batch_size=16,
        eval_batch_size=64,
        device="cpu",
        out=str(tmp_path / name),
    )
    base.update(changes)
    return TrainConfig(**base)


def test_init_model_is_a_noop_without_checkpoint(tmp_path):
    cfg = _synth_config(tmp_path, "a")
    torch.manual_seed(0)
    model = build_model(cfg, 7)
    before = _clone_state(model)
    init_model(model, cfg, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_then_fine_tune_from_its_checkpoint(tmp_path):
    first = train(_synth_config(tmp_path, "first"), progress=False, command="test")
    best = first.best_checkpoint
    assert checkpoint_paths(best)[0].is_file()
    src_model, sidecar = load_checkpoint(best)
    src = src_model.state_dict()

    # What train() does right after building the model, with a class list in another order.
    cfg = _synth_config(tmp_path, "second", init_checkpoint=str(checkpoint_paths(best)[0]))
    classes = ["neutral", "happy", "anger", "contempt"]
    torch.manual_seed(cfg.seed + 1)
    model = build_model(cfg, len(classes))
    init_model(model, cfg, classes)
    state = model.state_dict()
    for k, v in src.items():
        if not k.startswith("head."):
            assert torch.equal(state[k], v), k
    names = sidecar["class_names"]
    for row, name in enumerate(classes):
        canon = {"anger": "angry"}.get(name, name)
        if canon in names:
            assert torch.equal(state["head.weight"][row], src["head.weight"][names.index(canon)])
        else:
            assert name == "contempt"

    # And the trainer itself: the second run's start equals the first run's weights, so with a
    # vanishing learning rate (and no weight decay) its checkpoint still equals the first's.
    cfg2 = _synth_config(
        tmp_path, "second", init_checkpoint=str(best), lr=1e-12, weight_decay=0.0, momentum=0.0
    )
    train_ds, _ = build_datasets(cfg2)
    assert list(train_ds.class_names) == names
    second = train(cfg2, progress=False, command="test")
    tuned = load_checkpoint(second.best_checkpoint)[0].state_dict()
    for k, v in src.items():
        if k.startswith("head.") or v.dim() > 1:  # conv/linear weights, head (not BN stats)
            assert torch.allclose(tuned[k], v, atol=1e-6), k
    # A run without init_checkpoint from the same seed does not start there.
    fresh_cfg = _synth_config(tmp_path, "fresh", seed=123)
    torch.manual_seed(fresh_cfg.seed)
    fresh = build_model(fresh_cfg, len(names)).state_dict()
    assert not torch.equal(fresh["head.weight"], src["head.weight"])


def test_pseudo_label_loop_starts_round_0_from_the_checkpoint(tmp_path):
    first = train(_synth_config(tmp_path, "first"), progress=False, command="test")
    src = load_checkpoint(first.best_checkpoint)[0].state_dict()
    cfg = _synth_config(
        tmp_path,
        "pl",
        method="pseudo_label",
        max_train_samples=64,
        pseudo_rounds=0,
        init_checkpoint=str(first.best_checkpoint),
        lr=1e-12,
        weight_decay=0.0,
        momentum=0.0,
    )
    result = train(cfg, progress=False, command="test")
    tuned = load_checkpoint(result.best_checkpoint)[0].state_dict()
    for k, v in src.items():
        if k.startswith("head.") or v.dim() > 1:
            assert torch.allclose(tuned[k], v, atol=1e-6), k
