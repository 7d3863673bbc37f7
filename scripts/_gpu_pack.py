"""Pack a folder dataset's files into a few .npz parts for a machine that cannot read ../shared.

The lent GPU machine receives the repository plus at most 64 MiB per call, so FER2013's train and
val JPEGs travel as parts of < 28 MB each: one ``uint8`` array of the files' raw bytes
(concatenated, zlib-compressed by ``np.savez_compressed``), their offsets and their relative
paths. Nothing is decoded or re-encoded: :func:`unpack_part` writes back the same bytes, so the
pixels are identical, and checks every file against the SHA-256 recorded at packing time.

    python scripts/_gpu_pack.py pack --root ../shared/datasets/fer2013 --splits train val \
        --parts 2 --out .cache/gpu
    python scripts/_gpu_pack.py unpack .cache/gpu/fer_part1of2.npz --dest /tmp/fer

Each part names its index and the number of parts; ``unpack`` writes ``.part<i>of<n>.done`` in
the destination, and :func:`parts_complete` tells whether every part has been unpacked there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

FORMAT = "ferembed.gpu_pack/1"
#: Largest part written (bytes on disk); the transfer limit is 64 MiB per call with the repo.
MAX_PART_BYTES = 28_000_000


def list_pack_files(root: Path, splits: list[str]) -> list[str]:
    """Relative paths (posix) of every file under ``root/<split>``, sorted."""
    paths = []
    for split in splits:
        base = root / split
        if not base.is_dir():
            raise SystemExit(f"pack: {base} is not a folder")
        paths += [p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()]
    if not paths:
        raise SystemExit(f"pack: no files under {root} / {splits}")
    return sorted(paths)


def _chunks(sizes: list[int], parts: int) -> list[tuple[int, int]]:
    """Split ``len(sizes)`` items into ``parts`` contiguous ranges of about equal total size."""
    total = sum(sizes)
    bounds, acc, start = [], 0, 0
    for i, s in enumerate(sizes):
        acc += s
        if len(bounds) < parts - 1 and acc >= total * (len(bounds) + 1) / parts:
            bounds.append((start, i + 1))
            start = i + 1
    bounds.append((start, len(sizes)))
    return bounds


def pack_parts(
    root: Path, splits: list[str], out: Path, *, parts: int = 2, max_bytes: int = MAX_PART_BYTES
) -> list[Path]:
    """Write ``out/<name>_part<i>of<n>.npz``; returns their paths.

    Raises:
        SystemExit: a part would be ``max_bytes`` or larger (use more parts).
    """
    root = Path(root)
    paths = list_pack_files(root, splits)
    blobs = [(root / p).read_bytes() for p in paths]
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    ranges = _chunks([len(b) for b in blobs], parts)
    for i, (a, b) in enumerate(ranges, start=1):
        chunk = blobs[a:b]
        offsets = np.cumsum([0] + [len(x) for x in chunk]).astype(np.int64)
        meta = {
            "format": FORMAT,
            "pack_id": digest,
            "part": i,
            "parts": len(ranges),
            "n_files": b - a,
            "n_files_total": len(paths),
            "splits": list(splits),
            "sha256": [hashlib.sha256(x).hexdigest() for x in chunk],
        }
        dest = out / f"{root.name}_part{i}of{len(ranges)}.npz"
        np.savez_compressed(
            dest,
            data=np.frombuffer(b"".join(chunk), dtype=np.uint8),
            offsets=offsets,
            paths=np.array(paths[a:b]),
            meta=np.array(json.dumps(meta)),
        )
        size = dest.stat().st_size
        if size >= max_bytes:
            raise SystemExit(f"pack: {dest} is {size} bytes (>= {max_bytes}); use more --parts")
        written.append(dest)
    return written


def read_part_meta(part: Path) -> dict:
    with np.load(part, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def unpack_part(part: Path, dest: Path) -> dict:
    """Recreate the part's files under ``dest`` (same relative paths, same bytes).

    Returns:
        The part's metadata (without the checksums).

    Raises:
        SystemExit: not a pack part, or a file's bytes do not match its recorded SHA-256.
    """
    part, dest = Path(part), Path(dest)
    with np.load(part, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise SystemExit(f"unpack: {part} is not a ferembed gpu pack part")
        meta = json.loads(str(z["meta"]))
        data, offsets, paths = z["data"], z["offsets"], z["paths"]
    if meta.get("format") != FORMAT:
        raise SystemExit(f"unpack: {part} has format {meta.get('format')!r}, not {FORMAT}")
    raw = data.tobytes()
    for i, rel in enumerate(paths.tolist()):
        blob = raw[offsets[i] : offsets[i + 1]]
        if hashlib.sha256(blob).hexdigest() != meta["sha256"][i]:
            raise SystemExit(f"unpack: {rel} in {part} does not match its checksum")
        target = dest / rel
        if dest.resolve() not in target.resolve().parents:
            raise SystemExit(f"unpack: {rel} would be written outside {dest}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    meta.pop("sha256")
    marker = dest / f".part{meta['part']}of{meta['parts']}.done"
    marker.write_text(json.dumps(meta) + "\n")
    return meta


def parts_complete(dest: Path) -> bool:
    """Whether every part of the pack unpacked in ``dest`` is there (all ``.done`` markers)."""
    markers = list(Path(dest).glob(".part*of*.done"))
    if not markers:
        return False
    metas = [json.loads(m.read_text()) for m in markers]
    ids = {m["pack_id"] for m in metas}
    n = metas[0]["parts"]
    return len(ids) == 1 and {m["part"] for m in metas} == set(range(1, n + 1))


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack ROOT/<split> files into parts")
    p.add_argument("--root", required=True, help="dataset folder (holds the split folders)")
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="split folders")
    p.add_argument("--parts", type=int, default=2, help="number of parts (default 2)")
    p.add_argument("--out", required=True, help="folder for the parts (keep it out of git)")
    u = sub.add_parser("unpack", help="recreate the files of one or more parts")
    u.add_argument("parts", nargs="+", help="part files")
    u.add_argument("--dest", required=True, help="folder to recreate the layout in")
    c = sub.add_parser("complete", help="exit 0 when every part is unpacked in DEST")
    c.add_argument("--dest", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        if args.parts < 1:
            raise SystemExit("pack: --parts must be >= 1")
        for path in pack_parts(Path(args.root), args.splits, Path(args.out), parts=args.parts):
            meta = read_part_meta(path)
            print(f"{path}  {path.stat().st_size / 1e6:.2f} MB  {meta['n_files']} files")
        return 0
    if args.cmd == "unpack":
        for part in args.parts:
            meta = unpack_part(Path(part), Path(args.dest))
            print(
                f"{part}: {meta['n_files']} files -> {args.dest} (part {meta['part']}/"
                f"{meta['parts']})"
            )
        return 0
    ok = parts_complete(Path(args.dest))
    print("complete" if ok else "incomplete")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_main())
