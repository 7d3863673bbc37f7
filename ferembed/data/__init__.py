"""Datasets: build any supported FER dataset by name with :func:`create_dataset`.

Every loader yields :class:`Sample` records whose labels index the dataset's ``class_names``
(canonical names from :mod:`ferembed.data.vocab`) and loads images as uint8 grayscale arrays.
Importing this package registers all loaders: affectnet, ckplus, csv, fer2013, imagefolder,
rafdb, synthfer.
"""

# Loader modules are imported for their @register_dataset side effect.
from ferembed.data import affectnet, ckplus, fer2013, generic, rafdb, synthfer  # noqa: F401
from ferembed.data._base import ArrayDataset, FERDataset, Sample
from ferembed.data._registry import create_dataset, get_dataset_info, list_datasets
from ferembed.data.splits import fold_indices, subject_kfold
from ferembed.data.summary import detect_layout, summarize
from ferembed.data.vocab import CANONICAL, FER2013_ORDER, canonical_name, map_labels

__all__ = [
    "CANONICAL",
    "FER2013_ORDER",
    "ArrayDataset",
    "FERDataset",
    "Sample",
    "canonical_name",
    "create_dataset",
    "detect_layout",
    "fold_indices",
    "get_dataset_info",
    "list_datasets",
    "map_labels",
    "subject_kfold",
    "summarize",
]
