"""``ferembed embed`` on the real datasets: complete runs whose counts equal the folders'."""

import json

import numpy as np
import pytest

from ferembed.cli import main
from ferembed.data.ckplus import CKPLUS_CLASSES_7
from ferembed.data.vocab import FER2013_ORDER
from ferembed.runs import load_run

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

# Counts from ../shared/datasets/README.md (an independent source, not the loader).
FER2013_TEST = {
    "angry": 491,
    "disgust": 55,
    "fear": 528,
    "happy": 879,
    "neutral": 626,
    "sad": 594,
    "surprise": 416,
}
CKPLUS = {
    "angry": 135,
    "contempt": 54,
    "disgust": 177,
    "fear": 75,
    "happy": 207,
    "sad": 84,
    "surprise": 249,
}


def _checkpoint(tmp_path, classes):
    import torch

    from ferembed.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("vgg_small", len(classes), embedding_dim=32)
    return save_checkpoint(tmp_path / "ckpt", model, meta={"class_names": list(classes)})


def test_fer2013_test_split(fer2013_root, tmp_path):
    ckpt = _checkpoint(tmp_path, FER2013_ORDER)
    assert (
        main(
            [
                "embed",
                "--checkpoint",
                str(ckpt),
                "--dataset",
                "fer2013",
                "--root",
                str(fer2013_root),
                "--split",
                "test",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    run = load_run(tmp_path / "run")
    assert run.n == 3589 and run.embeddings.shape == (3589, 32)
    assert run.samples["label_name"].value_counts().to_dict() == FER2013_TEST
    assert run.samples["sample_id"].is_unique
    assert run.samples["path"].str.contains("PrivateTest_").all()
    assert np.isfinite(run.embeddings).all() and run.thumbs.shape == (3589, 48, 48)


def test_ckplus_all_and_subject_disjoint_folds(ckplus_root, tmp_path):
    ckpt = _checkpoint(tmp_path, CKPLUS_CLASSES_7)
    base = [
        "embed",
        "--checkpoint",
        str(ckpt),
        "--dataset",
        "ckplus",
        "--root",
        str(ckplus_root),
        "--quiet",
    ]
    assert main([*base, "--split", "all", "--out", str(tmp_path / "all")]) == 0
    run = load_run(tmp_path / "all")
    assert run.n == 981
    assert run.samples["label_name"].value_counts().to_dict() == CKPLUS
    assert run.samples["subject"].nunique() == 118

    seen_test = set()
    for fold in (0, 9):
        for split in ("train", "test"):
            out = tmp_path / f"f{fold}-{split}"
            assert main([*base, "--split", split, "--fold", str(fold), "--out", str(out)]) == 0
        train, test = load_run(tmp_path / f"f{fold}-train"), load_run(tmp_path / f"f{fold}-test")
        assert train.n + test.n == 981
        assert not set(train.samples["subject"]) & set(test.samples["subject"])
        folds = json.loads((tmp_path / f"f{fold}-test" / "folds.json").read_text())
        assert folds["num_folds"] == 10
        assert sorted(s for f in folds["folds"] for s in f) == sorted(
            run.samples["subject"].unique()
        )
        assert set(test.samples["subject"]) == set(folds["folds"][fold])
        seen_test |= set(test.samples["subject"])
    assert len(seen_test) < 118  # two folds hold a part of the subjects


def test_fer2013_checkpoint_on_ckplus_drops_contempt(ckplus_root, tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, FER2013_ORDER)
    assert (
        main(
            [
                "embed",
                "--checkpoint",
                str(ckpt),
                "--dataset",
                "ckplus",
                "--root",
                str(ckplus_root),
                "--split",
                "all",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 0
    )
    assert "leaving out 54 samples of classes ['contempt']" in capsys.readouterr().err
    run = load_run(tmp_path / "x")
    assert run.n == 927 and run.class_names == list(FER2013_ORDER)
