"""How an :class:`~ferembed.models.external.ExternalModel` calls each kind of model.

A runner maps a float32 ``(B, C, H, W)`` input batch to ``(embedding, logits or None)`` (tensors
or arrays, not yet checked): a torch module (hooks on named layers, or a TorchScript module's
outputs), a ferembed FERNet (its ``forward_features``/``forward_head``), or an ONNX session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ferembed.errors import CheckpointError

_MAX_LISTED = 60  # layer names listed in an error message


def _first(out: Any) -> Any:
    """The embedding part of a module output: the tensor, a tuple's first, a dict's "embedding"."""
    if isinstance(out, (tuple, list)):
        return out[0] if out else None
    if isinstance(out, dict):
        return out.get("embedding")
    return out


def _select(out: Any, name: str, where: str) -> Any:
    """The output ``name`` of a multi-output model: a position of a tuple or a key of a dict."""
    if isinstance(out, dict):
        valid = [str(k) for k in out]
        if name in out:
            return out[name]
    elif isinstance(out, (tuple, list)):
        valid = [str(i) for i in range(len(out))]
        if name in valid:
            return out[int(name)]
    else:
        valid = ["0"]
        if name == "0":
            return out
    raise CheckpointError(
        f"{where}: no output {name!r} (outputs: {', '.join(valid)}; a TorchScript module takes "
        "no hooks, so a layer name selects one of its outputs)"
    )


def _listing(names) -> str:
    names = list(names)
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return (", ".join(names[:_MAX_LISTED]) or "none") + more


class TorchRunner:
    """Calls a torch module; the embedding/logits come from its output or from hooked layers."""

    def __init__(self, module, device: str, *, embedding_layer=None, head_layer=None, where=""):
        import torch

        self.torch = torch
        self.module = module.to(device).eval()
        self.device = device
        self.where = where
        self.scripted = isinstance(module, torch.jit.ScriptModule)
        self.embedding_layer, self.head_layer = embedding_layer, head_layer
        self.captured: dict[str, Any] = {}
        # Named submodules (not the model itself); a ScriptModule takes no hooks, so none.
        self.layers = {} if self.scripted else dict(module.named_modules())
        self.layers.pop("", None)
        for role, name in (("embedding", embedding_layer), ("logits", head_layer)):
            if name is None or self.scripted:
                continue
            if name not in self.layers:
                raise CheckpointError(
                    f"{where}: no layer {name!r} (layers: {_listing(self.layers)})"
                )
            self.layers[name].register_forward_hook(self._hook(role))

    def _hook(self, role: str) -> Callable:
        def hook(_module, _inputs, output):
            self.captured[role] = _first(output)

        return hook

    def head_params(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Weight (C, D) and bias (C,) of the head layer when it is an ``nn.Linear``."""
        layer = self.layers.get(self.head_layer) if self.head_layer else None
        if not isinstance(layer, self.torch.nn.Linear):
            return None, None
        w = layer.weight.detach().float().cpu().numpy()
        b = layer.bias.detach().float().cpu().numpy() if layer.bias is not None else None
        return w, b

    def num_params(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def __call__(self, x: np.ndarray) -> tuple[Any, Any]:
        torch = self.torch
        self.captured.clear()
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x).to(self.device))
        if self.scripted:
            emb = (
                _select(out, self.embedding_layer, self.where)
                if self.embedding_layer
                else _first(out)
            )
            logits = _select(out, self.head_layer, self.where) if self.head_layer else None
        else:
            emb = self.captured.get("embedding") if self.embedding_layer else _first(out)
            logits = self.captured.get("logits") if self.head_layer else None
        if logits is None and isinstance(out, dict):
            logits = out.get("logits")
        return emb, logits


class FERNetRunner(TorchRunner):
    """A ferembed FERNet: ``forward`` returns ``(embedding, logits)`` and the head is ``head``."""

    def __init__(self, module, device: str):
        super().__init__(module, device, where=getattr(module, "arch", "model"))
        self.head_layer = "head"

    def __call__(self, x: np.ndarray) -> tuple[Any, Any]:
        torch = self.torch
        with torch.inference_mode():
            emb = self.module.forward_features(torch.from_numpy(x).to(self.device))
            return emb, self.module.forward_head(emb)


class OnnxRunner:
    """An onnxruntime session; layer names select graph outputs by name."""

    def __init__(self, session, *, embedding_layer=None, head_layer=None, where=""):
        self.session = session
        self.where = where
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise CheckpointError(f"{where}: the graph takes {len(inputs)} inputs {names}, not 1")
        self.input = inputs[0]
        outputs = [o.name for o in session.get_outputs()]
        for name in (embedding_layer, head_layer):
            if name is not None and name not in outputs:
                raise CheckpointError(
                    f"{where}: no output {name!r} (outputs: {', '.join(outputs)}; an ONNX graph "
                    "has no submodules, so a layer name selects one of its outputs)"
                )
        self.emb_name = embedding_layer or outputs[0]
        self.head_name = head_layer
        # A graph exported with a fixed batch size is fed in chunks of that size.
        b = self.input.shape[0] if self.input.shape else None
        self.fixed_batch = b if isinstance(b, int) and b > 0 else None

    def expected_shape(self) -> list:
        return list(self.input.shape)

    def head_params(self) -> tuple[None, None]:
        return None, None

    def num_params(self) -> int | None:
        return None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        names = [self.emb_name] + ([self.head_name] if self.head_name else [])
        if self.fixed_batch is None:
            outs = self.session.run(names, {self.input.name: x})
        else:
            n, b = len(x), self.fixed_batch
            pad = np.concatenate([x, np.repeat(x[-1:], (-n) % b, axis=0)])
            feed = [{self.input.name: pad[i : i + b]} for i in range(0, len(pad), b)]
            parts = [self.session.run(names, f) for f in feed]
            outs = [np.concatenate([p[j] for p in parts])[:n] for j in range(len(names))]
        return outs[0], (outs[1] if self.head_name else None)
