"""``embed_every``: the validation split's embeddings logged as a run series during training.

Every ``embed_every`` epochs (and after the last one) the embeddings and logits that validation
computed anyway are written with :func:`ferembed.runs.log.log_run` into ``OUT/series/``, one
complete run per epoch (``step-000003/`` for epoch 3), so the dashboard's Dynamics page can show
how the loss shapes the embedding space over training. No metric is computed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferembed.data._base import FERDataset

#: Where a training run's series goes, inside its output directory.
SERIES_DIR = "series"


class ValidationSeries:
    """Logs the validation embeddings of chosen epochs (built once per :func:`fit`).

    Args:
        out: the training output directory (the series goes to ``out/series``).
        every: log every this many epochs (>= 1); the final epoch is always logged.
        dataset: the validation split (its sample ids pair the steps' runs).
        class_names: the model's classes (the labels index into them).
        images: (N, S, S) uint8 validation faces, turned into thumbnails once.
        name: the series' display name.
    """

    def __init__(
        self,
        out: Path,
        *,
        every: int,
        dataset: FERDataset,
        class_names: list[str],
        images: np.ndarray,
        name: str,
    ) -> None:
        from ferembed.runs.log import images_to_thumbs

        self.path = Path(out) / SERIES_DIR
        self.every = int(every)
        self.class_names = list(class_names)
        self.sample_ids = [s.sample_id for s in dataset.samples]
        self.thumbs = images_to_thumbs(images)
        self.name = name

    def due(self, epoch: int, last_epoch: int) -> bool:
        """Whether 1-based ``epoch`` is logged."""
        return epoch % self.every == 0 or epoch == last_epoch

    def log(
        self, epoch: int, embeddings: np.ndarray, logits: np.ndarray, labels: np.ndarray, row: dict
    ) -> Path:
        """Write the run of ``epoch`` (replacing it when a resumed run logs it again)."""
        from ferembed.runs.log import log_run

        meta = {
            k: row[k] for k in ("epoch", "train_loss", "val_acc", "val_mean_class_acc") if k in row
        }
        return log_run(
            self.path,
            embeddings,
            labels,
            class_names=self.class_names,
            sample_ids=self.sample_ids,
            logits=logits,
            images=self.thumbs,
            step=epoch,
            name=self.name,
            meta=meta,
        )
