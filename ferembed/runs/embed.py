"""Turn a checkpoint plus a dataset split into an embedding run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferembed.data import create_dataset, map_labels
from ferembed.errors import DataError
from ferembed.runs.format import make_samples, write_run


def embed_dataset(
    model,
    dataset,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "embed",
):
    """Run ``model`` over ``dataset``.

    Returns:
        (embeddings (N, D) float32, logits (N, C) float32, images (N, S, S) uint8).
    """
    import torch
    from tqdm import tqdm

    from ferembed.models import normalize_images

    model = model.to(device).eval()
    n = len(dataset)
    embs, logits, thumbs = [], [], []
    with (
        torch.inference_mode(),
        tqdm(total=n, desc=desc, unit="img", disable=not progress, file=sys.stderr) as bar,
    ):
        for start in range(0, n, batch_size):
            imgs = np.stack(
                [dataset.load_image(i) for i in range(start, min(n, start + batch_size))]
            )
            x = normalize_images(torch.from_numpy(imgs)).to(device)
            e = model.forward_features(x)
            embs.append(e.float().cpu().numpy())
            logits.append(model.forward_head(e).float().cpu().numpy())
            thumbs.append(imgs)
            bar.update(len(imgs))
    return np.concatenate(embs), np.concatenate(logits), np.concatenate(thumbs)


def _head_params(model):
    import torch

    head = getattr(model, "head", None)
    if isinstance(head, torch.nn.Linear):
        w = head.weight.detach().float().cpu().numpy()
        b = head.bias.detach().float().cpu().numpy() if head.bias is not None else None
        return w, b
    return None, None


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
    from ferembed.models import load_checkpoint
    from ferembed.training import resolve_device

    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists (use --overwrite to replace it)")
    model, card = load_checkpoint(checkpoint)
    input_cfg = dict(card.get("input", {}))
    kwargs = dict(dataset_kwargs or {})
    if fold is not None:  # k-fold datasets only; fixed-split loaders reject fold options
        kwargs.update(fold=fold, num_folds=num_folds)
    ds = create_dataset(dataset, root, split, image_size=int(input_cfg.get("size", 48)), **kwargs)
    ckpt_classes = list(card["class_names"])
    labels, keep = map_labels(ds.labels, ds.class_names, ckpt_classes)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise DataError(
            f"{dataset}/{split}: no sample has a class the checkpoint knows ({ckpt_classes})"
        )
    if idx.size < len(ds):
        dropped = sorted({ds.class_names[ds.samples[i].label] for i in np.flatnonzero(~keep)})
        print(
            f"note: leaving out {len(ds) - idx.size} samples of classes {dropped} "
            "that the checkpoint does not have",
            file=sys.stderr,
        )
    sub = _Subset(ds, idx)
    dev = str(resolve_device(device))
    emb, logits, imgs = embed_dataset(
        model,
        sub,
        batch_size=batch_size,
        device=dev,
        progress=progress,
        desc=f"embed {dataset}/{split}",
    )
    w, b = _head_params(model)
    samples = make_samples(
        labels[idx],
        ckpt_classes,
        sample_ids=[ds.samples[i].sample_id for i in idx],
        paths=[ds.samples[i].path for i in idx],
        subjects=[ds.samples[i].subject for i in idx],
        splits=[ds.samples[i].split or split for i in idx],
        preds=logits.argmax(1),
    )
    return write_run(
        out,
        embeddings=emb,
        samples=samples,
        class_names=ckpt_classes,
        logits=logits,
        head_weight=w,
        head_bias=b,
        thumbs=imgs if thumbs else None,
        folds=getattr(ds, "folds", None),
        model={
            "arch": card.get("arch"),
            "loss": (card.get("loss") or {}).get("name"),
            "checkpoint": str(checkpoint),
            # load_checkpoint verified the weights against this digest
            "checkpoint_sha256": card["sha256"],
            "embedding_dim": int(emb.shape[1]),
            "num_params": card.get("num_params"),
            "device": dev,
        },
        dataset={
            "name": dataset,
            "root": str(root) if root is not None else None,
            "split": split,
            "fold": fold,
            "num_folds": num_folds if fold is not None else None,
            "image_size": int(input_cfg.get("size", 48)),
            "kwargs": dataset_kwargs or {},
            "left_out": int(len(ds) - idx.size),
        },
        distance=distance,
        command=command,
        name=name,
        overwrite=overwrite,
    )


class _Subset:
    """The samples ``idx`` of a dataset (keeps ``load_image``)."""

    def __init__(self, ds, idx):
        self.ds, self.idx = ds, idx

    def __len__(self):
        return len(self.idx)

    def load_image(self, i):
        return self.ds.load_image(int(self.idx[i]))
