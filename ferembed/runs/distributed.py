"""``ferembed embed --ray``: the batch embedding of a split on Ray workers, resumable.

The run is the one-process run: :func:`ferembed.runs.embed.embed_checkpoint` /
:func:`~ferembed.runs.embed.embed_model` open the split, map its labels, check the output and
write the run (atomically, with ``write_run``) exactly as without ``--ray``; only their batch
loop, :func:`~ferembed.runs.embed.embed_dataset`, is replaced by :class:`RayEmbedder` (through
:data:`ferembed._engines.EMBEDDER`). It reads the split through Ray Data as records
``{"row": i}`` (positions in the split, carried through and sorted on at the end), and maps
batches of them on an actor pool: each actor builds the model once from a :class:`ModelRecipe`
(on its GPU when the cluster has GPUs, one actor per GPU; else one per CPU worker), decodes its
rows with the split's own ``load_image`` and calls the model's one embedding interface,
:meth:`~ferembed.models.external.ExternalModel.embed`: same decoding, preprocessing and
thumbnails as one process.

Resumable: every batch that comes back is saved at once (atomically) into a hidden folder beside
the output, ``.NAME.ray-parts/``, under a fingerprint of the model files and the split's sample
ids. A rerun of the same command after an interruption embeds only the rows that no saved batch
holds; the folder is removed once the run is written. A different model or split discards it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferembed import _io
from ferembed._engines import EMBEDDER, using
from ferembed._ray import RaySession, worker_error
from ferembed.errors import ConfigError, FerembedError
from ferembed.runs.log import images_to_thumbs

#: The job's fingerprint inside the parts folder.
JOB_FILE = "job.json"


@dataclass(frozen=True)
class ModelRecipe:
    """How every worker builds the model (the driver's loaded model stays in the driver).

    Attributes:
        checkpoint: a ferembed checkpoint (stem, .safetensors or .json), or None.
        spec: a ``--model`` SPEC, or None.
        options: ``load_external_model`` options for ``spec`` (weights, layers, preprocess).
    """

    checkpoint: str | None = None
    spec: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str):
        """The model as :func:`~ferembed.runs.embed.embed_checkpoint` or
        :func:`~ferembed.runs.embed.embed_model` builds it, on ``device``."""
        from ferembed.models.external import ExternalModel, Preprocess, load_external_model

        if self.spec is not None:
            return load_external_model(self.spec, device=device, **self.options)
        from ferembed.models import load_checkpoint

        model, card = load_checkpoint(self.checkpoint)
        input_cfg = dict(card.get("input", {}))
        size = int(input_cfg.get("size", 48))
        pre = Preprocess(
            size=(size, size),
            channels=int(getattr(model, "in_chans", 1)),
            mean=(float(input_cfg.get("mean", 0.5)),),
            std=(float(input_cfg.get("std", 0.5)),),
        )
        return ExternalModel.from_module(model, pre, device=device)

    def files(self) -> list[Path]:
        """The files the model is read from (their digests are the job's fingerprint)."""
        if self.spec is None:
            from ferembed.models.checkpoint import checkpoint_paths

            return list(checkpoint_paths(self.checkpoint))
        from ferembed.runs.embed import _spec_path

        paths = [_spec_path(self.spec), self.options.get("weights")]
        return [Path(p) for p in paths if p is not None]


class _EmbedActor:
    """One Ray Data actor: builds the model once, then embeds batches of rows."""

    def __init__(self, recipe: ModelRecipe, dataset, device: str) -> None:
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        self.model = recipe.build(device)
        self.dataset = dataset

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["row"], dtype=np.int64)
        images = np.stack([self.dataset.load_image(int(i)) for i in rows])
        emb, logits = self.model.embed(images)
        out = {"row": rows, "embedding": emb, "thumb": images_to_thumbs(images)}
        if logits is not None:
            out["logits"] = logits
        return out


class RayEmbedder:
    """:func:`~ferembed.runs.embed.embed_dataset` on Ray workers (module docstring).

    Args:
        session: the Ray connection (started at the first batch, not before).
        recipe: how workers build the model.
        out: the run directory being made (its parts folder is beside it).
        device: the ``--device`` asked for: ``auto`` uses the cluster's GPUs when it has any,
            ``cuda`` requires them, ``cpu`` never uses them.
    """

    def __init__(
        self, session: RaySession, recipe: ModelRecipe, out: str | os.PathLike, device: str = "auto"
    ) -> None:
        self.session = session
        self.recipe = recipe
        self.out = Path(out)
        self.device = device
        self.rows_embedded = 0  # rows this call sent to the workers (0 when all were saved)

    @property
    def parts_dir(self) -> Path:
        return self.out.parent / f".{self.out.name}.ray-parts"

    def __call__(
        self,
        model,
        dataset,
        *,
        batch_size: int = 256,
        device: str = "cpu",
        progress: bool = True,
        desc: str = "embed",
        thumbs: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Same arguments and result as :func:`~ferembed.runs.embed.embed_dataset` (``model``
        and ``device`` are the driver's: the workers build their own from the recipe)."""
        from tqdm import tqdm

        n = len(dataset)
        parts = self._open_parts(dataset)
        done = np.zeros(n, dtype=bool)
        for part in parts:
            with np.load(part) as z:
                done[z["row"]] = True
        pending = np.flatnonzero(~done)
        if done.any():
            print(
                f"resuming: {int(done.sum())} of {n} faces already embedded in {self.parts_dir}",
                file=sys.stderr,
            )
        self.rows_embedded = int(pending.size)
        with tqdm(total=n, initial=int(done.sum()), desc=desc, unit="img", disable=not progress,
                  file=sys.stderr) as bar:  # fmt: skip
            if pending.size:
                for batch in self._stream(pending, dataset, batch_size):
                    self._save_part(batch)
                    bar.update(len(batch["row"]))
        return self._gather(n, thumbs)

    def _stream(self, rows: np.ndarray, dataset, batch_size: int) -> Iterator[dict]:
        ray = self.session.start()
        workers, device, gpus = actor_plan(
            self.session.cluster("GPU"), self.session.cluster("CPU"), self.device,
            self.session.workers,
        )  # fmt: skip
        items = ray.data.from_items(
            [{"row": int(i)} for i in rows],
            override_num_blocks=max(1, min(4 * workers, -(-rows.size // batch_size))),
        )
        mapped = items.map_batches(
            _EmbedActor,
            fn_constructor_kwargs={
                "recipe": self.recipe,
                "dataset": dataset,
                "device": device,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=gpus,
        )
        try:
            yield from mapped.iter_batches(batch_size=None, batch_format="numpy")
        except ray.exceptions.RayError as exc:
            # e.g. a model that rejects a face (one line), a node that cannot read the files
            raise worker_error(exc) from exc

    # ------------------------------------------------------------------ the parts folder
    def _fingerprint(self, dataset) -> dict[str, Any]:
        ids = "\n".join(str(s.sample_id) for s in dataset.samples)
        return _io.to_jsonable(
            {
                "model": {
                    "checkpoint": self.recipe.checkpoint,
                    "spec": self.recipe.spec,
                    "options": {k: repr(v) for k, v in sorted(self.recipe.options.items())},
                    "files": {str(p): _digest(p) for p in self.recipe.files()},
                },
                "n": len(dataset),
                "image_size": int(dataset.image_size),
                "sample_ids_sha256": hashlib.sha256(ids.encode()).hexdigest(),
            }
        )

    def _open_parts(self, dataset) -> list[Path]:
        """The saved parts of this very job (others' are discarded, with a note)."""
        job = self._fingerprint(dataset)
        folder = self.parts_dir
        job_file = folder / JOB_FILE
        if folder.is_dir():
            try:
                same = json.loads(job_file.read_text()) == job
            except (OSError, ValueError):
                same = False
            if same:
                return sorted(folder.glob("part-*.npz"))
            print(f"note: {folder} holds another model's or split's batches: starting over",
                  file=sys.stderr)  # fmt: skip
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _io.write_json(job_file, job)
        return []

    def _save_part(self, batch: dict[str, np.ndarray]) -> None:
        rows = batch["row"]
        path = self.parts_dir / f"part-{int(rows.min()):09d}-{rows.size:06d}.npz"
        with _io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **batch)

    def _gather(self, n: int, thumbs: bool):
        """Every saved row, in row order: (embeddings, logits or None, thumbnails or None)."""
        parts = []
        for path in sorted(self.parts_dir.glob("part-*.npz")):
            with np.load(path) as z:
                parts.append({k: z[k] for k in z.files})
        rows = np.concatenate([p["row"] for p in parts])
        order = np.argsort(rows, kind="stable")
        if not np.array_equal(rows[order], np.arange(n)):
            raise FerembedError(f"{self.parts_dir}: the saved batches do not cover rows 0..{n - 1}")

        def column(key: str) -> np.ndarray | None:
            if key not in parts[0]:
                return None
            return np.concatenate([p[key] for p in parts])[order]

        return column("embedding"), column("logits"), column("thumb") if thumbs else None

    def finish(self) -> None:
        """Remove the parts folder (the run is written)."""
        shutil.rmtree(self.parts_dir, ignore_errors=True)


def actor_plan(gpus: int, cpus: int, device: str, workers: int | None) -> tuple[int, str, int]:
    """``(actors, their torch device, GPUs per actor)`` for a cluster of ``gpus`` and ``cpus``.

    ``device`` is the ``--device`` asked for: ``auto`` (or ``cuda``) puts one actor on each GPU
    when the cluster has any, ``cpu`` one actor per CPU; ``workers`` (``--ray-workers``) caps
    the actors (never more than the GPUs, which each actor holds whole).

    Raises:
        ConfigError: ``cuda`` asked for on a cluster without a GPU.
    """
    if device.startswith("cuda") and gpus == 0:
        raise ConfigError(f"--device {device}: the Ray cluster has no GPU")
    if gpus > 0 and (device == "auto" or device.startswith("cuda")):
        return min(workers or gpus, gpus), "cuda", 1
    return workers or max(1, cpus), "cpu", 0


def _digest(path: Path) -> str | None:
    from ferembed.models.external import sha256_of

    return sha256_of(path) if path.is_file() else None


@contextlib.contextmanager
def ray_embedding(
    recipe: ModelRecipe,
    out: str | os.PathLike,
    *,
    address: str | None = None,
    workers: int | None = None,
    device: str = "auto",
) -> Iterator[RayEmbedder]:
    """Inside the block, ``embed_checkpoint`` / ``embed_model`` embed on Ray (a local Ray
    unless ``address``); the parts folder goes once the block ends without an error.

    Example::

        with ray_embedding(ModelRecipe(checkpoint="ckpt"), "runs/x"):
            embed_checkpoint("ckpt", dataset="fer2013", root=..., split="test", out="runs/x")
    """
    with RaySession(address, workers) as session:
        embedder = RayEmbedder(session, recipe, out, device)
        with using(EMBEDDER, embedder):
            yield embedder
        embedder.finish()
