"""Strict input validation (issue #14): every bad input below gives one line naming the culprit,
exit 2, no traceback and no run written.

One table, :data:`CASES`: each row builds its bad input in a fresh folder and gives the command
line and the fragments the error line must contain. The builders are plain functions so that the
same table can be replayed against an older ferembed to record its outcome.
"""

from __future__ import annotations

from pathlib import Path

import bad_inputs as bad
import pytest

from ferembed.cli import main

CASES = [
    ("import complex embeddings", bad.imp_complex, ["emb.npy", "complex"]),
    ("import float64 1e300", bad.imp_overflow, ["emb.npy", "NaN/Inf", "float32", "row 3"]),
    ("import (N, 0) embeddings", bad.imp_zero_width, ["emb.npy", "empty", "(14, 0)"]),
    ("import (0, D) embeddings", bad.imp_zero_rows, ["emb.npy", "empty", "(0, 4)"]),
    ("import .npz as embeddings", bad.imp_npz, ["emb.npy.npz", ".npz archive"]),
    ("import bool embeddings", bad.imp_bool, ["emb.npy", "numeric", "bool"]),
    ("import pickled object array", bad.imp_pickled, ["emb.npy", "not a readable .npy"]),
    ("import directory as --labels", bad.imp_labels_dir, ["labels", "is a directory"]),
    ("import directory as --embeddings", bad.imp_embeddings_dir, ["emb", "is a directory"]),
    ("import NaN label", bad.imp_nan_label, ["labels.csv", "row 7", "missing label 'NaN'"]),
    ("import mixed label types", bad.imp_mixed_labels, ["labels.csv", "row 6", "'happy'", "mixes"]),
    ("import empty label", bad.imp_empty_label, ["labels.csv", f"row {bad.N + 1}", "empty label"]),
    ("import 30-digit class index", bad.imp_huge_index, ["labels.csv", "64 bits"]),
    ("import duplicate --classes", bad.imp_duplicate_classes, ["--classes", "duplicate", "'a'"]),
    ("import empty name in --classes", bad.imp_empty_class_name, ["--classes", "empty class name"]),
    ("evaluate NaN head weight", bad.run_nan_head, ["head_weight has NaN/Inf"]),
    ("import complex logits", bad.imp_complex_logits, ["logits.npy", "complex"]),
    ("embed NaN weights", bad.emb_nan_weights, ["w.safetensors", "embed.weight", "NaN/Inf"]),
    ("embed int64 weights", bad.emb_int_weights, ["w.safetensors", "head.weight", "int64"]),
    ("embed bool weights", bad.emb_bool_weights, ["w.safetensors", "embed.bias", "bool"]),
    ("embed NaN embeddings", bad.emb_nan_output, ["nan_net", "embedding", "NaN/Inf"]),
    ("embed complex embeddings", bad.emb_complex_output, ["complex_net", "embedding", "complex"]),
    ("embed --fold for synthfer", bad.emb_fold_synthfer, ["synthfer", "fold=1"]),
    ("embed synthfer n=abc", bad._synthfer_arg("n=abc"), ["synthfer", "n must be an integer"]),
    ("embed synthfer seed=-1", bad._synthfer_arg("seed=-1"), ["synthfer", "seed", ">= 0", "-1"]),
    ("embed synthfer difficulty=nan", bad._synthfer_arg("difficulty=nan"), ["difficulty", "'nan'"]),
    ("embed synthfer imbalance=0.5", bad._synthfer_arg("imbalance=0.5"), ["imbalance", ">= 1"]),
    ("embed synthfer unknown option", bad._synthfer_arg("colour=red"), ["unknown option 'colour'"]),
    ("embed duplicate --classes", bad.emb_duplicate_classes, ["duplicate class name 'angry'"]),
    ("embed synonym --classes", bad.emb_synonym_classes, ["duplicate", "'angry' and 'anger'"]),
    ("checkpoint without input", bad.ck_missing_input, ["best.json", "lacks", "input"]),
    (
        "checkpoint num_classes text",
        bad.ck_num_classes_text,
        ["best.json", "num_classes", "integer"],
    ),
    ("checkpoint input.size -3", bad.ck_negative_size, ["best.json", "input.size", ">= 1"]),
    ("checkpoint input.std 0", bad.ck_zero_std, ["best.json", "input.std", "> 0"]),
    ("checkpoint input a list", bad.ck_input_list, ["best.json", "'input'", "object"]),
    ("checkpoint input.size 100000", bad.ck_huge_size, ["best.json", "input.size", "<= 2048"]),
    ("checkpoint widths 'abc'", bad.ck_bad_model_kwargs, ["best.json", "cannot rebuild the model"]),
    ("embed --input-size 100000", bad.emb_huge_input_size, ["--input-size", "<= 2048"]),
    ("checkpoint input.mode unknown", bad.ck_bad_mode, ["best.json", "input.mode", "'sideways'"]),
    ("checkpoint class_names text", bad.ck_class_names_text, ["best.json", "class_names", "list"]),
    ("checkpoint duplicate class", bad.ck_duplicate_class, ["best.json", "duplicate", "'angry'"]),
    ("checkpoint 2 class_names for 7", bad.ck_too_few_classes, ["best.json", "2 class_names"]),
    ("checkpoint sha256 a number", bad.ck_bad_sha, ["best.json", "sha256", "hex"]),
    ("checkpoint loss without name", bad.ck_loss_without_name, ["best.json", "lacks", "loss.name"]),
    ("checkpoint Inf weights", bad.ck_nan_weights, ["best.safetensors", "head.weight", "NaN/Inf"]),
    ("checkpoint int64 weights", bad.ck_int_weights, ["best.safetensors", "head.weight", "int64"]),
    ("run pred=42", bad.run_pred_42, ["samples.parquet", "row 6", "pred", "42"]),
    ("run pred=-2", bad.run_pred_minus_2, ["samples.parquet", "row 6", "pred"]),
    ("run NaN label", bad.run_nan_label, ["samples.parquet", "row 9", "label", "NaN"]),
    ("run label -1", bad.run_negative_label, ["samples.parquet", "row 1", "label"]),
    ("run duplicate class", bad.run_duplicate_class, ["run.json", "duplicate class name 'angry'"]),
    ("run class_names text", bad.run_class_names_text, ["run.json", "class_names", "list"]),
    ("run n text", bad.run_n_text, ["run.json", "n must be an integer"]),
    ("evaluate --reference itself", bad.ref_same_path, ["--reference", "itself"]),
    ("evaluate --reference a copy", bad.ref_copy, ["--reference", "copy", "itself"]),
    ("evaluate --reference a symlink", bad.ref_symlink, ["--reference", "link", "itself"]),
    ("evaluate zero rows (cosine)", bad.eval_zero_rows_cosine, ["2 all-zero row(s)", "row 2"]),
]


def _listing(tmp: Path) -> dict[str, int]:
    return {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*"))}


@pytest.mark.parametrize(("builder", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(builder, needles, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = builder(tmp_path)
    before = _listing(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ferembed: error: "), captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in err[0], err[0]
    assert _listing(tmp_path) == before  # nothing written: no run, no metrics, no temp folder


def test_valid_inputs_of_the_table_still_work(tmp_path, capsys):
    """The builders' good halves are accepted: the refusals above are about the one bad part."""
    assert (
        main(bad._import(tmp_path, bad._emb(tmp_path, bad._normal()), bad._good_labels(tmp_path)))
        == 0
    )
    assert main(["evaluate", str(tmp_path / "out" / "run")]) == 0
    assert main(bad._checkpoint(tmp_path / "c")) == 0
    other = bad._run(tmp_path, "train", seed=1)
    assert main(["evaluate", str(tmp_path / "out" / "run"), "--reference", str(other)]) == 0
