"""Text target tasks (ground truth measured) and the training-side text pool (selector training tasks).

Training side: BBC business/entertainment/politics; Faker names, addresses and six field types in the eight
``NAME_SOURCE`` locales. Target side: BBC sports/tech; names and addresses of Nordic and Central-European locales
(never in the training side); five other Faker field types; stdlib docstrings; Debian licence texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tasks import sample_training_tasks  # noqa: F401  (the same task sampler as the image side)
from . import data


@dataclass(frozen=True)
class TextTarget:
    name: str
    source: str  # "bbc" | "bbc-headlines" | "names" | "addresses" | "fields" | "docstrings" | "licenses"
    classes: tuple
    description: str


TARGETS = [
    TextTarget("bbc-sports-tech", "bbc", tuple(data.BBC_TARGET), "BBC News article sentences: sports vs tech"),
    TextTarget("bbc-headlines-sports-tech", "bbc-headlines", tuple(data.BBC_TARGET), "BBC News headlines"),
    TextTarget("names-nordic", "names", tuple(data.NORDIC), "person-name locale: sv_SE / da_DK / fi_FI / no_NO"),
    TextTarget("names-central", "names", tuple(data.CENTRAL), "person-name locale: " + " / ".join(data.CENTRAL)),
    TextTarget("addresses-nordic", "addresses", tuple(data.NORDIC), "address locale: sv_SE / da_DK / fi_FI / no_NO"),
    TextTarget("fields-places-colours", "fields", ("city", "country", "color_name"), "Faker en_US field type"),
    TextTarget("fields-catchphrase-bs", "fields", ("catch_phrase", "bs"), "Faker en_US company catch phrase vs bs"),
    TextTarget("docstrings-a", "docstrings", tuple(data.DOC_A), "stdlib docstring package: " + " / ".join(data.DOC_A)),
    TextTarget("docstrings-b", "docstrings", tuple(data.DOC_B), "stdlib docstring package: " + " / ".join(data.DOC_B)),
    TextTarget("licenses", "licenses", tuple(data.LICENSES), "Debian licence sentence: " + " / ".join(data.LICENSES)),
]
SPLITS = {"train": 16, "val": 8, "test": 16}  # texts per class
TARGET_SEED = 50_000  # Faker seeds of the target side (the training side uses < 10_000)


def _load(spec: TextTarget, per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    classes = list(spec.classes)
    if spec.source in ("bbc", "bbc-headlines"):
        return data.bbc(classes, per_class, seed, headlines=spec.source == "bbc-headlines")
    if spec.source in ("names", "addresses"):
        return data.faker_locales(classes, {"names": "name", "addresses": "address"}[spec.source],
                                  per_class, TARGET_SEED + seed)
    if spec.source == "fields":
        return data.faker_fields(classes, per_class, TARGET_SEED + seed)
    if spec.source == "docstrings":
        return data.docstrings(classes, per_class, seed)
    if spec.source == "licenses":
        return data.licenses(classes, per_class, seed)
    raise ValueError(f"Unknown source {spec.source!r}.")


def target_splits(spec: TextTarget, seed: int = 0) -> dict[str, tuple[list[str], np.ndarray]]:
    """Disjoint train/val/test texts of a target task (one draw, then cut per class)."""
    texts, y = _load(spec, sum(SPLITS.values()), seed)
    out, start = {}, 0
    for split, n in SPLITS.items():
        idx = np.concatenate([np.flatnonzero(y == c)[start : start + n] for c in range(len(spec.classes))])
        out[split] = ([texts[i] for i in idx], y[idx])
        start += n
    return out


# --- training side ----------------------------------------------------------------------------------------------

POOL_PER_CLASS = 20


def training_pool(seed: int = 7) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """All training-side classes in one pool: texts, global labels, class names, class source."""
    parts = [
        ("bbc", data.bbc(data.BBC_SOURCE, POOL_PER_CLASS, seed), [f"bbc:{c}" for c in data.BBC_SOURCE]),
        ("names", data.faker_locales(data.NAME_SOURCE, "name", POOL_PER_CLASS, 7000 + seed),
         [f"name:{c}" for c in data.NAME_SOURCE]),
        ("addresses", data.faker_locales(data.NAME_SOURCE, "address", POOL_PER_CLASS, 8000 + seed),
         [f"address:{c}" for c in data.NAME_SOURCE]),
        ("fields", data.faker_fields(data.FIELD_SOURCE, POOL_PER_CLASS, 9000 + seed, data.NAME_SOURCE),
         [f"field:{c}" for c in data.FIELD_SOURCE]),
    ]
    texts, ys, names, sources, offset = [], [], [], [], 0
    for source, (x, y), class_names in parts:
        texts += x
        ys.append(y + offset)
        names += class_names
        sources += [source] * len(class_names)
        offset += len(class_names)
    return texts, np.concatenate(ys), names, sources
