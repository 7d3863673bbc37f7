"""``ferembed datasets``: the supported dataset layouts, or the class counts of a dataset root."""

from __future__ import annotations

import json

from ferembed._cli.args import DATASET_CHOICES, kv_pairs
from ferembed.errors import FerembedError


def cmd_datasets(args) -> int:
    from ferembed.data import detect_layout, list_datasets, summarize

    if args.root is None:
        for info in list_datasets():
            splits = ", ".join(info.splits)
            print(f"{info.name:12s} splits: {splits}\n{'':12s} layout: {info.layout}\n")
        return 0
    name = args.dataset or detect_layout(args.root)
    if name is None:
        raise FerembedError(
            f"--root {args.root}: cannot tell which dataset layout this is; pass --dataset "
            "(`ferembed datasets` lists the layouts)"
        )
    summary = summarize(name, args.root, **kv_pairs(args.dataset_arg, "--dataset-arg"))
    print(json.dumps(summary, indent=2) if args.json else _format_summary(summary))
    return 0


def _format_summary(summary: dict) -> str:
    """One row per split: the count of each class, the total and the number of subjects."""
    classes = summary["class_names"]
    lines = [f"{summary['dataset']} at {summary['root']}"]
    lines.append(
        "split".ljust(8)
        + "".join(c[:8].rjust(9) for c in classes)
        + "total".rjust(9)
        + "subjects".rjust(10)
    )
    for split, info in summary["splits"].items():
        counts = [info["counts"].get(c, 0) for c in classes]
        lines.append(
            split.ljust(8)
            + "".join(str(v).rjust(9) for v in counts)
            + str(info["n"]).rjust(9)
            + str(info.get("subjects") or "").rjust(10)
        )
    for split, reason in (summary.get("skipped") or {}).items():
        lines.append(f"{split}: skipped ({reason})")
    return "\n".join(lines)


_DESCRIPTION = """\
Without --root: list every dataset layout ferembed reads (its name, splits and folder layout).
With --root: read that dataset folder (the layout is guessed, or given by --dataset) and print,
per split, the number of images of each class, the total and the number of subjects.
Reads only the images' paths and labels; writes nothing."""

_EPILOG = """\
examples:
  ferembed datasets
  ferembed datasets --root /data/CK+ --json"""


def add_datasets_command(add) -> None:
    """Add the ``datasets`` subparser through ``add(name, fn, help, description=, epilog=)``."""
    sp = add(
        "datasets",
        cmd_datasets,
        "list supported datasets, or count a root's splits",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    sp.add_argument(
        "--root", metavar="DIR", help="count the classes per split of this dataset root"
    )
    sp.add_argument(
        "--dataset",
        choices=DATASET_CHOICES,
        metavar="NAME",
        help="the root's layout (guessed when omitted): %(choices)s",
    )
    sp.add_argument(
        "--dataset-arg",
        action="append",
        metavar="KEY=VALUE",
        help="extra option of the dataset loader, repeatable (e.g. classes=6)",
    )
    sp.add_argument("--json", action="store_true", help="print the counts as JSON")
