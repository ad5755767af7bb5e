"""The re-ranking stage on SpiderBench targets: re-score the token-only top-k with the models' own class prototypes.

The features are the ones cached by ``ground_truth.py`` (each zoo model's eval-mode features of the target's train
split, the same images the task token encodes), so a depth-k re-rank costs the selector's own seconds plus the
*measured* forward seconds of exactly the k models it re-scores, plus the re-scoring itself.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .build_zoo import ZOO
from .common import FEATURE_DIR, ZOO_DIR
from .ground_truth import target_images
from .train_selector import TASK_ENCODER


def target_prototypes(spec) -> torch.Tensor:
    """The task token's prototypes of a target, from raw train-split images: encoder load + forward. ``(C, 1280)``."""
    from PIL import Image

    from hf_spider.tokens import TaskEncoder, class_prototypes

    x, y = target_images(spec)["train"]
    encoder = TaskEncoder(str(ZOO_DIR / TASK_ENCODER), modality="image", batch_size=64)
    feats = encoder.extractor([Image.fromarray(img) for img in x], verbose=False)  # (N, 1280)
    return class_prototypes(feats, y, len(spec.classes))


def target_ptm(spec) -> tuple[dict[int, torch.Tensor], np.ndarray]:
    """Zoo index → ``(C, width)`` class prototypes of the target's train split, and each model's forward seconds."""
    from hf_spider.tokens import standardized_prototypes

    ptm, seconds = {}, []
    for m, name in enumerate(ZOO):
        z = np.load(FEATURE_DIR / "targets" / spec.name / f"{name}.npz")
        ptm[m] = standardized_prototypes(torch.from_numpy(z["features"]), z["labels"], len(spec.classes))
        seconds.append(float(z["seconds"]))
    return ptm, np.array(seconds)


def rerank_scores(selector, prototypes: torch.Tensor, base: np.ndarray, ptm: dict[int, torch.Tensor],
                  forward_seconds: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Depth-``k`` re-ranked scores of the zoo and the seconds it adds (k forward passes + re-scoring)."""
    from hf_spider.training import TrainingTask, rerank_task

    if k == 0:
        return base, 0.0
    start = time.perf_counter()
    task = TrainingTask("target", prototypes, torch.zeros(len(ZOO)), ptm_prototypes=ptm)
    scores = rerank_task(selector.fitness, selector.model_tokens, task, torch.as_tensor(base), k).numpy()
    top = np.argsort(-base, kind="stable")[:k]
    return scores, float(forward_seconds[top].sum()) + time.perf_counter() - start
