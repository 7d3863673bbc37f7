"""Turn a model plus a dataset split into an embedding run.

One embedding loop (:func:`embed_dataset`) serves both sources of models: ferembed checkpoints
(:func:`embed_checkpoint`) and a user's own model given as a SPEC (:func:`embed_model`, see
:mod:`ferembed.models.external`). Both read the dataset with the same loaders, map its labels onto
the model's classes, batch, show progress and write the run atomically.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferembed._engines import EMBEDDER
from ferembed.data import create_dataset, map_labels
from ferembed.data.subset import SubsetDataset
from ferembed.errors import DataError
from ferembed.runs._outputs import check_output
from ferembed.runs.format import make_samples, write_run
from ferembed.runs.log import images_to_thumbs


def embed_dataset(
    model,
    dataset,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "embed",
    thumbs: bool = True,
):
    """Run ``model`` over ``dataset``: the one embedding loop of ferembed (``embed``, the
    trainer's validation and the pseudo-label loop's clustering all use it).

    Args:
        model: an :class:`~ferembed.models.external.ExternalModel`, or a ferembed FERNet (wrapped
            with its normalisation, on ``device``).
        dataset: anything with ``len`` and ``load_image(i) -> (S, S) uint8``.

        thumbs: also make the (N, 48, 48) thumbnails (None when False).

    Returns:
        (embeddings (N, D) float32, logits (N, C) float32 or None, thumbnails (N, 48, 48) uint8).
    """
    from tqdm import tqdm

    from ferembed.models.external import ExternalModel, Preprocess

    if not isinstance(model, ExternalModel):
        from ferembed.models import INPUT_MEAN, INPUT_STD

        pre = Preprocess(
            size=(dataset.load_image(0).shape[0],) * 2,
            channels=int(getattr(model, "in_chans", 1)),
            mean=(INPUT_MEAN,),
            std=(INPUT_STD,),
        )
        model = ExternalModel.from_module(model, pre, device=device)
    n = len(dataset)
    embs, logits, faces = [], [], []
    with tqdm(total=n, desc=desc, unit="img", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, n, batch_size):
            imgs = np.stack(
                [dataset.load_image(i) for i in range(start, min(n, start + batch_size))]
            )
            e, lg = model.embed(imgs)
            embs.append(e)
            if lg is not None:
                logits.append(lg)
            if thumbs:
                faces.append(images_to_thumbs(imgs))
            bar.update(len(imgs))
    return (
        np.concatenate(embs),
        np.concatenate(logits) if logits else None,
        np.concatenate(faces) if thumbs else None,
    )


def _open_split(dataset, root, split, fold, num_folds, dataset_kwargs, image_size):
    kwargs = dict(dataset_kwargs or {})
    if "image_size" in kwargs:
        raise DataError(
            "--dataset-arg image_size: the model sets the image size (its checkpoint, or "
            "--input-size for --model)"
        )
    if fold is not None:  # k-fold datasets only; fixed-split loaders reject fold options
        kwargs.update(fold=fold, num_folds=num_folds)
    return create_dataset(dataset, root, split, image_size=image_size, **kwargs)


def _write_split_run(
    model,
    ds,
    class_names: list[str],
    *,
    model_info: dict[str, Any],
    dataset: str,
    root,
    split: str,
    fold: int | None,
    num_folds: int,
    dataset_kwargs: dict[str, Any] | None,
    out: Path,
    batch_size: int,
    device: str,
    distance: str,
    thumbs: bool,
    name: str | None,
    overwrite: bool,
    progress: bool,
    command: str,
    who: str,
) -> Path:
    """Map the labels of ``ds`` onto ``class_names``, embed it and write the run (both paths)."""
    labels, keep = map_labels(ds.labels, ds.class_names, class_names)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise DataError(f"{dataset}/{split}: no sample has a class the {who} knows ({class_names})")
    if idx.size < len(ds):
        dropped = sorted({ds.class_names[ds.samples[i].label] for i in np.flatnonzero(~keep)})
        print(
            f"note: leaving out {len(ds) - idx.size} samples of classes {dropped} "
            f"that the {who} does not have",
            file=sys.stderr,
        )
    emb, logits, imgs = (EMBEDDER.get() or embed_dataset)(  # --ray: ferembed._ray
        model,
        SubsetDataset(ds, idx),
        batch_size=batch_size,
        device=device,
        progress=progress,
        desc=f"embed {dataset}/{split}",
    )
    if logits is not None and logits.shape[1] != len(class_names):
        raise DataError(
            f"the head gives {logits.shape[1]} logits but there are {len(class_names)} classes "
            f"{class_names} (pass --classes in the head's order)"
        )
    w, b = model.head_params()
    if w is not None and w.shape != (len(class_names), emb.shape[1]):
        w = b = None  # a linear layer that does not map this embedding to these classes
    samples = make_samples(
        labels[idx],
        class_names,
        sample_ids=[ds.samples[i].sample_id for i in idx],
        paths=[ds.samples[i].path for i in idx],
        subjects=[ds.samples[i].subject for i in idx],
        splits=[ds.samples[i].split or split for i in idx],
        preds=logits.argmax(1) if logits is not None else None,
    )
    return write_run(
        out,
        embeddings=emb,
        samples=samples,
        class_names=class_names,
        logits=logits,
        head_weight=w,
        head_bias=b,
        thumbs=imgs if thumbs else None,
        folds=getattr(ds, "folds", None),
        model={
            **model_info,
            "embedding_dim": int(emb.shape[1]),
            "device": model_info.get("device", device),
        },
        dataset={
            "name": dataset,
            "root": str(root) if root is not None else None,
            "split": split,
            "fold": fold,
            "num_folds": num_folds if fold is not None else None,
            "image_size": int(ds.image_size),
            "kwargs": dataset_kwargs or {},
            "left_out": int(len(ds) - idx.size),
        },
        distance=distance,
        command=command,
        name=name,
        overwrite=overwrite,
    )


def embed_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    dataset: str,
    root: str | os.PathLike | None,
    split: str,
    out: str | os.PathLike,
    fold: int | None = None,
    num_folds: int = 10,
    dataset_kwargs: dict[str, Any] | None = None,
    batch_size: int = 256,
    device: str = "auto",
    distance: str = "cosine",
    thumbs: bool = True,
    name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> Path:
    """Embed ``dataset``/``split`` with ``checkpoint`` and write a run directory at ``out``.

    The run's classes are the checkpoint's. Dataset labels are mapped onto them by canonical name
    (e.g. CK+ ``anger`` -> ``angry``); samples whose class the checkpoint does not know (e.g. CK+
    contempt for a FER2013 model) are left out, with a note.
    """
    from ferembed._device import resolve_device
    from ferembed.models import load_checkpoint
    from ferembed.models.checkpoint import checkpoint_paths
    from ferembed.models.external import ExternalModel, Preprocess

    out = check_output(
        out,
        inputs=[("--checkpoint", c) for c in checkpoint_paths(checkpoint)] + [("--root", root)],
        overwrite=overwrite,
        kind="run",
    )
    model, card = load_checkpoint(checkpoint)
    input_cfg = dict(card.get("input", {}))
    size = int(input_cfg.get("size", 48))
    ds = _open_split(dataset, root, split, fold, num_folds, dataset_kwargs, size)
    dev = str(resolve_device(device))
    pre = Preprocess(
        size=(size, size),
        channels=int(getattr(model, "in_chans", 1)),
        mean=(float(input_cfg.get("mean", 0.5)),),
        std=(float(input_cfg.get("std", 0.5)),),
    )
    return _write_split_run(
        ExternalModel.from_module(model, pre, device=dev),
        ds,
        list(card["class_names"]),
        model_info={
            "arch": card.get("arch"),
            "loss": (card.get("loss") or {}).get("name"),
            "checkpoint": str(checkpoint),
            # load_checkpoint verified the weights against this digest
            "checkpoint_sha256": card["sha256"],
            "num_params": card.get("num_params"),
        },
        dataset=dataset,
        root=root,
        split=split,
        fold=fold,
        num_folds=num_folds,
        dataset_kwargs=dataset_kwargs,
        out=out,
        batch_size=batch_size,
        device=dev,
        distance=distance,
        thumbs=thumbs,
        name=name,
        overwrite=overwrite,
        progress=progress,
        command=command,
        who="checkpoint",
    )


def embed_model(
    spec: str,
    *,
    dataset: str,
    root: str | os.PathLike | None,
    split: str,
    out: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    embedding_layer: str | None = None,
    head_layer: str | None = None,
    preprocess=None,
    class_names: list[str] | None = None,
    fold: int | None = None,
    num_folds: int = 10,
    dataset_kwargs: dict[str, Any] | None = None,
    batch_size: int = 256,
    device: str = "auto",
    distance: str = "cosine",
    thumbs: bool = True,
    name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> Path:
    """Embed ``dataset``/``split`` with a user's model (``--model SPEC``) into a run at ``out``.

    Args:
        spec: see :func:`ferembed.models.external.load_external_model`.
        preprocess: a :class:`~ferembed.models.external.Preprocess` (default 48x48 gray, [0, 1]).
        class_names: the classes in the order of the model's logits (default: the dataset's).
            Dataset labels are mapped onto them by canonical name, as for checkpoints.

    Raises:
        FerembedError: one line naming the SPEC, file, function, layer or shape at fault; no run
            directory is left behind.
    """
    from ferembed._device import resolve_device
    from ferembed.models.external import Preprocess, load_external_model

    out = check_output(
        out,
        inputs=[("--model", _spec_path(spec)), ("--weights", weights), ("--root", root)],
        overwrite=overwrite,
        kind="run",
    )
    preprocess = preprocess or Preprocess()
    dev = str(resolve_device(device))
    model = load_external_model(
        spec,
        weights=weights,
        embedding_layer=embedding_layer,
        head_layer=head_layer,
        preprocess=preprocess,
        device=dev,
    )
    ds = _open_split(dataset, root, split, fold, num_folds, dataset_kwargs, preprocess.load_size)
    return _write_split_run(
        model,
        ds,
        list(class_names) if class_names else list(ds.class_names),
        model_info={
            "arch": None,
            "loss": None,
            "checkpoint": None,
            "checkpoint_sha256": None,
            **model.info,
        },
        dataset=dataset,
        root=root,
        split=split,
        fold=fold,
        num_folds=num_folds,
        dataset_kwargs=dataset_kwargs,
        out=out,
        batch_size=batch_size,
        device=dev,
        distance=distance,
        thumbs=thumbs,
        name=name,
        overwrite=overwrite,
        progress=progress,
        command=command,
        who="model",
    )


def _spec_path(spec: str) -> str | None:
    """The file a ``--model`` SPEC reads (``python:PATH.py:FUNC``, ``torchscript:PATH``,
    ``onnx:PATH``), or None for an importable module (``python:pkg.module:FUNC``)."""
    kind, _, target = str(spec).partition(":")
    if kind == "python":
        target = target.rpartition(":")[0]
        return target if target.endswith(".py") else None
    return target or None
