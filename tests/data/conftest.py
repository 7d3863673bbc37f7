"""Tiny on-disk fixtures in the exact layout of every supported dataset.

Session fixtures build one read-only tree per layout; tests that need a broken variant copy it
with ``fresh(tree)`` into their own tmp dir and break the copy. Every image is a uniform square
whose grey value is given, so a test can check that the right file was loaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

FER2013_CSV_HEADER = "emotion,pixels,Usage"


def save_image(path: Path, value=128, size: int = 48, mode: str = "L") -> Path:
    """Write a uniform ``size x size`` image; ``value`` is an int (L) or an (R, G, B) tuple."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = np.empty((size, size, channels), dtype=np.uint8)
    pixels[...] = value
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    return path


def pixel_string(value: int, n: int = 48 * 48) -> str:
    return " ".join([str(value)] * n)


def write_text(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


# FER2013 -------------------------------------------------------------------------------------

#: split folder -> class folder -> [(file name, grey value)]; train 6, val 2, test 3.
FER2013_TREE = {
    "train": {
        "angry": [("Training_1.jpg", 10), ("Training_2.jpg", 20)],
        "happy": [("Training_3.jpg", 30), ("Training_4.jpg", 40), ("Training_5.jpg", 50)],
        "neutral": [("Training_6.jpg", 60)],
    },
    "val": {"sad": [("PublicTest_1.jpg", 70)], "surprise": [("PublicTest_2.jpg", 80)]},
    "test": {
        "disgust": [("PrivateTest_3.jpg", 90)],
        "fear": [("PrivateTest_1.jpg", 100), ("PrivateTest_2.jpg", 110)],
    },
}

#: (emotion, grey value, Usage) of each fer2013.csv data row, rows numbered from 1.
FER2013_ROWS = [
    (0, 10, "Training"),  # row 1
    (3, 20, "Training"),  # row 2
    (6, 30, "PublicTest"),  # row 3
    (3, 40, "Training"),  # row 4
    (2, 50, "PrivateTest"),  # row 5
    (4, 60, "PublicTest"),  # row 6
    (1, 70, "PrivateTest"),  # row 7
    (5, 80, "Training"),  # row 8
]


def build_fer2013_folders(root: Path, tree=FER2013_TREE) -> Path:
    for split, classes in tree.items():
        for cls, files in classes.items():
            for name, value in files:
                save_image(root / split / cls / name, value)
    return root


def fer2013_csv_lines(rows=FER2013_ROWS, header: str = FER2013_CSV_HEADER) -> list[str]:
    return [header] + [f"{e},{pixel_string(v)},{u}" for e, v, u in rows]


@pytest.fixture(scope="session")
def fer2013_dir(tmp_path_factory) -> Path:
    return build_fer2013_folders(tmp_path_factory.mktemp("fer2013"))


@pytest.fixture(scope="session")
def fer2013_csv(tmp_path_factory) -> Path:
    """A folder holding ``fer2013.csv`` (the csv is ``fer2013_csv / "fer2013.csv"``)."""
    root = tmp_path_factory.mktemp("fer2013csv")
    write_text(root / "fer2013.csv", fer2013_csv_lines())
    return root


# CK+ -----------------------------------------------------------------------------------------

#: (class folder, subject, sequence): each sequence contributes its last 3 frames.
CKPLUS_SEQUENCES = [
    ("anger", "S005", 1),
    ("happy", "S005", 2),
    ("contempt", "S010", 1),
    ("surprise", "S010", 2),
    ("sadness", "S010", 3),
    ("disgust", "S022", 1),
    ("fear", "S050", 1),
    ("happy", "S050", 2),
    ("surprise", "S070", 1),
    ("sadness", "S100", 1),
    ("anger", "S100", 2),
    ("contempt", "S120", 1),  # S120 has only contempt: absent from the 6-class set
]
CKPLUS_FRAMES = (11, 12, 13)


@pytest.fixture(scope="session")
def ckplus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckplus")
    for cls, subject, seq in CKPLUS_SEQUENCES:
        for frame in CKPLUS_FRAMES:
            save_image(root / cls / f"{subject}_{seq:03d}_{frame:08d}.png", frame * 10)
    return root


# RAF-DB --------------------------------------------------------------------------------------

#: (name in the label file, official label id 1..7, RGB colour).
RAFDB_ROWS = [
    ("train_00001.jpg", 1, (200, 200, 200)),
    ("train_00002.jpg", 4, (120, 120, 120)),
    ("train_00003.jpg", 4, (60, 60, 60)),
    ("train_00004.jpg", 7, (30, 30, 30)),
    ("test_0001.jpg", 6, (90, 90, 90)),
    ("test_0002.jpg", 5, (150, 150, 150)),
]


@pytest.fixture(scope="session")
def rafdb_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rafdb")
    write_text(
        root / "EmoLabel" / "list_patition_label.txt",
        [f"{n} {label}" for n, label, _ in RAFDB_ROWS],
    )
    for name, _label, colour in RAFDB_ROWS:
        stem = name.removesuffix(".jpg")
        save_image(root / "Image" / "aligned" / f"{stem}_aligned.jpg", colour, 100, "RGB")
    return root


# AffectNet -----------------------------------------------------------------------------------

AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
    "valence,arousal"
)
#: split manifest -> [(subDirectory_filePath, expression)].
AFFECTNET_ROWS = {
    "training.csv": [
        ("1/aaa.jpg", 0),  # row 1 neutral
        ("1/bbb.jpg", 1),  # row 2 happy
        ("2/ccc.jpg", 1),  # row 3 happy
        ("2/ddd.jpg", 7),  # row 4 contempt (8-class only)
        ("3/eee.jpg", 8),  # row 5 none -> skipped
        ("3/fff.jpg", 10),  # row 6 no-face -> skipped
        ("4/ggg.jpg", 6),  # row 7 anger
        ("4/hhh.jpg", 2),  # row 8 sad
    ],
    "validation.csv": [
        ("5/iii.jpg", 3),  # row 1 surprise
        ("5/jjj.jpg", 4),  # row 2 fear
        ("6/kkk.jpg", 5),  # row 3 disgust
        ("6/lll.jpg", 7),  # row 4 contempt
        ("6/mmm.jpg", 9),  # row 5 uncertain -> skipped
    ],
}


def affectnet_line(path: str, expression) -> str:
    return f'{path},0,0,48,48,"1.0;2.0;3.0",{expression},0.1,-0.2'


@pytest.fixture(scope="session")
def affectnet_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("affectnet")
    for manifest, rows in AFFECTNET_ROWS.items():
        write_text(root / manifest, [AFFECTNET_HEADER] + [affectnet_line(p, e) for p, e in rows])
        for path, _expr in rows:
            save_image(root / "Manually_Annotated_Images" / path, 100, 64, "RGB")
    return root


# Generic -------------------------------------------------------------------------------------


def _image_tree(tmp_path_factory, name: str, rels) -> Path:
    """A fresh folder with one small image at each relative path of ``rels``."""
    root = tmp_path_factory.mktemp(name)
    for rel in rels:
        save_image(root / rel)
    return root


@pytest.fixture(scope="session")
def imagefolder_split_dir(tmp_path_factory) -> Path:
    """train/{anger: 2, happy: 1}, test/{happy: 1, sadness: 1}, as PNG."""
    train = ("train/anger/a1.png", "train/anger/a2.png", "train/happy/h1.png")
    return _image_tree(
        tmp_path_factory, "imagefolder_split", train + ("test/happy/h1.png", "test/sadness/s1.png")
    )


@pytest.fixture(scope="session")
def imagefolder_flat_dir(tmp_path_factory) -> Path:
    """{surprise: 2, neutral: 1} without split folders."""
    root = _image_tree(
        tmp_path_factory,
        "imagefolder_flat",
        ("surprise/x1.png", "surprise/x2.jpg", "neutral/n1.png"),
    )
    (root / "surprise" / "notes.txt").write_text("not an image")
    return root


#: manifest.csv rows: path, label, subject, split.
MANIFEST_ROWS = [
    ("imgs/p1.png", "happiness", "A", "train"),  # row 1
    ("imgs/p2.png", "Anger", "A", "train"),  # row 2
    ("imgs/p3.png", "sad", "B", "val"),  # row 3
    ("imgs/sub/p4.png", "fear", "C", "test"),  # row 4
    ("imgs/p5.png", "happy", "C", "test"),  # row 5
]


def manifest_lines(rows=MANIFEST_ROWS, header: str = "path,label,subject,split") -> list[str]:
    return [header] + [",".join(r) for r in rows]


@pytest.fixture(scope="session")
def manifest_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifest")
    write_text(root / "manifest.csv", manifest_lines())
    for row in MANIFEST_ROWS:
        save_image(root / row[0], 77)
    return root


# Copies for tests that break a layout ---------------------------------------------------------


@pytest.fixture
def fresh(tmp_path):
    """``fresh(tree)``: a private copy of a session fixture tree, safe to modify."""

    def copy(tree: Path) -> Path:
        return Path(shutil.copytree(tree, tmp_path / tree.name))

    return copy


@pytest.fixture(scope="session")
def build():
    """The builders above, for tests that write their own variant of a layout.

    (``tests/data`` has no ``__init__.py``, so tests reach conftest helpers through a fixture.)
    """
    return SimpleNamespace(
        save_image=save_image,
        write_text=write_text,
        pixel_string=pixel_string,
        fer2013_csv_lines=fer2013_csv_lines,
        fer2013_rows=FER2013_ROWS,
        build_fer2013_folders=build_fer2013_folders,
        affectnet_header=AFFECTNET_HEADER,
        affectnet_line=affectnet_line,
        manifest_lines=manifest_lines,
        manifest_rows=MANIFEST_ROWS,
    )
