"""``embed --ray`` and ``evaluate --ray`` on a local Ray (2 CPUs) give the one-process run and
metrics; an interrupted Ray embed resumes without recomputing its saved batches; a missing Ray
is a one-line error."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferembed.cli import main
from ferembed.runs import evaluate_run, load_run
from ferembed.runs.embed import embed_checkpoint, embed_model

REPO = Path(__file__).resolve().parents[2]
CKPT = REPO / "checkpoints" / "synthfer" / "center"
HELPER = Path(__file__).with_name("byom_net.py")
N = 240  # SynthFER faces: 4 batches of 64, the last one short
SPLIT = dict(dataset="synthfer", root=None, split="test", dataset_kwargs={"n": N})
#: run.json keys that differ between any two runs (when, where, how they were made).
OWN_KEYS = ("name", "created", "command")


def ray_test(fn):
    """A test on the local Ray: slow (Ray and its actors take seconds to start); Ray Data's
    own deprecation warnings are not ours."""
    return pytest.mark.slow(pytest.mark.filterwarnings("ignore::DeprecationWarning")(fn))


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (ferembed uses a Ray that is already up, as it is)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    return embed_checkpoint(CKPT, out=out, batch_size=64, progress=False, **SPLIT)


def _ray_embed(out: Path, *extra: str) -> int:
    return main(
        ["embed", "--checkpoint", str(CKPT), "--dataset", "synthfer", "--dataset-arg",
         f"n={N}", "--split", "test", "--out", str(out), "--batch-size", "64", "--quiet",
         "--ray", *extra]
    )  # fmt: skip


def _assert_same_run(a: Path, b: Path) -> None:
    ra, rb = load_run(a), load_run(b)
    assert list(ra.sample_ids) == list(rb.sample_ids)
    np.testing.assert_allclose(rb.embeddings, ra.embeddings, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rb.logits, ra.logits, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(rb.thumbs, ra.thumbs)
    pd.testing.assert_frame_equal(
        pd.read_parquet(b / "samples.parquet"), pd.read_parquet(a / "samples.parquet")
    )
    ma, mb = (json.loads((p / "run.json").read_text()) for p in (a, b))
    for key in OWN_KEYS:
        ma.pop(key), mb.pop(key)
    assert mb == ma


@ray_test
def test_embed_ray_gives_the_one_process_run(local_ray, one_process, tmp_path):
    out = tmp_path / "ray"
    assert _ray_embed(out) == 0
    _assert_same_run(one_process, out)
    assert not (tmp_path / ".ray.ray-parts").exists()  # the saved batches go with success


@ray_test
def test_embed_ray_with_a_user_model(local_ray, tmp_path):
    from byom_net import make_imagefolder, trained
    from safetensors.torch import save_file

    from ferembed.models.external import Preprocess
    from ferembed.runs.distributed import ModelRecipe, ray_embedding

    root = make_imagefolder(tmp_path / "faces", per_class=7)
    weights = tmp_path / "net.safetensors"
    save_file(trained().state_dict(), str(weights))
    spec = f"python:{HELPER}:create"
    options = dict(
        weights=weights, head_layer="head", preprocess=Preprocess.from_options(48, 3, "0.5", "0.2")
    )
    common = dict(dataset="imagefolder", root=root, split="test", batch_size=4, progress=False)
    embed_model(spec, out=tmp_path / "one", **options, **common)
    with ray_embedding(ModelRecipe(spec=spec, options=options), tmp_path / "ray") as embedder:
        embed_model(spec, out=tmp_path / "ray", **options, **common)
    assert embedder.rows_embedded == 21
    _assert_same_run(tmp_path / "one", tmp_path / "ray")


@ray_test
def test_interrupted_ray_embed_resumes(local_ray, one_process, tmp_path, monkeypatch, capsys):
    from ferembed.runs.distributed import RayEmbedder, ray_embedding

    out = tmp_path / "ray"
    parts = tmp_path / ".ray.ray-parts"
    save = RayEmbedder._save_part
    saved = []

    def save_then_die(self, batch):
        if saved:
            raise KeyboardInterrupt  # a Ctrl-C once a first part (batches) was saved
        save(self, batch)
        saved.append(len(batch["row"]))

    monkeypatch.setattr(RayEmbedder, "_save_part", save_then_die)
    assert _ray_embed(out) == 130  # "ferembed: interrupted"
    monkeypatch.undo()
    assert not out.exists() and len(list(parts.glob("part-*.npz"))) == 1
    assert 0 < saved[0] < N

    from ferembed.runs.distributed import ModelRecipe

    with ray_embedding(ModelRecipe(checkpoint=str(CKPT)), out) as embedder:
        embed_checkpoint(CKPT, out=out, batch_size=64, progress=False, **SPLIT)
    assert embedder.rows_embedded == N - sum(saved)  # the saved batches were not recomputed
    assert f"resuming: {sum(saved)} of {N} faces" in capsys.readouterr().err
    _assert_same_run(one_process, out)
    assert not parts.exists()


@ray_test
def test_parts_of_another_model_are_not_reused(local_ray, tmp_path, monkeypatch):
    from ferembed.runs.distributed import ModelRecipe, RayEmbedder, ray_embedding

    out = tmp_path / "ray"
    other = REPO / "checkpoints" / "synthfer" / "softmax"
    monkeypatch.setattr(RayEmbedder, "_gather", lambda *a: (_ for _ in ()).throw(SystemExit(3)))
    with pytest.raises(SystemExit), ray_embedding(ModelRecipe(checkpoint=str(other)), out):
        embed_checkpoint(other, out=out, batch_size=64, progress=False, **SPLIT)
    monkeypatch.undo()
    with ray_embedding(ModelRecipe(checkpoint=str(CKPT)), out) as embedder:
        embed_checkpoint(CKPT, out=out, batch_size=64, progress=False, **SPLIT)
    assert embedder.rows_embedded == N


def _numeric_leaves(tree, path=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key not in ("created", "timings_s", "computed_from"):
                yield from _numeric_leaves(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _numeric_leaves(value, f"{path}[{i}]")
    else:
        yield path, tree


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The checkpoint's embeddings of 150 SynthFER validation faces (another split)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    split = {**SPLIT, "split": "val", "dataset_kwargs": {"n": 150}}
    return embed_checkpoint(CKPT, out=out, batch_size=64, progress=False, **split)


@ray_test
@pytest.mark.parametrize(
    "options",
    [{}, {"max_exact_n": 100, "sample_size": 90, "distance": "euclidean"}, {"reference": True}],
    ids=["exact-cosine", "sampled-euclidean", "reference-run"],
)
def test_evaluate_ray_gives_the_same_metrics(local_ray, one_process, reference_run, options):
    from ferembed._ray import ray_search

    if options.get("reference"):
        options = {"reference": reference_run}
    expected = evaluate_run(one_process, write=False, n_boot=50, **options)
    with ray_search() as search:
        got = evaluate_run(one_process, write=False, n_boot=50, **options)
    assert search.blocks_run > 1  # the queries were spread over several tasks
    want, have = dict(_numeric_leaves(expected)), dict(_numeric_leaves(got))
    assert have.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float) and not isinstance(value, bool):
            assert have[key] == pytest.approx(value, abs=1e-5, rel=0), key
        else:
            assert have[key] == value, key


@ray_test
def test_evaluate_ray_cli_writes_the_metrics(local_ray, one_process, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_process, run)
    assert main(["evaluate", str(run), "--ray", "--ray-workers", "2"]) == 0
    metrics = load_run(run).load_metrics()
    assert metrics["n"] == N and metrics["precision_at_1"] is not None
    assert load_run(run).metrics_status()[0] == "fresh"
    assert capsys.readouterr().out.strip()  # the summary is printed


@pytest.mark.parametrize("command", ["embed", "evaluate"])
def test_missing_ray_is_one_line(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    if command == "embed":
        code = main(["embed", "--checkpoint", str(CKPT), "--dataset", "synthfer", "--split",
                     "test", "--out", str(tmp_path / "x"), "--ray"])  # fmt: skip
    else:
        code = main(["evaluate", str(tmp_path), "--ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == ["ferembed: error: `--ray` needs Ray: pip install -e .[ray]"]
    assert not (tmp_path / "x").exists()


def test_ray_options_need_ray(tmp_path, capsys):
    code = main(["evaluate", str(tmp_path), "--ray-address", "auto"])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("--ray-address: only with --ray")


@pytest.mark.parametrize(
    ("gpus", "cpus", "device", "workers", "plan"),
    [
        (2, 32, "auto", None, (2, "cuda", 1)),  # one actor per GPU, each holding it whole
        (2, 32, "cuda", 5, (2, "cuda", 1)),  # never more actors than GPUs
        (4, 32, "auto", 3, (3, "cuda", 1)),
        (2, 32, "cpu", None, (32, "cpu", 0)),  # --device cpu: one actor per CPU
        (0, 4, "auto", None, (4, "cpu", 0)),
        (0, 4, "auto", 2, (2, "cpu", 0)),
    ],
)
def test_actor_plan(gpus, cpus, device, workers, plan):
    from ferembed.runs.distributed import actor_plan

    assert actor_plan(gpus, cpus, device, workers) == plan


def test_cuda_on_a_cluster_without_gpu_is_refused():
    from ferembed.errors import ConfigError
    from ferembed.runs.distributed import actor_plan

    with pytest.raises(ConfigError, match="--device cuda: the Ray cluster has no GPU"):
        actor_plan(0, 8, "cuda", None)


PICKY = """
from torch import nn


class Picky(nn.Module):
    def forward(self, x):
        if x.shape[0] > 2:  # passes the loader's check (2 blank faces), fails on real batches
            raise RuntimeError("batch too large")
        return x.flatten(1)[:, :4]


def create():
    return Picky()
"""


@ray_test
def test_a_worker_error_is_the_one_process_error(local_ray, tmp_path, capsys):
    spec_file = tmp_path / "picky.py"
    spec_file.write_text(PICKY)
    argv = ["embed", "--model", f"python:{spec_file}:create", "--dataset", "synthfer",
            "--dataset-arg", "n=20", "--batch-size", "8", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "one")]) == 2
    one = capsys.readouterr().err.strip()
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == 2
    (got,) = capsys.readouterr().err.strip().splitlines()  # one line, no Ray log or traceback

    def batchless(line: str) -> str:  # Ray's blocks cut the batches elsewhere
        return re.sub(r"input \(\d+, ", "input (B, ", line)

    assert "rejected input" in one and batchless(got) == batchless(one)
    assert not (tmp_path / "ray").exists()
