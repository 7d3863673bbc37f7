"""The canonical emotion vocabulary and the mapping of dataset-specific names onto it."""

from __future__ import annotations

from ferembed.errors import DataError

#: Canonical class names. A dataset's ``class_names`` is an ordered subset of these (its protocol
#: order); label indices always index into the dataset's own list.
CANONICAL: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
    "contempt",
)

#: FER2013's protocol order (emotion ids 0..6 of fer2013.csv).
FER2013_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "neutral": "neutral",
    "ne": "neutral",
    "contempt": "contempt",
    "co": "contempt",
}


def canonical_name(name: str) -> str:
    """Map a dataset's class name (any case, common synonyms) to its canonical name.

    Raises:
        DataError: the name is not a known expression name.
    """
    key = str(name).strip().lower()
    try:
        return _ALIASES[key]
    except KeyError:
        raise DataError(f"unknown class name {name!r}; known: {sorted(set(_ALIASES))}") from None


def check_unique_names(names, where: str) -> None:
    """Refuse a class list in which two names mean the same class (``angry`` twice, or
    ``anger`` and ``angry``): mapping labels onto it would merge or drop whole classes.

    Raises:
        DataError: naming the duplicate and ``where`` the list came from.
    """
    seen: dict[str, str] = {}
    for name in names:
        try:
            key = canonical_name(name)
        except DataError:
            key = str(name).strip()
        if key in seen:
            same = f"{name!r}" if seen[key] == name else f"{seen[key]!r} and {name!r}"
            raise DataError(f"{where}: duplicate class name {same} in {list(names)}")
        seen[key] = name


def map_labels(labels, from_names, to_names):
    """Re-index labels from one class list to another by canonical name.

    Returns:
        (new_labels, keep): int64 array of indices into ``to_names`` (-1 where the class has no
        counterpart) and a boolean mask of the samples whose class exists in ``to_names``.

    Raises:
        DataError: a name that is not an expression name, or two names in either list that
            mean the same class.
    """
    import numpy as np

    check_unique_names(to_names, "classes")
    check_unique_names(from_names, "dataset classes")
    to_index = {canonical_name(n): i for i, n in enumerate(to_names)}
    table = np.array([to_index.get(canonical_name(n), -1) for n in from_names], dtype=np.int64)
    new = table[np.asarray(labels, dtype=np.int64)]
    return new, new >= 0
