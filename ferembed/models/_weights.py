"""Weights are checked before they are loaded: dtype and finiteness, each tensor by name.

``load_state_dict`` casts silently (int64 or bool weights into float parameters lose the model:
89% -> 14% accuracy) and copies NaN/Inf as they are (a run of NaN rows). Both loaders of weights,
ferembed checkpoints and a user's ``--weights``, call :func:`check_weight_values` first.
"""

from __future__ import annotations

from pathlib import Path

from ferembed.errors import CheckpointError

_LISTED = 3  # tensor names listed in a message


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - _LISTED} more)" if len(keys) > _LISTED else ""
    return f"{keys[:_LISTED]}{more}"


def check_weight_values(own: dict, state: dict, path: Path | str, what: str = "model") -> None:
    """Refuse tensors that ``load_state_dict`` would cast or copy into a broken model.

    Args:
        own: the module's ``state_dict()`` (names -> tensors of the expected dtypes).
        state: the loaded names -> tensors; keys missing from ``own`` are not looked at here.
        path: the weights file (named in the message).
        what: ``"model"`` or ``"loss"``.

    Raises:
        CheckpointError: a value that is not a tensor, a non-float tensor (integer, bool,
            complex) where the module has a float one, or a float tensor with NaN/Inf.
    """
    import torch

    common = [k for k in state if k in own]
    not_tensor = [k for k in common if not isinstance(state[k], torch.Tensor)]
    if not_tensor:
        raise CheckpointError(f"{path}: {what} weights {_names(not_tensor)} are not tensors")
    wrong = [
        k
        for k in common
        if own[k].is_floating_point() and not state[k].is_floating_point()  # int, bool, complex
    ]
    if wrong:
        dtypes = sorted({str(state[k].dtype).removeprefix("torch.") for k in wrong})
        raise CheckpointError(
            f"{path}: {what} weights {_names(wrong)} are {'/'.join(dtypes)} where the model has "
            "float parameters (casting would change them); save them as floats"
        )
    bad = [
        k
        for k in common
        if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())
    ]
    if bad:
        raise CheckpointError(f"{path}: {what} weights {_names(bad)} hold NaN/Inf values")
