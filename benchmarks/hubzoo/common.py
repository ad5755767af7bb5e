"""Hub-zoo benchmark plumbing: task tokens from label names, model metadata features, and the evaluation splits.

Everything a fold sees is built here from the records, so the splits can be tested on their own
(``tests/test_hubzoo_selector.py``): a fold's training tasks never hold its held-out target, and in the
leave-models-out variant held-out models have NaN performance in every training task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from hf_spider.hubzoo import HubZooRecords, label_text_prompts, load_transfergraph, model_source_labels
from hf_spider.model_meta import model_features
from hf_spider.training import TrainingTask

from .labels import load_label_names

TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
LABEL_PROMPT = {"image": "a photo of {}.", "text": "{}"}  # what the bundled selectors' label_name_token applies


@lru_cache(maxsize=1)
def _encoder():
    from hf_spider.tokens import TaskEncoder

    return TaskEncoder(TEXT_ENCODER, modality="text")


_CACHE: dict[str, torch.Tensor] = {}
CACHE_PATH = Path(os.environ.get("HF_SPIDER_HUBZOO_CACHE", Path.home() / ".cache" / "hf_spider" / "hubzoo_minilm.pt"))


def encode_texts(texts: list[str]) -> torch.Tensor:
    """MiniLM embeddings ``(N, 384)`` of ``texts`` (the selectors' task encoder), memoised per text.

    The memo is kept on disk at ``CACHE_PATH`` (outside the repo; delete it to recompute): embeddings are a pure
    function of the text and the pinned encoder, so the cache only saves time.
    """
    if not _CACHE and CACHE_PATH.is_file():
        _CACHE.update(torch.load(CACHE_PATH))
    missing = sorted({t for t in texts if t not in _CACHE})
    if missing:
        _CACHE.update(zip(missing, _encoder().encode_texts(missing)))
        CACHE_PATH.parent.mkdir(parents=True, exist_ok=True)
        torch.save(_CACHE, CACHE_PATH)
    return torch.stack([_CACHE[t] for t in texts])


@dataclass
class SideData:
    """One side of the zoo, ready for training: records, task prototypes, model features."""

    records: HubZooRecords
    prototypes: dict[str, torch.Tensor]  # target -> (C, 384) label-name prototypes
    features: np.ndarray  # (M, F) metadata features (no target accuracy used)
    feature_vocabulary: list[str]

    @property
    def accuracy(self) -> np.ndarray:  # (T, M), NaN = no run
        return self.records.accuracy


def target_prototypes(names: list[str], side: str) -> torch.Tensor:
    """Label-name prototypes ``(C, 384)``: ``label_text_prompts`` sentences embedded by MiniLM."""
    return encode_texts(label_text_prompts(names, side))


def load_side(side: str) -> SideData:
    """Records of ``side`` with the prototypes of its targets and the metadata features of its models."""
    records = load_transfergraph(side)
    labels = load_label_names()
    prototypes = {t: target_prototypes(labels[t]["names"], side) for t in records.targets}
    meta = records.model_meta
    sources = [model_source_labels(row) for _, row in meta.iterrows()]
    sources = [label_text_prompts(names, side) if names else [] for names in sources]
    features, vocabulary = model_features(meta, source_labels=sources, encode_texts=encode_texts)
    return SideData(records, prototypes, features, vocabulary)


def loo_folds(targets: list[str]) -> list[tuple[str, list[str]]]:
    """Leave-one-target-out: ``[(held_out, training_targets), ...]``, held-out never among its training targets."""
    return [(t, [u for u in targets if u != t]) for t in targets]


def models_out_split(num_models: int, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """``(M,)`` bool: True for the models *seen* in training; a seeded ``fraction`` of them is held out."""
    rng = np.random.default_rng(seed)
    seen = np.ones(num_models, dtype=bool)
    seen[rng.choice(num_models, size=int(round(fraction * num_models)), replace=False)] = False
    return seen


def training_tasks(data: SideData, targets: list[str], seen: np.ndarray | None = None) -> list[TrainingTask]:
    """Training tasks of ``targets``; performance of models not ``seen`` is set to NaN (unknown)."""
    tasks = []
    for t in targets:
        performance = data.accuracy[data.records.targets.index(t)].copy()
        if seen is not None:
            performance[~seen] = np.nan
        tasks.append(TrainingTask(t, data.prototypes[t], performance))
    return tasks
