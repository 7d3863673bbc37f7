"""``ferembed embed`` (a checkpoint or your own model over a dataset split) and ``ferembed
import`` (embeddings computed elsewhere): the two ways to make a run directory."""

from __future__ import annotations

from ferembed._cli._ray_args import add_ray_embed_options
from ferembed._cli.args import DATASET_CHOICES, DEVICE_HELP, DISTANCE_CHOICES, int_at_least
from ferembed._cli.args import command_line as _command_line
from ferembed._cli.args import kv_pairs as _kv
from ferembed.errors import FerembedError

#: Options of `embed --model` that a checkpoint (which carries its own) must not get.
_MODEL_FLAGS = ("weights", "embedding_layer", "head_layer", "input_size", "channels", "mean", "std",
                "classes")  # fmt: skip


def cmd_embed(args) -> int:
    from ferembed.runs.embed import embed_checkpoint, embed_model

    common = dict(
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        out=args.out,
        fold=args.fold,
        num_folds=args.num_folds,
        dataset_kwargs=_kv(args.dataset_arg, "--dataset-arg"),
        batch_size=args.batch_size,
        device=args.device,
        distance=args.distance,
        thumbs=not args.no_thumbs,
        name=args.name,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=_command_line(),
    )
    if args.checkpoint is not None:
        given = [f"--{k.replace('_', '-')}" for k in _MODEL_FLAGS if getattr(args, k) is not None]
        if given:
            raise FerembedError(f"{', '.join(given)}: only with --model (a checkpoint has its own)")
        path = embed_checkpoint(args.checkpoint, **common)
    else:
        from ferembed.models.external import Preprocess

        path = embed_model(
            args.model,
            weights=args.weights,
            embedding_layer=args.embedding_layer,
            head_layer=args.head_layer,
            preprocess=Preprocess.from_options(args.input_size, args.channels, args.mean, args.std),
            class_names=[c.strip() for c in args.classes.split(",")] if args.classes else None,
            **common,
        )
    from ferembed.runs import load_run

    run = load_run(path)
    print(f"wrote {path}: N={run.n} D={run.dim} classes={len(run.class_names)}")
    return 0


def cmd_import(args) -> int:
    from ferembed.runs.importer import import_embeddings

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    path = import_embeddings(
        args.embeddings,
        args.labels,
        args.out,
        class_names=classes,
        logits=args.logits,
        images=args.images,
        distance=args.distance,
        name=args.name,
        overwrite=args.overwrite,
        command=_command_line(),
    )
    print(f"wrote {path}")
    return 0


def _dataset_args(sp, split_default="test"):
    sp.add_argument(
        "--dataset",
        required=True,
        choices=DATASET_CHOICES,
        metavar="NAME",
        help="dataset layout: %(choices)s (see `ferembed datasets`)",
    )
    sp.add_argument("--root", help="dataset root (not needed for synthfer)")
    sp.add_argument(
        "--split",
        default=split_default,
        help="split to read, e.g. train, val, test, all (default %(default)s)",
    )
    sp.add_argument("--fold", type=int_at_least(0), help="fold index for k-fold datasets (CK+)")
    sp.add_argument(
        "--num-folds",
        type=int_at_least(2),
        default=10,
        help="number of folds of a k-fold dataset (default %(default)s)",
    )
    sp.add_argument(
        "--dataset-arg",
        action="append",
        metavar="KEY=VALUE",
        help="extra dataset option, e.g. classes=6",
    )


def add_embed_commands(add) -> None:
    """Register ``embed`` and ``import`` with ``add(name, fn, help, **texts)``."""
    sp = add(
        "embed",
        cmd_embed,
        "embed a dataset split with a checkpoint or your own model into a run directory",
        description=EMBED_DESCRIPTION,
        epilog=EMBED_EXAMPLES,
    )
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a ferembed checkpoint (.safetensors + sidecar)")
    src.add_argument(
        "--model",
        metavar="SPEC",
        help="your own model (docs/byom.md): python:PATH.py:FUNC or python:pkg.module:FUNC (a "
        "factory returning an nn.Module), torchscript:PATH, onnx:PATH. python: and torchscript: "
        "run the file's code: trusted files only",
    )
    sp.add_argument("--weights", help="python: state dict, .safetensors or plain-tensor .pt/.pth")
    sp.add_argument(
        "--embedding-layer", metavar="NAME", help="layer (or output) giving the embedding"
    )
    sp.add_argument("--head-layer", metavar="NAME", help="layer (or output) giving the logits")
    sp.add_argument("--input-size", metavar="H|HxW", help="model input size (default 48)")
    sp.add_argument("--channels", type=int, choices=[1, 3], help="input channels (default 1)")
    sp.add_argument("--mean", help="after pixels/255, one value or one per channel (default 0)")
    sp.add_argument("--std", help="after the mean, one value or one per channel (default 1)")
    sp.add_argument("--classes", help="comma-separated classes in the order of the logits")
    _dataset_args(sp)
    sp.add_argument("--out", required=True, help=_OUT_HELP)
    sp.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=256,
        help="images per forward pass (default %(default)s)",
    )
    sp.add_argument("--device", default="auto", help=DEVICE_HELP + " (default %(default)s)")
    _run_options(sp)
    sp.add_argument("--no-thumbs", action="store_true", help="do not store face thumbnails")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_embed_options(sp)

    sp = add(
        "import",
        cmd_import,
        "make a run from embeddings computed elsewhere",
        description=IMPORT_DESCRIPTION,
        epilog=IMPORT_EXAMPLES,
    )
    sp.add_argument("--embeddings", required=True, help="(N, D) float .npy, one row per sample")
    sp.add_argument("--labels", required=True, help="CSV with a label column (+ sample_id, ...)")
    sp.add_argument("--logits", help="optional (N, C) .npy")
    sp.add_argument("--classes", help="comma-separated class names for integer labels")
    sp.add_argument(
        "--images",
        metavar="ROOT",
        help="folder the CSV's path/image column is relative to (default: the CSV's folder); "
        "each row's face becomes a thumbnail",
    )
    sp.add_argument("--out", required=True, help=_OUT_HELP)
    _run_options(sp)


_OUT_HELP = (
    "run directory to write (must not exist; never an input, a folder holding one, or a place "
    "inside a run)"
)


def _run_options(sp) -> None:
    """The options every way of making a run shares."""
    sp.add_argument(
        "--distance",
        default="cosine",
        choices=DISTANCE_CHOICES,
        metavar="NAME",
        help="the run's default distance for metrics: %(choices)s (default %(default)s)",
    )
    sp.add_argument("--name", help="display name of the run (default: the directory name)")
    sp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run at --out (the old one is kept until the new is complete)",
    )


EMBED_DESCRIPTION = """\
Embed one split of a dataset into a run directory (docs/run_format.md): embeddings.npy,
samples.parquet, logits.npy and the linear head (when the model has one), 48x48 face
thumbnails, and run.json recording the model, the preprocessing and this command.

The model is either a ferembed checkpoint (--checkpoint; it carries its own input size and
classes) or your own (--model SPEC, docs/byom.md). python: and torchscript: specs execute the
file's code: use trusted files only. onnx: models and .safetensors weights run no code of yours.
The run is written to a temporary folder and renamed into place when complete."""
EMBED_EXAMPLES = """\
examples:
  ferembed embed --checkpoint checkpoints/synthfer/center.safetensors --dataset synthfer \\
      --split test --out runs/synthfer-center
  ferembed embed --model python:mynet.py:build --weights mynet.safetensors --input-size 112 \\
      --channels 3 --mean 0.5 --std 0.5 --embedding-layer neck --head-layer fc \\
      --dataset imagefolder --root data/faces --split test --out runs/mynet"""
IMPORT_DESCRIPTION = """\
Make a run from embeddings computed elsewhere: an (N, D) .npy and a CSV with one row per
embedding (a label column; optional sample_id, subject, split, path/image columns; any other
column is kept as sample metadata the dashboard can colour by). With a path or image column the
faces become the run's thumbnails (resolved against --images, default the CSV's folder)."""
IMPORT_EXAMPLES = """\
examples:
  ferembed import --embeddings emb.npy --labels labels.csv --out runs/mine
  ferembed import --embeddings emb.npy --labels labels.csv --images data/faces --out runs/mine"""
