"""`ferembed project`: the projection of every point of a run, computed once and cached in it."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed import projection as P
from ferembed.cli import build_parser, main
from ferembed.runs import load_run, make_samples, write_run
from ferembed.runs import projection as RP

CLASSES = ["a", "b", "c", "d"]


def _run(path, n=400, dim=8):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8])
    x = (rng.normal(size=(4, dim))[labels] * 3 + rng.normal(size=(n, dim))).astype(np.float32)
    samples = make_samples(labels, CLASSES, sample_ids=[f"s{i:05d}" for i in range(n)])
    return load_run(write_run(path, embeddings=x, samples=samples, class_names=CLASSES))


def test_project_writes_the_cache_once(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path / "r")
    assert main(["project", str(run.path), "--method", "pca", "--quiet"]) == 0
    out = capsys.readouterr().out
    path = RP.projection_cache_path(run, method="pca", max_points=P.FULL_MAX_POINTS)
    assert path.is_file() and path.parent == run.cache_dir
    assert "all 400 points, computed in" in out and str(path) in out
    assert not [p for p in run.cache_dir.iterdir() if p != path]  # no temporary leftovers
    p = RP.project_run(run, method="pca", max_points=P.FULL_MAX_POINTS)
    assert p.from_cache and p.n_shown == 400 and not p.sampled
    stamp = path.stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(P, "reduce_embeddings", boom)
    assert main(["project", str(tmp_path), "--method", "pca", "--quiet"]) == 0  # a folder of runs
    assert "all 400 points, cached already" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == stamp
    # Any max_points >= N is the same projection: the dashboard's default reads this entry.
    assert RP.project_run(run, method="pca", max_points=100_000).from_cache


def test_a_run_above_max_points_is_sampled_and_the_sample_recorded(tmp_path, capsys):
    run = _run(tmp_path / "r")
    assert main(["project", str(run.path), "--method", "pca", "--max-points", "100"]) == 0
    out = capsys.readouterr().out
    p = RP.project_run(run, method="pca", max_points=100)
    assert p.from_cache and p.sampled
    assert f"a stratified sample of {p.n_shown:,} of 400 points (seed 0" in out
    record = RP.load_projection_sampling(run, method="pca", max_points=100)
    assert record == {
        "n_total": 400,
        "n_shown": p.n_shown,
        "sampled": True,
        "strategy": "stratified by label, seeded hash of sample_id",
        "max_points": 100,
        "seed": 0,
    }
    # Classes keep their proportions (200, 100, 50, 50 of 400 -> about 50, 25, 12.5, 12.5).
    counts = np.bincount(run.labels[p.indices], minlength=4)
    assert counts.tolist()[:2] == [50, 25] and counts.sum() == p.n_shown
    assert RP.load_projection_sampling(run, method="pca", max_points=99) is None


def test_project_defaults_to_every_point_up_to_200k():
    args = build_parser().parse_args(["project", "some/run"])
    assert args.max_points == 200_000 == P.FULL_MAX_POINTS
    assert (args.method, args.dim, args.seed, args.quiet) == ("umap", 2, 0, False)


@pytest.mark.parametrize(
    "argv",
    [
        ["project", "{missing}"],
        ["project", "{run}", "--max-points", "0"],
        ["project", "{run}", "--method", "tsne"],
        ["project", "{run}", "--dim", "4"],
    ],
)
def test_project_bad_input_is_one_line(tmp_path, capsys, argv):
    run = _run(tmp_path / "r", n=40)
    argv = [a.format(run=run.path, missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferembed: error:") and "\n" not in err and "Traceback" not in err
    assert not run.cache_dir.exists() or not any(run.cache_dir.iterdir())


def test_a_read_only_run_is_projected_but_says_it_is_not_cached(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path / "r", n=60)
    monkeypatch.setattr(RP, "save_cached", lambda entry, value: False)  # as on a read-only root
    assert main(["project", str(run.path), "--method", "pca", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "all 60 points, computed in" in out and ", NOT cached (could not write" in out
    assert not RP.projection_cache_path(run, method="pca").is_file()
