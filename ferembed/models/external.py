"""Models from outside ferembed: a user's ``nn.Module`` factory, TorchScript, ONNX.

:func:`load_external_model` turns a model SPEC into an :class:`ExternalModel`, whose one method
``embed(images)`` maps a batch of uint8 grayscale faces to ``(embeddings, logits or None)``. The
embedding loop of :mod:`ferembed.runs.embed` calls only that method, for these models and for
ferembed's own checkpoints (:meth:`ExternalModel.from_module`).

SPEC forms::

    python:PATH.py:FUNC        a factory in a file, called with no arguments, returning nn.Module
    python:pkg.module:FUNC     the same from an importable module
    torchscript:PATH           torch.jit.load(PATH)
    onnx:PATH                  an onnxruntime session (CUDA provider when present, else CPU)

``python:`` factories and ``torchscript:`` files execute the user's code: load trusted files only.
``onnx:`` graphs and ``.safetensors`` weights are data; a ``.pt``/``.pth`` state dict is read with
``torch.load(weights_only=True)``, which refuses pickles that would run code.

The embedding is the model's output (a tensor, the first element of a tuple, or the
``"embedding"`` key of a dict), or, with ``embedding_layer``, the output of the named submodule
(a forward hook; flattened to ``(B, -1)``). ``head_layer`` gives the logits the same way.
TorchScript modules take no hooks and ONNX graphs have no submodules, so for them a layer name
selects one of the model's outputs: a position (``"1"``) or dict key for TorchScript, an output
name for ONNX.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferembed.errors import CheckpointError
from ferembed.models._runners import FERNetRunner, OnnxRunner, TorchRunner
from ferembed.models._sidecar import MAX_INPUT_SIZE
from ferembed.models._weights import check_weight_values

#: The accepted SPEC forms (shown in errors).
SPEC_FORMS = ("python:PATH.py:FUNC", "python:pkg.module:FUNC", "torchscript:PATH", "onnx:PATH")
#: Weight file suffixes accepted by ``--weights``.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass(frozen=True)
class Preprocess:
    """How uint8 grayscale faces become the model's input: resize, scale to [0, 1], normalise.

    ``x = (pixels / 255 - mean[c]) / std[c]`` for each channel c; grayscale is replicated to the
    channels. Saved in run.json so a run can be reproduced.
    """

    size: tuple[int, int] = (48, 48)  # (H, W) of the model's input
    channels: int = 1  # 1 (grayscale) or 3 (the gray face in each channel)
    mean: tuple[float, ...] = (0.0,)  # one value, or one per channel
    std: tuple[float, ...] = (1.0,)  # one value, or one per channel; all > 0

    def __post_init__(self) -> None:
        h, w = self.size
        if h < 1 or w < 1:
            raise CheckpointError(f"--input-size must be positive, got {h}x{w}")
        if max(h, w) > MAX_INPUT_SIZE:
            raise CheckpointError(f"--input-size must be <= {MAX_INPUT_SIZE}, got {h}x{w}")
        if self.channels not in (1, 3):
            raise CheckpointError(f"--channels must be 1 or 3, got {self.channels}")
        for flag, vals in (("--mean", self.mean), ("--std", self.std)):
            if len(vals) not in (1, self.channels):
                raise CheckpointError(
                    f"{flag} takes 1 or {self.channels} values (one per channel), got {len(vals)}"
                )
        if min(self.std) <= 0:
            raise CheckpointError(f"--std must be > 0, got {list(self.std)}")

    @classmethod
    def from_options(
        cls,
        input_size: str | int | None = None,
        channels: int | None = None,
        mean: str | float | None = None,
        std: str | float | None = None,
    ) -> Preprocess:
        """Parse CLI strings: ``input_size`` "H" or "HxW", ``mean``/``std`` "v" or "v1,v2,v3"."""
        return cls(
            size=_parse_size(input_size) if input_size is not None else cls.size,
            channels=int(channels) if channels is not None else cls.channels,
            mean=_parse_floats(mean, "--mean") if mean is not None else cls.mean,
            std=_parse_floats(std, "--std") if std is not None else cls.std,
        )

    @property
    def load_size(self) -> int:
        """Square size to read the dataset at (the loaders give square faces)."""
        return max(self.size)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def apply(self, images: np.ndarray) -> np.ndarray:
        """(B, h, w) uint8 faces -> (B, channels, H, W) float32 model input."""
        h, w = self.size
        if images.shape[1:] != (h, w):
            images = np.stack([_resize(im, (h, w)) for im in images])
        x = images.astype(np.float32)[:, None] / np.float32(255.0)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        if self.channels > 1:
            x = np.repeat(x, self.channels, axis=1)
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 -> ``size`` (H, W) uint8, bilinear (as the dataset loaders resize)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR), dtype=np.uint8)


def _parse_size(value: str | int) -> tuple[int, int]:
    text = str(value).lower().strip()
    parts = text.split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise CheckpointError(f"--input-size expects H or HxW, got {value!r}") from None
    if len(dims) not in (1, 2):
        raise CheckpointError(f"--input-size expects H or HxW, got {value!r}")
    return (dims[0], dims[-1])


def _parse_floats(value: str | float, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in str(value).replace(" ", "").split(","))
    except ValueError:
        raise CheckpointError(
            f"{flag} expects a number or comma-separated numbers, got {value!r}"
        ) from None


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------- the model
class ExternalModel:
    """A loaded model with ferembed's one embedding interface, :meth:`embed`.

    Attributes:
        spec: the SPEC it was loaded from (or a description for a ferembed checkpoint).
        preprocess: how faces become its input.
        info: provenance for run.json (spec, weights, weights_sha256, layers, preprocess...).
    """

    def __init__(self, runner, preprocess: Preprocess, *, spec: str, info: dict | None = None):
        self._runner = runner
        self.preprocess = preprocess
        self.spec = spec
        self.info = {"spec": spec, **(info or {}), "preprocess": preprocess.as_dict()}

    @classmethod
    def from_module(cls, module, preprocess: Preprocess, *, device: str = "cpu") -> ExternalModel:
        """Wrap a ferembed FERNet (``forward_features``/``forward_head``, linear ``head``)."""
        return cls(FERNetRunner(module, device), preprocess, spec=f"ferembed:{module.arch}")

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, h, w) uint8 faces -> ((B, D) float32 embeddings, (B, C) float32 logits or None).

        Raises:
            CheckpointError: the model rejects the input or gives no usable embedding.
        """
        x = self.preprocess.apply(images)
        try:
            emb, logits = self._runner(x)
        except CheckpointError:
            raise
        except Exception as exc:  # torch and onnxruntime raise many types for a bad input shape
            msg = str(exc).strip().splitlines()
            raise CheckpointError(
                f"{self.spec}: the model rejected input {tuple(x.shape)} "
                f"(--input-size {'x'.join(map(str, self.preprocess.size))}, "
                f"--channels {self.preprocess.channels}): {msg[0] if msg else type(exc).__name__}"
            ) from None
        return self._matrix(emb, "embedding", len(x)), (
            None if logits is None else self._matrix(logits, "logits", len(x))
        )

    def _matrix(self, value: Any, what: str, n: int) -> np.ndarray:
        """``value`` as (n, -1) float32; refuses complex and NaN/Inf outputs, naming them."""
        if hasattr(value, "detach"):
            if value.is_complex():
                raise CheckpointError(f"{self.spec}: the model's {what} is complex ({value.dtype})")
            value = value.detach().float().cpu().numpy()
        if isinstance(value, np.ndarray) and np.iscomplexobj(value):
            raise CheckpointError(f"{self.spec}: the model's {what} is complex ({value.dtype})")
        if not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{self.spec}: the model output gives no {what} tensor (got {type(value).__name__})"
                "; return a tensor, a tuple (embedding first) or a dict with an 'embedding' key, "
                "or name a layer with --embedding-layer"
            )
        if value.ndim < 2 or value.shape[0] != n:
            raise CheckpointError(
                f"{self.spec}: {what} of shape {tuple(value.shape)} for a batch of {n}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(value.reshape(n, -1), dtype=np.float32)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise CheckpointError(
                f"{self.spec}: the model's {what} has NaN/Inf for {int(bad.sum())} of {n} images "
                f"of a batch (first at batch row {int(np.flatnonzero(bad)[0])}); check its "
                "weights and input normalisation"
            )
        return out

    def head_params(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The head layer's (C, D) weight and (C,) bias when it is an ``nn.Linear``, else None."""
        return self._runner.head_params()

    def num_params(self) -> int | None:
        return self._runner.num_params()

    def check(self) -> tuple[int, int | None]:
        """Run one blank batch; returns (D, C or None). Raises CheckpointError on any mismatch."""
        emb, logits = self.embed(np.zeros((2, *self.preprocess.size), np.uint8))
        return emb.shape[1], None if logits is None else logits.shape[1]


# ------------------------------------------------------------------------------------- loading
def parse_spec(spec: str) -> tuple[str, str]:
    """``"onnx:m.onnx"`` -> ``("onnx", "m.onnx")``; raises CheckpointError on an unknown form."""
    kind, sep, target = str(spec).partition(":")
    if not sep or kind not in ("python", "torchscript", "onnx") or not target:
        raise CheckpointError(
            f"--model {spec!r}: unknown form (use one of {', '.join(SPEC_FORMS)})"
        )
    return kind, target


def _python_factory(target: str, spec: str) -> Callable:
    where, sep, func = target.rpartition(":")
    if not sep or not where or not func:
        raise CheckpointError(
            f"--model {spec!r}: expected python:PATH.py:FUNC or python:pkg.mod:FUNC"
        )
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found")
        name = f"_ferembed_user_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        try:
            mod_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise CheckpointError(
                f"{path}: failed to import ({type(exc).__name__}: {exc})"
            ) from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise CheckpointError(f"--model {spec!r}: cannot import {where!r} ({exc})") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise CheckpointError(
            f"{where}: no function {func!r} (callables: {', '.join(found) or 'none'})"
        )
    return fn


def _load_weights(module, weights: Path) -> None:
    import pickle

    import torch

    if not weights.is_file():
        raise CheckpointError(f"{weights}: file not found")
    suffix = weights.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{weights}: not a readable .safetensors file ({exc})") from None
    elif suffix in (".pt", ".pth"):
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{weights}: refused: torch.load(weights_only=True) cannot read it as plain "
                f"tensors ({first}); save model.state_dict() or use .safetensors"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"{weights}: holds a {type(state).__name__}, not a state dict")
    else:
        raise CheckpointError(
            f"{weights}: unknown weights format (use {', '.join(WEIGHT_SUFFIXES)})"
        )
    check_weight_values(module.state_dict(), state, weights)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"{weights}: does not fit the model ({detail[:300]})") from None


def _onnx_session(path: Path, device: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise CheckpointError("onnx: models need onnxruntime (pip install onnxruntime)") from None
    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise CheckpointError(f"{path}: not a loadable ONNX model ({str(exc)[:200]})") from None


def load_external_model(
    spec: str,
    *,
    weights: str | os.PathLike | None = None,
    embedding_layer: str | None = None,
    head_layer: str | None = None,
    preprocess: Preprocess | None = None,
    device: str = "cpu",
) -> ExternalModel:
    """Load a model from a SPEC (see the module docstring) and check it on a blank batch.

    Args:
        spec: ``python:PATH.py:FUNC``, ``python:pkg.module:FUNC``, ``torchscript:PATH`` or
            ``onnx:PATH``.
        weights: a ``.safetensors`` or ``.pt``/``.pth`` state dict for a ``python:`` factory.
        embedding_layer: take the embedding from this layer (or output) instead of the output.
        head_layer: take logits from this layer (or output).
        preprocess: input size, channels and normalisation (default 48x48 gray in [0, 1]).
        device: torch device string ("cpu", "cuda"...); ONNX uses CUDA when it is not "cpu".

    Raises:
        CheckpointError: a one-line message naming the file, function, layer or shape at fault.
    """
    preprocess = preprocess or Preprocess()
    kind, target = parse_spec(spec)
    info: dict[str, Any] = {
        "kind": kind,
        "weights": str(weights) if weights is not None else None,
        "weights_sha256": None,
        "embedding_layer": embedding_layer,
        "head_layer": head_layer,
        "device": device,
    }
    if weights is not None and kind != "python":
        raise CheckpointError(f"--weights applies to python: factories, not {kind}: models")
    if kind == "python":
        import torch

        factory = _python_factory(target, spec)
        try:
            module = factory()
        except Exception as exc:
            raise CheckpointError(
                f"{target}: the factory raised {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(module, torch.nn.Module):
            raise CheckpointError(
                f"{target}: returned {type(module).__name__}, not a torch.nn.Module"
            )
        if weights is not None:
            _load_weights(module, Path(weights))
            info["weights_sha256"] = sha256_of(weights)
        runner = TorchRunner(
            module, device, embedding_layer=embedding_layer, head_layer=head_layer, where=target
        )
    else:
        path = Path(target)
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found")
        info["file_sha256"] = sha256_of(path)
        if kind == "torchscript":
            import torch

            try:
                module = torch.jit.load(str(path), map_location="cpu")
            except Exception as exc:  # torch raises RuntimeError/ValueError for non-TorchScript
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise CheckpointError(f"{path}: not a TorchScript file ({first[:200]})") from None
            runner = TorchRunner(
                module, device, embedding_layer=embedding_layer, head_layer=head_layer, where=spec
            )
        else:
            runner = OnnxRunner(
                _onnx_session(path, device),
                embedding_layer=embedding_layer,
                head_layer=head_layer,
                where=spec,
            )
            _check_onnx_input(runner, preprocess, spec)
            # onnxruntime falls back to the CPU when no CUDA provider is installed: say which ran.
            info["device"] = runner.session.get_providers()[0]
    model = ExternalModel(runner, preprocess, spec=spec, info=info)
    dim, classes = model.check()
    model.info.update(embedding_dim=dim, num_params=model.num_params())
    return model


def _check_onnx_input(runner: OnnxRunner, pre: Preprocess, spec: str) -> None:
    """A graph with a fixed input shape names the mismatch before any image is read."""
    shape = runner.expected_shape()
    want = [None, pre.channels, *pre.size]
    if len(shape) != 4:
        raise CheckpointError(f"{spec}: the graph's input has shape {shape}, expected (B, C, H, W)")
    flags = ("--channels", "--input-size", "--input-size")
    for got, exp, flag in zip(shape[1:], want[1:], flags, strict=True):
        if isinstance(got, int) and got != exp:
            raise CheckpointError(
                f"{spec}: the graph expects input {shape}, got (B, {pre.channels}, "
                f"{pre.size[0]}, {pre.size[1]}); set {flag}"
            )
