"""summarize / detect_layout, and the package's public API and registry."""

from __future__ import annotations

import pytest

import ferembed.data as data
from ferembed.errors import DataError


def test_public_api():
    for name in [
        "Sample",
        "FERDataset",
        "ArrayDataset",
        "create_dataset",
        "list_datasets",
        "get_dataset_info",
        "canonical_name",
        "map_labels",
        "CANONICAL",
        "FER2013_ORDER",
        "subject_kfold",
        "summarize",
    ]:
        assert hasattr(data, name), name


def test_every_loader_is_registered_with_a_layout():
    names = {info.name for info in data.list_datasets()}
    assert {"fer2013", "ckplus", "rafdb", "affectnet", "imagefolder", "csv"} <= names
    # Other test modules register throwaway datasets; the built-in loaders are ferembed's own.
    for info in data.list_datasets():
        if info.factory.__module__.startswith("ferembed."):
            assert len(info.layout) > 80, info.name


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'fer2014'"):
        data.create_dataset("fer2014", root=".")


def test_summarize_fer2013(fer2013_dir):
    summary = data.summarize("fer2013", fer2013_dir)
    assert summary["class_names"] == list(data.FER2013_ORDER)
    assert {s: v["n"] for s, v in summary["splits"].items()} == {"train": 6, "val": 2, "test": 3}
    assert summary["splits"]["train"]["counts"]["happy"] == 3
    assert summary["skipped"] == {}


def test_summarize_ckplus_counts_subjects(ckplus_dir):
    summary = data.summarize("ckplus", ckplus_dir, classes=6)
    assert list(summary["splits"]) == ["all"]
    assert summary["splits"]["all"]["n"] == 30
    assert summary["splits"]["all"]["subjects"] == 6


def test_summarize_reports_skipped_splits(imagefolder_flat_dir):
    summary = data.summarize("imagefolder", imagefolder_flat_dir)
    assert list(summary["splits"]) == ["all"]
    assert set(summary["skipped"]) == {"train", "val", "test"}
    assert "use split 'all'" in summary["skipped"]["train"]


def test_summarize_affectnet_counts_val_once(affectnet_dir):
    summary = data.summarize("affectnet", affectnet_dir, classes=8)
    assert {s: v["n"] for s, v in summary["splits"].items()} == {"train": 6, "val": 4}


def test_summarize_raises_when_nothing_loads(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.summarize("rafdb", tmp_path / "nope")


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("fer2013_dir", "fer2013"),
        ("fer2013_csv", "fer2013"),
        ("ckplus_dir", "ckplus"),
        ("rafdb_dir", "rafdb"),
        ("affectnet_dir", "affectnet"),
        ("imagefolder_split_dir", "imagefolder"),
        ("imagefolder_flat_dir", "imagefolder"),
        ("manifest_dir", "csv"),
    ],
)
def test_detect_layout(request, fixture, expected):
    root = request.getfixturevalue(fixture)
    assert data.detect_layout(root) == expected
    # ...and the detected loader reads it.
    assert data.summarize(expected, root)["splits"]


def test_detect_layout_of_csv_files(fer2013_csv, manifest_dir):
    assert data.detect_layout(fer2013_csv / "fer2013.csv") == "fer2013"
    assert data.detect_layout(manifest_dir / "manifest.csv") == "csv"


def test_detect_layout_nothing(tmp_path):
    assert data.detect_layout(tmp_path) is None
    assert data.detect_layout(tmp_path / "missing") is None
    (tmp_path / "notes.txt").write_text("x")
    assert data.detect_layout(tmp_path / "notes.txt") is None
    (tmp_path / "misc").mkdir()
    assert data.detect_layout(tmp_path) is None
