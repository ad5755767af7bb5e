"""SpiderBench tasks: held-out target tasks (ground truth measured) and sampled training tasks (for the selector).

Targets come only from target-side sources and classes (see ``data.py``); training tasks only from training-side
ones. ``tests/test_spiderbench.py`` checks the two never share a class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data


@dataclass(frozen=True)
class TargetSpec:
    name: str
    source: str  # "fashion" | "digits" | "glyphs" | "textures"
    classes: tuple  # class ids (fashion, digits), characters (glyphs) or skimage names (textures)
    description: str


TARGETS = [
    TargetSpec("fmnist-footwear", "fashion", (5, 7, 9), "Fashion-MNIST sandal / sneaker / ankle boot"),
    TargetSpec("fmnist-shoes-bag", "fashion", (5, 7, 8, 9), "Fashion-MNIST sandal / sneaker / bag / ankle boot"),
    TargetSpec("digits-0-4", "digits", (0, 1, 2, 3, 4), "scikit-learn 8×8 digits 0–4"),
    TargetSpec("digits-5-9", "digits", (5, 6, 7, 8, 9), "scikit-learn 8×8 digits 5–9"),
    TargetSpec("digits-all", "digits", tuple(range(10)), "scikit-learn 8×8 digits 0–9"),
    TargetSpec("glyphs-lower-a-j", "glyphs", tuple("abcdefghij"), "lower-case a–j, Liberation fonts"),
    TargetSpec("glyphs-lower-k-t", "glyphs", tuple("klmnopqrst"), "lower-case k–t, Liberation fonts"),
    TargetSpec("glyphs-digits", "glyphs", tuple("0123456789"), "digits 0–9 rendered in Liberation fonts"),
    TargetSpec("photo-patches-a", "textures", tuple(data.TEXTURE_TARGET[:4]),
               "patches of colour photos: astronaut / coffee / chelsea / rocket"),
    TargetSpec("photo-patches-b", "textures", tuple(data.TEXTURE_TARGET[4:]),
               "patches of colour photos: hubble / immunohistochemistry / retina / colorwheel"),
]
SPLITS = {"train": 16, "val": 8, "test": 16}  # images per class


def _load(source: str, classes: tuple, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if source == "fashion":
        return data.fashion(list(classes), per_class, seed=seed, split="test")  # the t10k file: never used in training
    if source == "digits":
        return data.digits(list(classes), per_class, seed=seed)
    if source == "glyphs":
        return data.glyphs(list(classes), per_class, seed=seed, family="liberation")
    if source == "textures":
        return data.textures(list(classes), per_class, seed=seed)
    raise ValueError(f"Unknown source {source!r}.")


def target_splits(spec: TargetSpec, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Disjoint train/val/test images of a target task (one draw, then cut per class)."""
    total = sum(SPLITS.values())
    x, y = _load(spec.source, spec.classes, total, seed)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for split, n in SPLITS.items():
        idx = np.concatenate([np.flatnonzero(y == c)[start : start + n] for c in range(len(spec.classes))])
        out[split] = (x[idx], y[idx])
        start += n
    return out


# --- training side: one labelled image pool, tasks sample classes from it ---------------------------------------

POOL_PER_CLASS = 20


def training_pool(seed: int = 7) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """All training-side classes in one pool: images, global labels, class names, class source."""
    parts = [
        ("fashion", data.fashion(data.FASHION_TRAIN, POOL_PER_CLASS, seed=seed),
         [f"fashion:{data.FASHION_NAMES[c]}" for c in data.FASHION_TRAIN]),
        ("glyphs", data.glyphs(data.GLYPH_TRAIN_CHARS, POOL_PER_CLASS, seed=seed, family="dejavu"),
         [f"glyph:{c}" for c in data.GLYPH_TRAIN_CHARS]),
        ("textures", data.textures(data.TEXTURE_TRAIN, POOL_PER_CLASS, seed=seed),
         [f"texture:{t}" for t in data.TEXTURE_TRAIN]),
    ]
    xs, ys, names, sources, offset = [], [], [], [], 0
    for source, (x, y), class_names in parts:
        xs.append(x)
        ys.append(y + offset)
        names += class_names
        sources += [source] * len(class_names)
        offset += len(class_names)
    return np.concatenate(xs), np.concatenate(ys), names, sources


def sample_training_tasks(class_sources: list[str], num_tasks: int, *, seed: int = 0,
                          min_classes: int = 2, max_classes: int = 10) -> list[tuple[int, ...]]:
    """Class subsets of the pool, as the paper samples them: most from one source, a fifth mixing sources."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(class_sources):
        by_source.setdefault(s, []).append(i)
    tasks: set[tuple[int, ...]] = set()
    while len(tasks) < num_tasks:
        if rng.random() < 0.2:
            pool = list(range(len(class_sources)))
        else:
            pool = by_source[sorted(by_source)[rng.integers(len(by_source))]]
        k = int(rng.integers(min_classes, min(max_classes, len(pool)) + 1))
        tasks.add(tuple(sorted(int(c) for c in rng.choice(pool, k, replace=False))))
    return sorted(tasks)
