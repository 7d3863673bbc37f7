"""imagefolder and csv-manifest loaders."""

from __future__ import annotations

import pytest

from ferembed.data import create_dataset
from ferembed.errors import DataError


def folder(root, split="all", **kw):
    return create_dataset("imagefolder", root=root, split=split, **kw)


def manifest(root, split="all", **kw):
    return create_dataset("csv", root=root, split=split, **kw)


# imagefolder ----------------------------------------------------------------------------------


def test_split_layout_classes_are_the_union_in_canonical_order(imagefolder_split_dir):
    train = folder(imagefolder_split_dir, "train")
    test = folder(imagefolder_split_dir, "test")
    assert train.class_names == test.class_names == ["angry", "happy", "sad"]
    assert train.class_counts().tolist() == [2, 1, 0]
    assert test.class_counts().tolist() == [0, 1, 1]


def test_split_layout_sample_ids_are_unique_paths(imagefolder_split_dir):
    test = folder(imagefolder_split_dir, "test")
    assert [s.sample_id for s in test.samples] == ["happy/h1", "sadness/s1"]
    assert [s.path for s in test.samples] == ["test/happy/h1.png", "test/sadness/s1.png"]
    assert {s.split for s in test.samples} == {"test"}


def test_flat_layout_is_split_all(imagefolder_flat_dir):
    ds = folder(imagefolder_flat_dir)
    assert ds.class_names == ["surprise", "neutral"]
    assert ds.class_counts().tolist() == [2, 1]  # notes.txt is not an image
    assert ds[0][0].shape == (48, 48)


def test_flat_layout_has_no_train(imagefolder_flat_dir):
    with pytest.raises(DataError, match="no split folder 'train'.*use split 'all'"):
        folder(imagefolder_flat_dir, "train")


def test_split_layout_missing_split(imagefolder_split_dir):
    with pytest.raises(DataError, match=r"no split folder 'val' .*\['train', 'test'\]"):
        folder(imagefolder_split_dir, "val")


def test_split_layout_has_no_all(imagefolder_split_dir):
    with pytest.raises(DataError, match="no split folder 'all'"):
        folder(imagefolder_split_dir, "all")


def test_imagefolder_unknown_class(imagefolder_flat_dir, fresh, build):
    root = fresh(imagefolder_flat_dir)
    build.save_image(root / "cats" / "c.png")
    with pytest.raises(DataError, match="unknown class name 'cats'") as err:
        folder(root)
    assert str(root / "cats") in str(err.value)


def test_imagefolder_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        folder(tmp_path / "none")


def test_imagefolder_root_is_a_file(tmp_path):
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(DataError, match="is not a folder"):
        folder(tmp_path / "f.png")


def test_rgb_png_is_converted_to_gray_exactly(tmp_path, build, capsys):
    build.save_image(tmp_path / "happy" / "red.png", (255, 0, 0), 100, "RGB")
    image = folder(tmp_path)[0][0]
    # ITU-R 601-2 luma: 255 * 299 / 1000 = 76.2 -> 76; a uniform image stays uniform when resized.
    assert image.shape == (48, 48)
    assert image.min() == image.max() == 76
    assert "resizing to 48x48" in capsys.readouterr().err


def test_image_size_option(imagefolder_flat_dir):
    assert folder(imagefolder_flat_dir, image_size=32)[0][0].shape == (32, 32)


# csv manifest ---------------------------------------------------------------------------------


def test_manifest_all_rows(manifest_dir):
    ds = manifest(manifest_dir)
    assert ds.class_names == ["angry", "fear", "happy", "sad"]
    assert ds.labels.tolist() == [2, 0, 3, 1, 2]
    assert [s.subject for s in ds.samples] == ["A", "A", "B", "C", "C"]
    assert [s.split for s in ds.samples] == ["train", "train", "val", "test", "test"]
    assert ds.samples[3].sample_id == "imgs/sub/p4"
    assert ds[3][0].max() == 77


def test_manifest_split_filter_keeps_all_classes(manifest_dir):
    test = manifest(manifest_dir, "test")
    assert test.class_names == ["angry", "fear", "happy", "sad"]
    assert [s.path for s in test.samples] == ["imgs/sub/p4.png", "imgs/p5.png"]


def test_manifest_root_may_be_the_file(manifest_dir):
    assert len(manifest(manifest_dir / "manifest.csv", "train")) == 2


def test_manifest_without_optional_columns(tmp_path, build):
    build.save_image(tmp_path / "a.png")
    build.write_text(tmp_path / "list.csv", ["path,label", "a.png,neutral"])
    ds = manifest(tmp_path / "list.csv")
    assert ds.class_names == ["neutral"] and ds.samples[0].subject == ""


def test_manifest_without_split_column_has_only_all(tmp_path, build):
    build.save_image(tmp_path / "a.png")
    build.write_text(tmp_path / "manifest.csv", ["path,label", "a.png,neutral"])
    with pytest.raises(DataError, match="no split column; use split 'all'"):
        manifest(tmp_path, "train")


@pytest.fixture
def bad_manifest(manifest_dir, fresh, build):
    """``bad_manifest(line)``: a copy whose manifest row 3 is ``line``."""

    def write(line: str, header: str = "path,label,subject,split"):
        root = fresh(manifest_dir)
        lines = build.manifest_lines(header=header)
        lines[3] = line
        build.write_text(root / "manifest.csv", lines)
        return root

    return write


@pytest.mark.parametrize(
    "line, message",
    [
        ("imgs/p3.png,bored,B,val", "row 3: unknown class name 'bored'"),
        ("imgs/gone.png,sad,B,val", "row 3: file 'imgs/gone.png' not found"),
        ("imgs/p1.png,sad,B,val", "row 3: path 'imgs/p1.png' already listed in row 1"),
        ("imgs/p3.png,sad,B", r"row 3 \(line 4\) has 3 fields, expected 4"),
        (",sad,B,val", "row 3: empty path"),
    ],
)
def test_bad_manifest_row_is_named(bad_manifest, line, message):
    root = bad_manifest(line)
    with pytest.raises(DataError, match=message) as err:
        manifest(root)
    assert "manifest.csv" in str(err.value)


def test_manifest_missing_file_in_another_split_is_ignored(bad_manifest):
    assert len(manifest(bad_manifest("imgs/gone.png,sad,B,val"), "train")) == 2


def test_manifest_missing_column(bad_manifest):
    with pytest.raises(DataError, match=r"missing column\(s\) \['label'\]"):
        manifest(bad_manifest("imgs/p3.png,sad,B,val", header="path,emotion,subject,split"))


def test_no_manifest_in_folder(tmp_path):
    with pytest.raises(DataError, match="no manifest.csv in"):
        manifest(tmp_path)


def test_manifest_with_header_only(tmp_path, build):
    build.write_text(tmp_path / "manifest.csv", ["path,label"])
    with pytest.raises(DataError, match="has no rows"):
        manifest(tmp_path)


def test_manifest_not_utf8(tmp_path):
    (tmp_path / "manifest.csv").write_bytes(b"path,label\n\xff\xfebad,sad\n")
    with pytest.raises(DataError, match="manifest.csv: not a readable CSV file"):
        manifest(tmp_path)


def test_manifest_csv_error_names_the_row(tmp_path):
    # A field over csv's size limit (131072 characters) is a csv.Error.
    (tmp_path / "manifest.csv").write_text("path,label\na.png,sad\n" + "b" * 140_000 + ",sad\n")
    with pytest.raises(DataError, match=r"manifest.csv: row 2 \(line 3\) is not readable CSV"):
        manifest(tmp_path)
