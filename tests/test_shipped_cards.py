"""Issue #12: every interval on every shipped model card contains its estimate (the card's
numbers are the ones `ferembed zoo --cards-only` writes from a fresh evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
CARDS = sorted(CHECKPOINTS.glob("*/*.card.json"))


def _intervals(card: dict):
    """``(key, estimate, [lo, hi])`` of every interval on a card."""
    for key, value in card.items():
        if key.endswith("_ci") and key != "geometry_ci" and value is not None:
            yield key, card[key[: -len("_ci")]], value
    for key, value in (card.get("geometry_ci") or {}).items():
        if value is not None:
            yield key, card[key], value


def test_there_are_shipped_cards():
    assert {p.parent.name for p in CARDS} >= {"synthfer", "fer2013", "fer2013-long"}


@pytest.mark.parametrize("path", CARDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_card_interval_contains_its_estimate(path):
    card = json.loads(path.read_text())
    checked = list(_intervals(card))
    assert len(checked) >= 5, f"{path}: fewer intervals than a card carries"
    for key, estimate, (lo, hi) in checked:
        assert lo <= estimate <= hi, f"{path.name} {key}: {estimate} not in [{lo}, {hi}]"


def test_card_description_does_not_claim_a_recipe_the_checkpoint_did_not_run():
    from ferembed.zoo import _description

    ran_now = {"loss": {"name": "triplet", "params": {"mining": "semihard", "margin": 0.1}}}
    ran_before = {"loss": {"name": "triplet", "params": {"margin": 0.2}}}
    assert "semi-hard" in _description("triplet", ran_now)
    assert "semi-hard" not in _description("triplet", ran_before)
    assert "before the zoo's current recipe" in _description("triplet", ran_before)
    plain = _description("softmax", {"loss": {"name": "softmax", "params": {}}})
    assert plain.startswith("Softmax cross-entropy")


def test_pseudo_label_cards_give_rounds_and_the_shipped_round():
    from ferembed.zoo import _data_and_epochs

    rounds = [
        {"round": 0, "n_trained": 14354, "epochs": 8, "best_epoch": 8, "best_score": 0.448},
        {"round": 1, "n_trained": 21532, "epochs": 2, "best_epoch": 2, "best_score": 0.459},
        {"round": 2, "n_trained": 21532, "epochs": 2, "best_epoch": 1, "best_score": 0.473},
    ]
    data = {"split": "train", "val_split": "val"}
    row: dict = {}
    lines = _data_and_epochs("fer2013", data, row, {"rounds": rounds, "control": False})
    assert lines == [
        "| data | `fer2013` split `train`: round 0 on 14,354 labelled images, rounds 1-2 on 21,532 "
        "(labelled + kept pseudo-labels); validated on `val` |",
        "| epochs | round 0: 8, then 2 rounds of 2 epochs; shipped: round 2, its epoch 1 (the best "
        "validation score of all rounds) |",
    ]
    assert row["shipped_round"] == 2
    # ties go to the first round, as the loop picks it; the control says what it trains on
    tied = [dict(r, best_score=0.5) for r in rounds]
    row = {}
    lines = _data_and_epochs("fer2013", data, row, {"rounds": tied, "control": True})
    assert row["shipped_round"] == 0 and "(the labelled ones alone: the control)" in lines[0]


def test_cards_only_covers_every_checkpoint_of_a_folder(tmp_path):
    from ferembed.zoo import shipped_names

    for name in ("triplet", "softmax", "affinity_cluster_control", "orphan"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
        if name != "orphan":  # no sidecar: not a checkpoint
            (tmp_path / f"{name}.json").write_text("{}")
    assert shipped_names(tmp_path) == ["softmax", "triplet", "affinity_cluster_control"]
