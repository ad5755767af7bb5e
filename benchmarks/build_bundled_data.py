"""Build the small sample datasets shipped in ``hf_spider/bundled/data/`` (run by hand; the output is committed).

    apt-get install -y dataset-fashion-mnist
    python benchmarks/build_bundled_data.py

- ``fashion-mnist``: 8 test-split images per class of Fashion-MNIST (Xiao et al., 2017; MIT licence), 28×28 grey.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "hf_spider" / "bundled" / "data"
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]
PER_CLASS = 8


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:k] for c in np.unique(labels)]))


def fashion_mnist() -> datasets.Dataset:
    images = np.frombuffer(gzip.open(FASHION / "t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    labels = np.frombuffer(gzip.open(FASHION / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    images = images.reshape(-1, 28, 28)
    keep = first_per_class(labels, PER_CLASS)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=FASHION_NAMES)})
    return datasets.Dataset.from_dict(
        {"image": [Image.fromarray(images[i]) for i in keep], "label": labels[keep].astype(int).tolist()},
        features=features,
    )


if __name__ == "__main__":
    for name, build in {"fashion-mnist": fashion_mnist}.items():
        ds = build()
        ds.save_to_disk(OUT / name)
        print(f"{name}: {len(ds)} rows -> {OUT / name}")
