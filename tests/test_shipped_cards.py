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
