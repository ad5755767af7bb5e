"""SpiderBench v2 task definitions: ≥ 48 image and ≥ 24 text targets, ≥ 60 training tasks per modality.

Targets are fixed lists; training tasks are class subsets sampled (seeded) from each modality's training pool, as
the paper samples them. Every task is a ``TaskSpec`` of ``classes.ClassRef``; how examples are drawn and split is
``data.py``. Disjointness from the zoo and between roles is checked by ``tests/test_spiderbench_v2.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .classes import (
    ANIMAL_MNIST,
    CYRILLIC,
    DIGITS,
    FASHION_TRAINING,
    GREEK,
    HEBREW,
    LATIN_DIGITS,
    LATIN_LOWER,
    SCRIPTS,
    SHAPES,
    SKIMAGE_TRAINING,
    SYMBOLS,
    TARGET_FONT_GROUPS,
    TRAINING_BBC,
    TRAINING_DOCSTRINGS,
    TRAINING_FIELDS,
    TRAINING_FONTS,
    TRAINING_LOCALES,
    ClassRef,
    refs,
)

NUM_TRAINING_TASKS = 64  # per modality


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str  # "image" | "text"
    role: str  # "target" | "train"
    classes: tuple[ClassRef, ...]
    description: str = ""

    @property
    def sources(self) -> set[str]:
        return {c.source_key for c in self.classes}


def _target(name: str, modality: str, classes: tuple[ClassRef, ...], description: str) -> TaskSpec:
    return TaskSpec(name, modality, "target", classes, description)


def _image_targets() -> list[TaskSpec]:
    out = []
    animal_sets = {"all": ANIMAL_MNIST, "0-4": "01234", "5-9": "56789", "even": "02468", "odd": "13579",
                   "0-2": "012", "3-6": "3456", "7-9": "789"}
    for name, labels in animal_sets.items():
        out.append(_target(f"animals-{name}", "image", refs("animal-mnist", labels),
                           "Animal-MNIST silhouettes (animal-mnist==0.4), classes " + ",".join(labels)))
    digit_sets = {"0-4": "01234", "5-9": "56789", "all": DIGITS, "0-1-7": "017", "3-5-8-9": "3589",
                  "even": "02468"}
    for name, labels in digit_sets.items():
        out.append(_target(f"digits-{name}", "image", refs("digits", labels),
                           "scikit-learn 8×8 hand-written digits " + ",".join(labels)))
    latin = {"lower-a-h": LATIN_LOWER[:7], "lower-i-t": LATIN_LOWER[7:], "digits": LATIN_DIGITS}
    for group in TARGET_FONT_GROUPS:
        for name, chars in latin.items():
            out.append(_target(f"glyphs-{name}-{group}", "image", refs("glyphs", chars, group),
                               f"characters {' '.join(chars)} in the {group} fonts"))
    for script, chars in SCRIPTS.items():
        group = "noto-" + script.split("-")[0]
        out.append(_target(f"glyphs-{script}", "image", refs("glyphs", chars, group),
                           f"{script.split('-')[0].capitalize()} letters {' '.join(chars)} (Noto fonts)"))
    return out


DEBIAN_TARGETS = {  # Debian package short descriptions, labelled by archive section
    "games-science-sound": ["games", "science", "sound"], "graphics-video-sound": ["graphics", "video", "sound"],
    "mail-net-web": ["mail", "net", "web"], "math-science-electronics": ["math", "science", "electronics"],
    "editors-text-tex": ["editors", "text", "tex"], "admin-kernel-utils": ["admin", "kernel", "utils"],
    "database-httpd-web": ["database", "httpd", "web"],
    "hamradio-comm-electronics": ["hamradio", "comm", "electronics"],
    "x11-gnome-kde": ["x11", "gnome", "kde"], "fonts-localization-games": ["fonts", "localization", "games"],
    "vcs-devel-utils": ["vcs", "devel", "utils"], "otherosfs-admin-net": ["otherosfs", "admin", "net"],
    "media-4": ["sound", "video", "games", "graphics"], "misc-utils-text-net": ["misc", "utils", "text", "net"],
}
KAOMOJI_TARGETS = {  # kaomoji-dataset==1.0.6 categories
    "moods-a": ["happy", "sad", "angry", "surprised"], "moods-b": ["sleepy", "shy", "confused", "doubt"],
    "animals": ["cat", "bear", "bunny", "pig", "fish", "dog", "bird"],
    "actions": ["dance", "running", "writing", "hiding", "hug"], "feelings": ["love", "sorry", "scared", "excited"],
    "topics": ["fight", "weapons", "gaming", "food", "music"],
}
LICENSE_TARGETS = {"licenses-a": ["GPL-3", "LGPL-2.1", "MPL-2.0", "GFDL-1.3"],
                   "licenses-b": ["MPL-1.1", "GPL-3", "GFDL-1.3"]}


def _text_targets() -> list[TaskSpec]:
    out = [_target(f"debian-{n}", "text", refs("debian-section", s), "Debian package short description → section: "
                   + " / ".join(s)) for n, s in DEBIAN_TARGETS.items()]
    out += [_target(f"kaomoji-{n}", "text", refs("kaomoji", c), "kaomoji → category: " + " / ".join(c))
            for n, c in KAOMOJI_TARGETS.items()]
    out += [_target("drugs-rating", "text", refs("drugs-rating", ["negative", "positive"]),
                    "drugs.com review → rating (negative 1–4 / positive 7–10); whole test file"),
            _target("drugs-birth-control", "text", refs("drugs-condition", ["Birth Control", "other"]),
                    "drugs.com review → is the condition birth control; whole test file")]
    out += [_target(n, "text", refs("licenses", c), "Debian licence text sentence → licence: " + " / ".join(c))
            for n, c in LICENSE_TARGETS.items()]
    return out


def training_pool(modality: str) -> tuple[ClassRef, ...]:
    """Every class training tasks may use (disjoint from the zoo's and the targets' classes)."""
    if modality == "image":
        glyphs = refs("glyphs", GREEK + CYRILLIC + HEBREW + SYMBOLS, TRAINING_FONTS)
        return (refs("fashion-mnist", FASHION_TRAINING) + refs("skimage", SKIMAGE_TRAINING) + refs("shapes", SHAPES)
                + glyphs)
    return (refs("bbc", TRAINING_BBC) + refs("faker-name", TRAINING_LOCALES) + refs("faker-address", TRAINING_LOCALES)
            + refs("faker-field", TRAINING_FIELDS) + refs("docstrings", TRAINING_DOCSTRINGS))


def class_group(ref: ClassRef) -> str:
    """The sampling group of a pool class: its source, and for glyphs its script block."""
    if ref.source != "glyphs":
        return ref.source
    for name, chars in (("greek", GREEK), ("cyrillic", CYRILLIC), ("hebrew", HEBREW)):
        if ref.label in chars:
            return f"glyphs-{name}"
    return "glyphs-symbols"


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


@lru_cache(maxsize=2)
def training_tasks(modality: str, num_tasks: int = NUM_TRAINING_TASKS, seed: int = 0) -> tuple[TaskSpec, ...]:
    """Class subsets of the training pool (2–10 classes; most from one group, a fifth mixing groups)."""
    pool = training_pool(modality)
    subsets = sample_training_tasks([class_group(r) for r in pool], num_tasks, seed=seed)
    return tuple(TaskSpec(f"train-{modality}-{i:03d}", modality, "train", tuple(pool[c] for c in subset),
                          "training task: " + ", ".join(pool[c].key for c in subset))
                 for i, subset in enumerate(subsets))


TARGETS = {"image": tuple(_image_targets()), "text": tuple(_text_targets())}


def all_tasks(modality: str, role: str | None = None) -> list[TaskSpec]:
    """Targets then training tasks of a modality (``role``: only "target" or only "train")."""
    tasks = list(TARGETS[modality]) + list(training_tasks(modality))
    return [t for t in tasks if role is None or t.role == role]


def get_task(name: str) -> TaskSpec:
    for modality in TARGETS:
        for t in all_tasks(modality):
            if t.name == name:
                return t
    raise KeyError(f"No SpiderBench v2 task {name!r}.")
