"""Train / val / test examples of a v2 task, drawn per class and cached once per task under ``.work/v2/tasks``.

Every class gives 16 train and 8 val examples and between 50 and 100 test examples (all it has left, up to 100),
except sources with their own test file (``text_sources.HAS_TEST_FILE``), whose test file is used whole and whose
train / val examples come from their train file. A class with fewer than 50 test examples is an error. A text that
two classes of a task share is dropped from the task (rare: a name two Faker locales both produce).
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..common import WORK, cached_image_splits
from .tasks import TaskSpec

TRAIN, VAL, MAX_TEST, MIN_TEST = 16, 8, 100, 50
TASK_DIR = WORK / "v2" / "tasks"


def _class_splits(spec: TaskSpec, ref) -> dict[str, list]:
    if spec.modality == "text":
        from .text_sources import HAS_TEST_FILE, _ordered, class_texts, drug_split

        if ref.source in HAS_TEST_FILE:
            train = _ordered(drug_split(ref, "train"), ref, TRAIN + VAL)
            return {"train": train[:TRAIN], "val": train[TRAIN:], "test": drug_split(ref, "test")}
        examples = class_texts(ref, TRAIN + VAL + MAX_TEST)
    else:
        from .image_sources import class_images

        examples = class_images(ref, TRAIN + VAL + MAX_TEST)
    if len(examples) < TRAIN + VAL + MIN_TEST:
        raise ValueError(f"{spec.name}: class {ref.key} has {len(examples)} examples, "
                         f"{TRAIN + VAL + MIN_TEST} needed")
    return {"train": examples[:TRAIN], "val": examples[TRAIN:TRAIN + VAL], "test": examples[TRAIN + VAL:]}


def build_splits(spec: TaskSpec) -> dict[str, tuple]:
    """``{split: (examples, labels)}``; images as ``(N, 64, 64, 3)`` uint8, texts as lists of strings."""
    per_class = [_class_splits(spec, ref) for ref in spec.classes]
    if spec.modality == "text":  # a text found in two classes of the task (e.g. a name two locales share) is dropped
        owners: dict[str, set[int]] = {}
        for c, p in enumerate(per_class):
            for split in p.values():
                for text in split:
                    owners.setdefault(text, set()).add(c)
        shared = {t for t, cs in owners.items() if len(cs) > 1}
        per_class = [{s: [t for t in v if t not in shared] for s, v in p.items()} for p in per_class]
    out = {}
    for split in ("train", "val", "test"):
        y = np.concatenate([np.full(len(p[split]), c) for c, p in enumerate(per_class)]).astype(np.int64)
        if spec.modality == "text":
            out[split] = ([t for p in per_class for t in p[split]], y)
        else:
            out[split] = (np.concatenate([np.asarray(p[split]) for p in per_class]), y)
    return out


def task_splits(spec: TaskSpec) -> dict[str, tuple]:
    """``build_splits``, cached (``.npz`` for images, ``.json`` for texts), written atomically."""
    TASK_DIR.mkdir(parents=True, exist_ok=True)
    if spec.modality == "text":
        path = TASK_DIR / f"{spec.name}.json"
        if not path.is_file():
            splits = build_splits(spec)
            tmp = path.with_suffix(f".tmp{os.getpid()}")  # parallel shards may build the same task
            tmp.write_text(json.dumps({s: {"texts": t, "labels": y.tolist()} for s, (t, y) in splits.items()}))
            tmp.replace(path)
        raw = json.loads(path.read_text())
        return {s: (v["texts"], np.array(v["labels"], dtype=np.int64)) for s, v in raw.items()}
    return cached_image_splits(TASK_DIR / f"{spec.name}.npz", lambda: build_splits(spec))
