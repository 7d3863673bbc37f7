"""scripts/ship_checkpoints.py: a finished ``ferembed train`` folder becomes a checkpoint with its
card (the shipped SynthFER softmax checkpoint stands in for the folder's best one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ship_checkpoints import main_ship

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "synthfer"


def _finished_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(SHIPPED / f"softmax{suffix}", folder / f"best{suffix}")
    config = json.loads((SHIPPED / "softmax.config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "root": "/elsewhere"}))
    (folder / "pseudo_labels.json").write_text('{"rounds": []}')
    return folder


@pytest.mark.slow
def test_ship_copies_the_best_checkpoint_and_writes_its_card(tmp_path, capsys):
    run, out = _finished_run(tmp_path / "run"), tmp_path / "ck"
    assert main_ship(["--out", str(out), "--dataset", "synthfer", f"mine={run}"]) == 0
    assert "mine: test accuracy" in capsys.readouterr().out
    for suffix in (".safetensors", ".json"):
        assert (out / f"mine{suffix}").read_bytes() == (run / f"best{suffix}").read_bytes()
    assert json.loads((out / "mine.pseudo_labels.json").read_text()) == {"rounds": []}
    card = json.loads((out / "mine.card.json").read_text())
    assert 0.0 <= card["test_accuracy"] <= 1.0
    # without --root the config keeps the path the run used; with it, the card's path
    assert json.loads((out / "mine.config.json").read_text())["root"] == "/elsewhere"
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [("no-equals-sign", "expected NAME=FOLDER"), ("name=", "expected NAME=FOLDER")],
)
def test_bad_specs_are_one_line_errors(tmp_path, capsys, spec, needle):
    assert main_ship(["--out", str(tmp_path / "ck"), "--dataset", "synthfer", spec]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_an_unfinished_run_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    spec = f"mine={tmp_path / 'run'}"
    assert main_ship(["--out", str(tmp_path / "ck"), "--dataset", "synthfer", spec]) == 2
    assert "no best.json" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()
