"""Every shipped checkpoint reproduces its model card through `ferembed embed` + `evaluate`.

The cards in ``checkpoints/<dataset>/<method>.card.json`` record the test accuracy and mean class
accuracy measured when they were written; here each checkpoint is embedded and evaluated again
through the CLI, exactly as a user would, and must give the same numbers. FER2013 needs the real
data (skipped without it, run in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferembed import cli

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def _cards(dataset: str) -> list[Path]:
    return sorted((CHECKPOINTS / dataset).glob("*.card.json"))


def _check_card(card_path: Path, dataset: str, root: str | None, tmp_path: Path) -> None:
    card = json.loads(card_path.read_text())
    method = card_path.name.removesuffix(".card.json")
    ckpt = card_path.parent / f"{method}.json"
    run = tmp_path / method
    args = ["embed", "--checkpoint", str(ckpt), "--dataset", dataset, "--split", "test"]
    args += ["--root", root] if root else []
    assert cli.main([*args, "--out", str(run), "--device", "cpu", "--quiet", "--no-thumbs"]) == 0
    assert cli.main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # Same faces, same weights, same CPU kernels: at most one face may flip on a float near-tie.
    tol = 1.0 / metrics["n"] + 1e-12
    assert metrics["head_accuracy"] == pytest.approx(card["test_accuracy"], abs=tol)
    head = metrics["classification"]["head"]
    assert head["mean_class_accuracy"] == pytest.approx(card["test_mean_class_accuracy"], abs=0.01)
    size_mb = (card_path.parent / f"{method}.safetensors").stat().st_size / 2**20
    assert size_mb < 5, f"{method}: shipped checkpoint is {size_mb:.1f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("card", _cards("synthfer"), ids=lambda p: p.name.split(".")[0])
def test_synthfer_checkpoint_reproduces_its_card(card, tmp_path):
    _check_card(card, "synthfer", None, tmp_path)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("card", _cards("fer2013"), ids=lambda p: p.name.split(".")[0])
def test_fer2013_checkpoint_reproduces_its_card(card, fer2013_root, tmp_path):
    _check_card(card, "fer2013", str(fer2013_root), tmp_path)


def test_every_fer2013_method_is_shipped_with_config_and_card():
    from ferembed.zoo import METHODS

    folder = CHECKPOINTS / "fer2013"
    if not folder.is_dir():
        pytest.skip("no FER2013 checkpoints in this checkout")
    for method in METHODS:
        for suffix in (".safetensors", ".json", ".config.json", ".card.json", ".md"):
            assert (folder / f"{method}{suffix}").is_file(), f"{method}{suffix} missing"
        card = json.loads((folder / f"{method}.card.json").read_text())
        config = json.loads((folder / f"{method}.config.json").read_text())
        assert card["epochs"] == config["epochs"]  # one equal budget, recorded on each card
        assert card["command"].startswith("ferembed zoo --dataset fer2013")
