"""The checkpoint sidecar's schema, and the one validator that reads it.

The schema is data: one :class:`SidecarField` per key, saying its type, whether it must be there,
whether it may be null, and its range or choices. :func:`validate_sidecar` walks it and raises
:class:`~ferembed.errors.CheckpointError` with one line naming the file and the field, so no
consumer of a sidecar meets a mistyped value later as a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferembed.errors import CheckpointError

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Largest input side a model may ask for: a face larger than this is a mistake (a stack of
#: 100000x100000 faces would need terabytes), refused before any image is read.
MAX_INPUT_SIZE = 2048


@dataclass(frozen=True)
class SidecarField:
    """One key of a JSON object and what its value must be."""

    key: str
    kind: str  # "str", "int", "number", "dict", "names" (list of str), "sha256", or a section
    required: bool = False  # the key must be present
    nullable: bool = False  # the value may be null
    minimum: float | None = None  # smallest allowed value (numbers)
    maximum: float | None = None  # largest allowed value (numbers)
    positive: bool = False  # the value must be > 0 (numbers)
    choices: tuple = ()  # the allowed values, when not empty


#: ``input``: how faces become the model's input.
INPUT_FIELDS = (
    SidecarField("size", "int", minimum=1, maximum=MAX_INPUT_SIZE),
    SidecarField("channels", "int", choices=(1, 3)),
    SidecarField("mean", "number"),
    SidecarField("std", "number", positive=True),
    SidecarField("mode", "str", choices=("full", "partial", "fused")),
)
#: ``loss``: the loss the weights were trained with.
LOSS_FIELDS = (
    SidecarField("name", "str", required=True),
    SidecarField("params", "dict", nullable=True),
)
#: The top-level keys (format "ferembed.checkpoint/1"); keys not listed are kept unchecked.
SIDECAR_FIELDS = (
    SidecarField("format", "str", required=True),
    SidecarField("arch", "str", required=True),
    SidecarField("model_kwargs", "dict", required=True),
    SidecarField("num_classes", "int", required=True, minimum=1),
    SidecarField("class_names", "names"),
    SidecarField("embedding_dim", "int", required=True, minimum=1),
    SidecarField("input", "input", required=True),
    SidecarField("loss", "loss", nullable=True),
    SidecarField("train", "dict", nullable=True),
    SidecarField("data", "dict", nullable=True),
    SidecarField("metrics", "dict", nullable=True),
    SidecarField("command", "str", nullable=True),
    SidecarField("wall_time_s", "number", nullable=True, minimum=0),
    SidecarField("epochs", "int", nullable=True, minimum=0),
    SidecarField("num_params", "int", nullable=True, minimum=0),
    SidecarField("flops", "number", nullable=True, minimum=0),
    SidecarField("sha256", "sha256", required=True),
)
_SECTIONS = {"input": INPUT_FIELDS, "loss": LOSS_FIELDS}


def validate_sidecar(sidecar: dict, path: Path) -> dict:
    """Check ``sidecar`` against :data:`SIDECAR_FIELDS`; returns it unchanged.

    Raises:
        CheckpointError: ``"<path>: checkpoint sidecar lacks [...]"`` for missing required keys,
            else one line naming the first field of the wrong type or out of range.
    """
    missing = [f.key for f in SIDECAR_FIELDS if f.required and f.key not in sidecar]
    if missing:
        raise CheckpointError(f"{path}: checkpoint sidecar lacks {missing}")
    _check_object(sidecar, SIDECAR_FIELDS, path, "")
    return sidecar


def _check_object(obj: dict, fields: tuple[SidecarField, ...], path: Path, prefix: str) -> None:
    for f in fields:
        name = prefix + f.key
        if f.key not in obj:
            if f.required:
                raise CheckpointError(f"{path}: checkpoint sidecar lacks {name!r}")
            continue
        value = obj[f.key]
        if value is None:
            if not f.nullable:
                raise CheckpointError(f"{path}: sidecar field {name!r} is null")
            continue
        if f.kind in _SECTIONS:
            if not isinstance(value, dict):
                raise _wrong(path, name, "an object", value)
            _check_object(value, _SECTIONS[f.kind], path, name + ".")
        else:
            _check_value(f, value, path, name)


def _check_value(f: SidecarField, value: Any, path: Path, name: str) -> None:
    if f.kind == "str" and not isinstance(value, str):
        raise _wrong(path, name, "a string", value)
    if f.kind == "dict" and not isinstance(value, dict):
        raise _wrong(path, name, "an object", value)
    if f.kind == "sha256" and not (isinstance(value, str) and _SHA256.fullmatch(value)):
        raise _wrong(path, name, "64 lowercase hex digits", value)
    if f.kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _wrong(path, name, "a list of non-empty strings", value)
    if f.kind in ("int", "number"):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if f.kind == "int" and not is_int:
            raise _wrong(path, name, "an integer", value)
        if not (is_int or isinstance(value, float)) or not math.isfinite(value):
            raise _wrong(path, name, "a finite number", value)
        if f.minimum is not None and value < f.minimum:
            raise _wrong(path, name, f"a number >= {f.minimum:g}", value)
        if f.maximum is not None and value > f.maximum:
            raise _wrong(path, name, f"a number <= {f.maximum:g}", value)
        if f.positive and value <= 0:
            raise _wrong(path, name, "a number > 0", value)
    if f.choices and value not in f.choices:
        raise _wrong(path, name, f"one of {list(f.choices)}", value)


def _wrong(path: Path, name: str, expected: str, value: Any) -> CheckpointError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return CheckpointError(f"{path}: sidecar field {name!r} must be {expected}, got {shown}")


def sidecar_class_names(sidecar: dict, path: Path, *, count: bool = True) -> list[str]:
    """The sidecar's class names: distinct names, ``num_classes`` of them with ``count``
    (absent: ``"0"``, ``"1"``, ...).

    Raises:
        CheckpointError: a duplicate name, or (``count``) a number other than ``num_classes``.
    """
    k = sidecar["num_classes"]
    names = sidecar.get("class_names") or [str(i) for i in range(k)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CheckpointError(f"{path}: duplicate class name {name!r} in class_names")
        seen.add(name)
    if count and len(names) != k:
        raise CheckpointError(f"{path}: sidecar has {len(names)} class_names for num_classes={k}")
    return list(names)
