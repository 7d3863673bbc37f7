"""scripts/_gpu_pack.py: the dataset travels to the GPU machine byte for byte."""

from __future__ import annotations

import _gpu_pack as gp
import numpy as np
import pytest


def _tree(root, n=40, seed=0):
    rng = np.random.default_rng(seed)
    files = {}
    for i in range(n):
        split = "train" if i % 4 else "val"
        rel = f"{split}/{['angry', 'happy', 'sad'][i % 3]}/img_{i}.jpg"
        blob = rng.integers(0, 256, size=int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(blob)
        files[rel] = blob
    (root / "test").mkdir()
    (root / "test" / "not_packed.jpg").write_bytes(b"x")
    return files


def test_pack_unpack_round_trip_is_byte_identical(tmp_path):
    files = _tree(tmp_path / "fer")
    parts = gp.pack_parts(tmp_path / "fer", ["train", "val"], tmp_path / "packed", parts=2)
    assert [p.name for p in parts] == ["fer_part1of2.npz", "fer_part2of2.npz"]
    metas = [gp.read_part_meta(p) for p in parts]
    assert sum(m["n_files"] for m in metas) == len(files) == metas[0]["n_files_total"]
    dest = tmp_path / "out"
    gp.unpack_part(parts[0], dest)
    assert not gp.parts_complete(dest)  # one part of two: a fresh machine would stop here
    gp.unpack_part(parts[1], dest)
    assert gp.parts_complete(dest)
    got = {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert got == files  # same paths, same bytes; test/ was not asked for


def test_unpack_refuses_a_corrupted_part(tmp_path):
    _tree(tmp_path / "fer", n=8)
    (part,) = gp.pack_parts(tmp_path / "fer", ["train", "val"], tmp_path / "packed", parts=1)
    with np.load(part) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["data"] = arrays["data"].copy()
    arrays["data"][0] ^= 0xFF
    np.savez_compressed(part, **arrays)
    with pytest.raises(SystemExit, match="checksum"):
        gp.unpack_part(part, tmp_path / "out")


def test_pack_refuses_parts_over_the_limit(tmp_path):
    _tree(tmp_path / "fer", n=8)
    with pytest.raises(SystemExit, match="more --parts"):
        gp.pack_parts(
            tmp_path / "fer", ["train", "val"], tmp_path / "packed", parts=1, max_bytes=100
        )


def test_cli_complete_exit_status(tmp_path, capsys):
    _tree(tmp_path / "fer", n=8)
    assert gp._main(["pack", "--root", str(tmp_path / "fer"), "--out", str(tmp_path / "p")]) == 0
    assert gp._main(["complete", "--dest", str(tmp_path / "d")]) == 1
    parts = sorted(str(p) for p in (tmp_path / "p").glob("*.npz"))
    assert gp._main(["unpack", *parts, "--dest", str(tmp_path / "d")]) == 0
    assert gp._main(["complete", "--dest", str(tmp_path / "d")]) == 0
    assert "complete" in capsys.readouterr().out
