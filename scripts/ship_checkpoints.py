"""Ship finished ``ferembed train`` folders as a checkpoint folder with model cards.

``ferembed zoo`` trains and ships in one command; this ships runs trained apart from it (the
longer budget of docs/results.md, trained in the background and resumed from their
``train_state.pt``)::

    python scripts/ship_checkpoints.py --out checkpoints/fer2013-long \\
        --dataset fer2013 --root ../shared/datasets/fer2013 \\
        softmax=/work/long_budget/softmax triplet=/work/long_budget/triplet ...

Each ``NAME=FOLDER`` copies ``FOLDER/best.{safetensors,json}``, ``FOLDER/config.json`` (its
``root`` set to ``--root``) and the pseudo-label record (when there is one) to ``OUT/NAME.*``, then
writes the card (:func:`ferembed.zoo.write_card`: the test split embedded and evaluated
afresh). The card's command is the one the checkpoint's sidecar recorded (``--command``
overrides it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ferembed import _io  # noqa: E402
from ferembed.errors import FerembedError  # noqa: E402


def _copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (a temporary sibling renamed into place)."""
    with _io.atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def ship_run(name: str, run: Path, out: Path, *, dataset: str, root: str | None, command: str):
    """Copy the run folder's best checkpoint into ``out`` as ``name`` and write its card."""
    from ferembed.models.checkpoint import checkpoint_paths
    from ferembed.zoo import write_card

    best = run / "best.json"
    if not best.exists():
        raise FerembedError(f"{name}={run}: no best.json (is the training finished?)")
    command = command or json.loads(best.read_text()).get("command", "")
    out.mkdir(parents=True, exist_ok=True)
    for src in checkpoint_paths(best):
        _copy(src, out / f"{name}{src.suffix}")
    config = json.loads((run / "config.json").read_text())
    if root:  # the same data, named as the card names it (the run may have used another path)
        config["root"] = root
    _io.write_json(out / f"{name}.config.json", config)
    if (run / "pseudo_labels.json").exists():
        _copy(run / "pseudo_labels.json", out / f"{name}.pseudo_labels.json")
    return write_card(
        name, out, dataset=dataset, root=root, work=REPO / ".cache" / "ship", command=command
    )


def main_ship(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="NAME=FOLDER")
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--root")
    p.add_argument("--command", default="", help="the training command for every card")
    args = p.parse_args(argv)
    try:
        for spec in args.runs:
            name, sep, folder = spec.partition("=")
            if not sep or not name or not folder:
                raise FerembedError(f"{spec!r}: expected NAME=FOLDER")
            row = ship_run(
                name,
                Path(folder),
                Path(args.out),
                dataset=args.dataset,
                root=args.root,
                command=args.command,
            )
            print(f"{name}: test accuracy {row['test_accuracy']:.4f}")
    except FerembedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main_ship())
