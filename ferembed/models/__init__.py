"""FER networks: a registry of architectures, the FERNet interface, checkpoints, a FLOP counter.

Build by name with :func:`create_model` (``list_models()`` gives the names); every model maps
normalised faces ``(B, 1, 48, 48)`` to ``(embedding (B, D), logits (B, C))`` through a dedicated
embedding path (``forward_features``) and a linear head (``forward_head``).
"""

from ferembed.models import affinity as _affinity  # noqa: F401  (registers affnet)
from ferembed.models import fusion as _fusion  # noqa: F401  (registers fusion)
from ferembed.models import resnet as _resnet  # noqa: F401  (registers resnet18)
from ferembed.models import vgg as _vgg  # noqa: F401  (registers vgg, vgg_small)
from ferembed.models._base import (
    INPUT_MEAN,
    INPUT_MODES,
    INPUT_SIZE,
    INPUT_STD,
    FERNet,
    ModelConfigError,
    normalize_images,
)
from ferembed.models._flops import count_flops
from ferembed.models._registry import create_model, is_model, list_models, register_model
from ferembed.models.checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    load_loss_state,
    load_sidecar,
    save_checkpoint,
)

__all__ = [
    "INPUT_MEAN",
    "INPUT_MODES",
    "INPUT_SIZE",
    "INPUT_STD",
    "FERNet",
    "ModelConfigError",
    "checkpoint_paths",
    "count_flops",
    "create_model",
    "is_model",
    "list_models",
    "load_checkpoint",
    "load_loss_state",
    "load_sidecar",
    "normalize_images",
    "register_model",
    "save_checkpoint",
]
