"""Bad command lines and unusable paths: one line ``ferembed: error: ...``, exit 2, no traceback."""

import numpy as np
import pandas as pd
import pytest

from ferembed.cli import main


def _one_line_error(capsys, *needles):
    captured = capsys.readouterr()
    err = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ferembed: error:"), err
    assert "Traceback" not in captured.err and "usage:" not in captured.err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


BAD_COMMAND_LINES = [
    ([], ["COMMAND", "ferembed --help"]),
    (["nope"], ["invalid choice: 'nope'"]),
    (["compare", "a", "b", "-k", "0"], ["-k", ">= 1", "ferembed compare --help"]),
    (["compare", "a", "b", "-k", "ten"], ["-k", "integer", "'ten'"]),
    (["evaluate", "r", "--sample-size", "0"], ["--sample-size", ">= 1"]),
    (["evaluate", "r", "--include", "retrieval,nope"], ["--include", "nope", "geometry"]),
    (["evaluate", "r", "--exclude", "geometry,"], ["--exclude"]),
    (["evaluate", "r", "--distance", "manhattan"], ["manhattan", "cosine"]),
    (["export", "r", "--format", "pdf", "--out", "x"], ["pdf", "markdown"]),
    (["index", "r", "--kind", "lsh"], ["lsh", "hnsw"]),
    (["dashboard", "--runs", ".", "--port", "70000"], ["--port", "65535"]),
    (["dashboard", "--runs", ".", "--port", "0"], ["--port", ">= 1"]),
    (["demo", "--port", "-1"], ["--port"]),
    (["datasets", "--dataset", "mnist"], ["mnist", "fer2013"]),
    (["zoo", "--dataset", "mnist", "--out", "x"], ["mnist", "synthfer"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--methods", "softmax", "sgd"], ["sgd"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--arch", "vit"], ["vit", "vgg"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--batch-size", "1"], [">= 2"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--lr", "0"], ["--lr", "> 0"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--lr", "nan"], ["--lr", "> 0"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--epochs", "0"], ["--epochs"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--seed", "-3"], ["--seed", ">= 0"]),
    (["zoo", "--dataset", "synthfer", "--out", "x", "--max-train-samples", "1"], [">= 2"]),
    (["kfold", "--num-folds", "1", "--out", "x"], ["--num-folds", ">= 2"]),
    (["kfold", "--folds", "-1", "--out", "x"], ["--folds", ">= 0"]),
]


@pytest.mark.parametrize(("argv", "needles"), BAD_COMMAND_LINES, ids=lambda v: " ".join(v))
def test_bad_command_line_is_one_line(argv, needles, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # were a bad line accepted, what it wrote would land here
    assert main(argv) == 2
    _one_line_error(capsys, *needles)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny imported run (24 rows, 3 classes)."""
    tmp = tmp_path_factory.mktemp("cli_errors")
    np.save(tmp / "e.npy", np.random.default_rng(0).normal(size=(24, 8)).astype(np.float32))
    pd.DataFrame({"label": ["a", "b", "c"] * 8}).to_csv(tmp / "l.csv", index=False)
    argv = ["import", "--embeddings", str(tmp / "e.npy"), "--labels", str(tmp / "l.csv")]
    assert main([*argv, "--out", str(tmp / "run")]) == 0
    return tmp / "run"


def test_a_file_where_a_folder_is_needed(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["evaluate", str(tmp_path / "file" / "run")]) == 2  # NotADirectoryError
    _one_line_error(capsys, "Not a directory", "file")
    assert main(["index", str(tmp_path / "file")]) == 2
    _one_line_error(capsys, "file")


def test_an_output_that_is_a_directory(run_dir, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(tmp_path / "out")]) == 2
    line = _one_line_error(capsys, "Is a directory")  # IsADirectoryError
    assert line.endswith(f"{tmp_path / 'out'}: Is a directory"), line  # the user's path, no .tmp
    assert (tmp_path / "out").is_dir() and not any((tmp_path / "out").iterdir())


def test_permission_denied_is_one_line(monkeypatch, tmp_path, capsys):
    # Tests may run as root, for whom a read-only folder is writable: raise what a user gets.
    import ferembed.data

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "faces"))

    monkeypatch.setattr(ferembed.data, "summarize", unreadable)
    argv = ["datasets", "--root", str(tmp_path), "--dataset", "imagefolder"]
    assert main(argv) == 2
    _one_line_error(capsys, "Permission denied", "faces")


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        main(["--debug", "evaluate", str(tmp_path / "file" / "run")])
