"""Transferability-estimator scores of a SpiderBench v2 task, from the zoo's cached train-split outputs.

The features are the ones the ground truth cached (``ground_truth.FEATURE_ROOT``): every zoo model's eval-mode
features and source-class probabilities on the task's train split, the 16 examples per class a selector reads.
Scores and the estimator's own seconds per model are cached under ``.work/v2/report/estimators``.
"""

from __future__ import annotations

import time

import numpy as np

from ..common import WORK, read_json, score_zoo, write_json
from .ground_truth import FEATURE_ROOT, zoo

CACHE = WORK / "v2" / "report" / "estimators"


def load_features(modality: str, task: str, model: str) -> dict[str, np.ndarray]:
    """The cached train-split outputs of a zoo model (``features``, ``labels``, maybe ``source_probs``)."""
    with np.load(FEATURE_ROOT / modality / task / f"{model}.npz") as z:
        return {k: z[k] for k in z.files}


def estimator_scores(modality: str, task: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (M,), compute seconds (M,))`` of one estimator on a task's train split, cached."""
    models, _ = zoo(modality)
    path = CACHE / modality / task / f"{name}.json"
    if path.is_file() and (rec := read_json(path))["zoo"] == models:
        return np.array(rec["scores"], dtype=np.float64), np.array(rec["seconds"])
    scores, seconds = [], []
    for m in models:
        z = load_features(modality, task, m)
        start = time.perf_counter()
        scores += score_zoo(name, [z["features"]], z["labels"], [z.get("source_probs")])
        seconds.append(time.perf_counter() - start)
    write_json(path, {"scores": [s if np.isfinite(s) else None for s in scores], "seconds": seconds, "zoo": models})
    return np.array(scores, dtype=np.float64), np.array(seconds)
