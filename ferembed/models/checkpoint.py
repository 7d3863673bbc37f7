"""Checkpoints: safetensors weights plus a JSON sidecar that says how to rebuild and use them.

A checkpoint ``<stem>`` is two files, written atomically as one unit (the sidecar carries the
weights' sha256; a save killed half way is finished or undone by :func:`recover_checkpoint`)::

    <stem>.safetensors   tensors "model.<state-dict key>" and "loss.<state-dict key>"
    <stem>.json          the sidecar (format "ferembed.checkpoint/1")

Sidecar keys:

==================  =========================================================================
``format``          ``"ferembed.checkpoint/1"``
``arch``            registry name of the model (``create_model(arch, ...)``)
``model_kwargs``    the architecture keywords it was built with
``num_classes``     C
``class_names``     list of C names (``label`` indexes into it)
``embedding_dim``   D
``input``           ``{size, channels, mean, std, mode}``: ``(x/255 - mean)/std`` on
                    ``size x size`` faces with ``channels`` channels; ``mode`` full/partial/fused
``loss``            ``{name, params}`` or null
``train``           the training config (``TrainConfig.to_dict()``) or null
``data``            ``{dataset, root, split, fold, num_folds, counts}`` or null
``metrics``         validation metrics at save time (e.g. ``val_acc``) or ``{}``
``command``         command line that trained it
``wall_time_s``     training wall time so far
``device``          device it was trained on
``epochs``          epochs completed
``created``         ISO-8601 UTC timestamp
``ferembed_version`` version that wrote it
``num_params``      model parameters
``flops``           FLOPs per image (:func:`~ferembed.models.count_flops`)
``sha256``          of the .safetensors file; checked on load
==================  =========================================================================

Loading never unpickles: the model is rebuilt with :func:`create_model` from the sidecar and the
weights are read with ``safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferembed._version import __version__
from ferembed.errors import CheckpointError, FerembedError
from ferembed.models._base import INPUT_MEAN, INPUT_SIZE, INPUT_STD, FERNet, ModelConfigError
from ferembed.models._commit import commit_pair, recover_pair
from ferembed.models._flops import count_flops
from ferembed.models._registry import create_model
from ferembed.models._sidecar import sidecar_class_names, validate_sidecar
from ferembed.models._weights import check_weight_values

FORMAT = "ferembed.checkpoint/1"
#: Sidecar keys that ``meta`` may set (everything else is derived from the model and loss).
META_KEYS = (
    "class_names",
    "input",
    "loss",
    "train",
    "data",
    "metrics",
    "command",
    "wall_time_s",
    "device",
    "epochs",
)


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights, sidecar)`` paths of a checkpoint given its stem, .safetensors or .json path."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        stem = path.with_suffix("")
    else:
        stem = path
    return stem.parent / (stem.name + ".safetensors"), stem.parent / (stem.name + ".json")


def save_checkpoint(
    stem: str | os.PathLike,
    model: FERNet,
    *,
    loss: nn.Module | None = None,
    meta: dict | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``.

    Args:
        stem: path without suffix (a ``.safetensors``/``.json`` suffix is stripped).
        model: a :class:`FERNet` built by :func:`create_model` (``arch``/``model_kwargs`` set).
        loss: the loss module; its state dict (centers, learnable extras) is saved as ``loss.*``
            and its ``name``/``config()`` in the sidecar.
        meta: values for the sidecar keys in :data:`META_KEYS`; ``input`` may be partial
            (e.g. ``{"size": 64}``), the rest of it is filled in.

    Returns:
        The path of the sidecar (``<stem>.json``).

    Raises:
        ValueError: a ``meta`` key that is not in :data:`META_KEYS`.
    """
    from safetensors.torch import save as st_save

    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise ValueError(f"save_checkpoint: unknown meta key(s) {unknown}; allowed: {META_KEYS}")
    weights_path, sidecar_path = checkpoint_paths(stem)

    # Cloned contiguous CPU copies: safetensors refuses tensors that share storage.
    tensors = {f"model.{k}": _plain(v) for k, v in model.state_dict().items()}
    if loss is not None:
        tensors.update({f"loss.{k}": _plain(v) for k, v in loss.state_dict().items()})
    blob = st_save(tensors, metadata={"format": FORMAT})

    size = int(meta.get("input", {}).get("size", INPUT_SIZE))
    input_info = {
        "size": size,
        "channels": model.in_chans,
        "mean": INPUT_MEAN,
        "std": INPUT_STD,
        "mode": model.input_mode,
    }
    input_info.update(meta.pop("input", {}))
    loss_info = meta.pop("loss", None)
    if loss is not None:
        name = getattr(loss, "name", type(loss).__name__)
        loss_info = {"name": name, "params": _loss_params(loss)}
    sidecar: dict[str, Any] = {
        "format": FORMAT,
        "arch": model.arch,
        "model_kwargs": model.model_kwargs,
        "num_classes": model.num_classes,
        "class_names": meta.pop("class_names", None) or [str(i) for i in range(model.num_classes)],
        "embedding_dim": model.embedding_dim,
        "input": input_info,
        "loss": loss_info,
        "train": meta.pop("train", None),
        "data": meta.pop("data", None),
        "metrics": meta.pop("metrics", {}),
        "command": meta.pop("command", ""),
        "wall_time_s": meta.pop("wall_time_s", None),
        "device": meta.pop("device", None),
        "epochs": meta.pop("epochs", None),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ferembed_version": __version__,
        "num_params": model.num_params(),
        "flops": count_flops(model, (1, model.in_chans, size, size)),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    if len(sidecar["class_names"]) != model.num_classes:
        raise ValueError(
            f"save_checkpoint: {len(sidecar['class_names'])} class_names for a model with "
            f"{model.num_classes} classes"
        )
    commit_pair(weights_path, sidecar_path, blob, sidecar)
    return sidecar_path


def recover_checkpoint(path: str | os.PathLike) -> list[Path]:
    """Finish or undo a save of the checkpoint at ``path`` that a dead process left half done
    (see :mod:`ferembed.models._commit`); returns the pending sidecars acted on."""
    return recover_pair(*checkpoint_paths(path))


def load_sidecar(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint's sidecar (no weights read, no torch work).

    Raises:
        CheckpointError: missing file, bad JSON, wrong format, or a field missing, mistyped
            or out of range (:data:`ferembed.models._sidecar.SIDECAR_FIELDS`; file and field
            named).
    """
    _, sidecar_path = checkpoint_paths(path)
    recover_checkpoint(path)  # a save killed between the weights and the sidecar
    if not sidecar_path.is_file():
        raise CheckpointError(f"{sidecar_path}: checkpoint sidecar not found")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{sidecar_path}: unreadable checkpoint sidecar ({exc})") from None
    if not isinstance(sidecar, dict):
        raise CheckpointError(f"{sidecar_path}: checkpoint sidecar is not a JSON object")
    if sidecar.get("format") != FORMAT:
        raise CheckpointError(
            f"{sidecar_path}: not a ferembed checkpoint (format {sidecar.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    validate_sidecar(sidecar, sidecar_path)
    sidecar["class_names"] = sidecar_class_names(sidecar, sidecar_path, count=False)
    return sidecar


def load_checkpoint(path: str | os.PathLike, *, device: str = "cpu") -> tuple[FERNet, dict]:
    """Rebuild the model of a checkpoint and load its weights.

    Args:
        path: the stem, the ``.safetensors`` file or the ``.json`` sidecar.
        device: where to put the model.

    Returns:
        ``(model, sidecar)``; the model is in eval mode.

    Raises:
        CheckpointError: missing/corrupt/tampered files (sha256 mismatch), an unknown
            architecture, or weights that do not fit the architecture. The message names the
            file.
    """
    sidecar = load_sidecar(path)
    weights_path, sidecar_path = checkpoint_paths(path)
    tensors = _read_tensors(weights_path, sidecar)
    inp = sidecar["input"]
    try:
        model = create_model(
            sidecar["arch"],
            int(sidecar["num_classes"]),
            embedding_dim=int(sidecar["embedding_dim"]),
            in_chans=int(inp.get("channels", 1)),
            **dict(sidecar["model_kwargs"]),
        )
        model.set_input_mode(inp.get("mode", "full"))
    except (ModelConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{sidecar_path}: cannot rebuild the model ({exc})") from None
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_state(model, state, weights_path, "model")
    sidecar_class_names(sidecar, sidecar_path)
    model.to(device).eval()
    return model, sidecar


def load_loss_state(loss: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a checkpoint's ``loss.*`` tensors (centers, learnable extras) into ``loss``.

    Raises:
        CheckpointError: missing files, sha256 mismatch or a state that does not fit ``loss``.
    """
    sidecar = load_sidecar(path)
    weights_path, _ = checkpoint_paths(path)
    tensors = _read_tensors(weights_path, sidecar)
    state = {k[len("loss.") :]: v for k, v in tensors.items() if k.startswith("loss.")}
    _load_state(loss, state, weights_path, "loss")
    return loss


def init_from_checkpoint(model: FERNet, path: str | os.PathLike, class_names) -> dict:
    """Copy a checkpoint's weights into a fresh ``model`` to fine-tune it on another dataset.

    Every tensor outside the head must exist in the checkpoint with the same shape (the same
    architecture, width and embedding size). The head's rows are copied for the classes both sides
    share by canonical name (CK+ ``anger`` takes FER2013's ``angry`` row); the other classes (e.g.
    CK+ ``contempt``) keep their fresh initialisation. Loss state (centers) is not copied.

    Args:
        model: the model to initialise (built for ``class_names``).
        path: the checkpoint (stem, ``.safetensors`` or ``.json``).
        class_names: the model's classes, in head order.

    Returns:
        ``{"checkpoint", "sha256", "copied_classes", "new_classes"}``.

    Raises:
        CheckpointError: unreadable/tampered checkpoint, or weights that do not fit the model.
    """
    from ferembed.data.vocab import canonical_name

    if len(class_names) != model.num_classes:
        raise ValueError(
            f"init_from_checkpoint: {len(class_names)} class names for a model with "
            f"{model.num_classes} classes"
        )
    sidecar = load_sidecar(path)
    weights_path, _ = checkpoint_paths(path)
    tensors = _read_tensors(weights_path, sidecar)
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    own = model.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith("head.")}
    own_body = {k: v for k, v in own.items() if not k.startswith("head.")}
    _check_fit(own_body, body, weights_path, "model")
    check_weight_values(own, state, weights_path, "model")  # the head rows too
    sidecar_class_names(sidecar, checkpoint_paths(path)[1])
    model.load_state_dict({**own, **body}, strict=True)
    theirs = {}
    for i, name in enumerate(sidecar["class_names"]):
        try:
            theirs[canonical_name(name)] = i
        except FerembedError:
            continue
    copied, new = [], []
    with torch.no_grad():
        for row, name in enumerate(class_names):
            try:
                src = theirs.get(canonical_name(name))
            except FerembedError:
                src = None
            if src is None or "head.weight" not in state:
                new.append(str(name))
                continue
            model.head.weight[row] = state["head.weight"][src]
            model.head.bias[row] = state["head.bias"][src]
            copied.append(str(name))
    return {
        "checkpoint": str(weights_path),
        "sha256": sidecar["sha256"],
        "copied_classes": copied,
        "new_classes": new,
    }


# ------------------------------------------------------------------------------------------------


def _read_tensors(weights_path: Path, sidecar: dict) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: checkpoint weights not found")
    blob = weights_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sidecar["sha256"]:
        raise CheckpointError(
            f"{weights_path}: sha256 {digest[:12]}... does not match the sidecar's "
            f"{str(sidecar['sha256'])[:12]}... (file changed or corrupt)"
        )
    try:
        return st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path}: unreadable safetensors file ({exc})") from None


def _load_state(module: nn.Module, state: dict, weights_path: Path, what: str) -> None:
    _check_fit(module.state_dict(), state, weights_path, what)
    module.load_state_dict(state, strict=True)


def _check_fit(own: dict, state: dict, weights_path: Path, what: str) -> None:
    """Raise CheckpointError naming the file unless ``state`` has exactly ``own``'s keys/shapes."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{label}: {keys[:3]}{more}")
        raise CheckpointError(
            f"{weights_path}: {what} weights do not fit the architecture ({'; '.join(parts)})"
        )
    check_weight_values(own, state, weights_path, what)


def _plain(t):
    return t.detach().cpu().contiguous().clone()


def _loss_params(loss: nn.Module) -> dict:
    config = getattr(loss, "config", None)
    return config() if callable(config) else {}
