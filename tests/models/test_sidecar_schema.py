"""The sidecar schema validator, generated from the schema itself: for every field, a value of
the wrong type (and out of range where the field has one) is refused with one line naming the
file and the field; every required field, removed, is named as missing."""

from __future__ import annotations

import copy
import json

import pytest

from ferembed.errors import CheckpointError
from ferembed.models import load_sidecar
from ferembed.models._sidecar import INPUT_FIELDS, LOSS_FIELDS, SIDECAR_FIELDS

GOOD = {
    "format": "ferembed.checkpoint/1",
    "arch": "vgg",
    "model_kwargs": {},
    "num_classes": 2,
    "class_names": ["angry", "happy"],
    "embedding_dim": 8,
    "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.5, "mode": "full"},
    "loss": {"name": "center", "params": {}},
    "train": None,
    "data": None,
    "metrics": {},
    "command": "",
    "wall_time_s": 1.5,
    "epochs": 3,
    "num_params": 10,
    "flops": 100,
    "sha256": "0" * 64,
}
#: A value of the wrong type for each kind of field.
WRONG_TYPE = {"str": 7, "int": "7", "number": "7", "dict": [1], "names": "a,b", "sha256": "xyz",
              "input": [48], "loss": "center"}  # fmt: skip


def _cases():
    sections = {"": SIDECAR_FIELDS, "input.": INPUT_FIELDS, "loss.": LOSS_FIELDS}
    for prefix, fields in sections.items():
        for f in fields:
            if f.key == "format":  # checked first, with its own message (test_checkpoint.py)
                continue
            yield prefix + f.key, WRONG_TYPE[f.kind]
            if f.minimum is not None:
                yield prefix + f.key, f.minimum - 1
            if f.maximum is not None:
                yield prefix + f.key, f.maximum + 1
            if f.positive:
                yield prefix + f.key, 0
            if f.kind in ("int", "number"):
                yield prefix + f.key, True  # a bool is not a number here
            if f.choices:
                yield prefix + f.key, "other"
            if not f.nullable:
                yield prefix + f.key, None


def _set(sidecar: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(sidecar)
    *parents, key = dotted.split(".")
    target = out
    for p in parents:
        target = target[p]
    if value is _DROP:
        del target[key]
    else:
        target[key] = value
    return out


_DROP = object()


def _load(tmp_path, sidecar):
    path = tmp_path / "best.json"
    path.write_text(json.dumps(sidecar))
    return load_sidecar(path)


def test_the_good_sidecar_loads(tmp_path):
    assert _load(tmp_path, GOOD)["class_names"] == ["angry", "happy"]


@pytest.mark.parametrize(("field", "value"), list(_cases()), ids=lambda v: repr(v)[:20])
def test_bad_field_is_named(tmp_path, field, value):
    with pytest.raises(CheckpointError) as info:
        _load(tmp_path, _set(GOOD, field, value))
    msg = str(info.value)
    assert "best.json" in msg and "\n" not in msg
    assert repr(field) in msg or field in msg, msg


@pytest.mark.parametrize(
    "field",
    [f.key for f in SIDECAR_FIELDS if f.required and f.key != "format"]
    + [f"loss.{f.key}" for f in LOSS_FIELDS if f.required],
)
def test_missing_required_field_is_named(tmp_path, field):
    with pytest.raises(CheckpointError, match="lacks") as info:
        _load(tmp_path, _set(GOOD, field, _DROP))
    assert field in str(info.value)


def test_duplicate_class_names(tmp_path):
    with pytest.raises(CheckpointError, match="duplicate class name 'angry'"):
        _load(tmp_path, {**GOOD, "class_names": ["angry", "angry"]})


def test_non_finite_numbers_are_refused(tmp_path):
    bad = _set(GOOD, "input.mean", float("nan"))
    path = tmp_path / "best.json"
    path.write_text(json.dumps(bad))  # Python writes NaN, which json.loads reads back
    with pytest.raises(CheckpointError, match=r"'input\.mean' must be a finite number"):
        load_sidecar(path)
