import numpy as np
import pandas as pd
import pytest

from ferembed.cli import main
from ferembed.errors import DataError
from ferembed.runs import load_run
from ferembed.runs.importer import import_embeddings


@pytest.fixture
def files(tmp_path):
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float64)
    np.save(tmp_path / "emb.npy", x)
    pd.DataFrame(
        {
            "label": ["sad", "happy", "anger", "sad", "happy", "anger"],
            "sample_id": [f"img{i}" for i in range(6)],
            "subject": list("aabbcc"),
        }
    ).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path, x


def test_import_names_use_canonical_order(files):
    tmp, x = files
    run = load_run(import_embeddings(tmp / "emb.npy", tmp / "labels.csv", tmp / "run"))
    # angry < happy < sad in the canonical vocabulary, whatever the CSV's order
    assert run.class_names == ["anger", "happy", "sad"]
    assert run.labels.tolist() == [2, 1, 0, 2, 1, 0]
    np.testing.assert_allclose(run.embeddings, x.astype(np.float32))
    assert run.manifest["source"] == "import" and run.manifest["model"] is None
    assert run.samples["subject"].tolist() == list("aabbcc")


def test_import_integer_labels_with_class_list(tmp_path):
    np.save(tmp_path / "e.npy", np.ones((3, 2), np.float32))
    (tmp_path / "l.csv").write_text("label\n0\n1\n1\n")
    run = load_run(
        import_embeddings(
            tmp_path / "e.npy", tmp_path / "l.csv", tmp_path / "r", class_names=["x", "y"]
        )
    )
    assert run.class_names == ["x", "y"] and run.labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: np.save(t / "emb.npy", np.full((6, 4), np.nan)), "NaN/Inf in 6 row"),
        (lambda t: (t / "labels.csv").write_text("label\nsad\n"), "1 rows but"),
        (lambda t: (t / "labels.csv").write_text("name\n" + "a\n" * 6), "no 'label' column"),
        (lambda t: (t / "labels.csv").write_text("label\nsad\nsad\n\nsad\nsad\nsad\n"), "row"),
        (lambda t: np.save(t / "emb.npy", np.ones(6)), "2-D"),
    ],
)
def test_bad_import_input(files, mutate, message):
    tmp, _ = files
    mutate(tmp)
    with pytest.raises(DataError, match=message):
        import_embeddings(tmp / "emb.npy", tmp / "labels.csv", tmp / "run")
    assert not (tmp / "run").exists()


def test_nan_row_is_named(files):
    tmp, x = files
    x[4, 1] = np.inf
    np.save(tmp / "emb.npy", x)
    with pytest.raises(DataError, match="first at row 4"):
        import_embeddings(tmp / "emb.npy", tmp / "labels.csv", tmp / "run")


def test_cli_import_error_is_one_line_exit_2(files, capsys):
    tmp, _ = files
    (tmp / "labels.csv").write_text("label\n" + "sad\n" * 5 + "grumpy\n")
    rc = main(
        [
            "import",
            "--embeddings",
            str(tmp / "emb.npy"),
            "--labels",
            str(tmp / "labels.csv"),
            "--out",
            str(tmp / "run"),
            "--classes",
            "sad,happy",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "row 7" in err and "grumpy" in err
    assert "Traceback" not in err and not (tmp / "run").exists()
