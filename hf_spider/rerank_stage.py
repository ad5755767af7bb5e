"""The re-ranking stages of [`SpiderSelector`]: the token ranking's top k models run on the task sample.

Two ways to use their forward passes: PTM prototypes read by the fitness network (``rank(..., rerank=k)``), or a
transferability estimator fused with the token score (``rank(..., rerank=k, estimator=name)``, `hf_spider.cascade`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import hub
from .data import TaskSample
from .errors import ArtifactError, InvalidInputError, ZooError
from .ranking import Ranking
from .tokens import standardized_prototypes

if TYPE_CHECKING:
    from .features import Features


class RerankMixin:
    """Forward passes of the top zoo models, for [`SpiderSelector.rank`]."""

    zoo: list[hub.ZooEntry]

    def _rank_cascade(self, dataset: Any, estimator: str, rerank: int | None, *, top_k: int | None,
                      dataset_name: str, start: float, max_parameters: int | None, verbose: bool,
                      **sample_kwargs: Any) -> Ranking:
        """The estimator cascade (``hf_spider.cascade``): the token ranking's top k run on the sample, and are
        re-ordered by their token score fused with the estimator's score."""
        from .cascade import UNLEARNED_WEIGHT, CascadeConfig, fuse, top_k_indices
        from .estimators import get_estimator, needs_source_probs

        estimate = get_estimator(estimator)  # an unknown name fails before any data is read
        cascade = CascadeConfig.from_dict(self.config.cascade) if self.config.cascade else None
        k = rerank if rerank is not None else cascade.default_k if cascade else None
        if k is None:
            raise InvalidInputError(f"This selector has learned no cascade depth: pass rerank=K (CLI: --rerank K) to "
                                    f"run the top K models and re-order them with {estimator}.")
        if k < 1:
            raise InvalidInputError(f"An estimator re-orders the top `rerank` models, so rerank must be ≥ 1 with it, "
                                    f"got {k}. Drop the estimator for the token-only ranking.")
        sample = self._sample(dataset, **sample_kwargs)
        task = self._sample_token(sample, verbose=verbose)
        base = self.score(task)
        top = [int(i) for i in top_k_indices(base, k)]
        scores = np.full(len(base), np.nan)
        for i in top:  # k forward passes: each candidate is its own network
            out = self._zoo_features(i, sample, with_source_probs=needs_source_probs(estimator), verbose=verbose)
            scores[i] = estimate(out.features, sample.labels, source_probs=out.source_probs)
        if not np.isfinite(scores[top]).all():
            bad = [self.zoo[i].model_id for i in top if not np.isfinite(scores[i])]
            raise InvalidInputError(f"{estimator} gave a non-finite score for {bad[:5]} on this sample; try another "
                                    "estimator, or a larger sample (more rows per class).")
        learned = cascade is not None and cascade.estimator == estimator
        weight = cascade.weight_for(k) if learned else UNLEARNED_WEIGHT
        notes = [f"the top {len(top)} by token score were re-ordered by the token score fused with {estimator} "
                 f"(estimator weight {weight:.2f})."]
        if not learned:
            notes.append(f"the fusion weight was not learned for the estimator {estimator} (this selector's cascade: "
                         f"{cascade.estimator if cascade else 'none'}); {UNLEARNED_WEIGHT} is a guess.")
        return self._ranking(fuse(base, scores, k, weight), task, top_k=top_k, dataset_name=dataset_name,
                             start=start, reranked=set(top), max_parameters=max_parameters, notes=notes,
                             estimator_scores={i: float(scores[i]) for i in top})

    def _ptm_prototypes(self, index: int, sample: TaskSample, *, verbose: bool) -> torch.Tensor:
        """Class prototypes of the task in zoo model ``index``'s own feature space (cached). ``(C, w)``."""
        features = self._zoo_features(index, sample, verbose=verbose).features
        return standardized_prototypes(torch.as_tensor(features), sample.labels, sample.num_classes)

    def _zoo_features(self, index: int, sample: TaskSample, *, with_source_probs: bool = False,
                      verbose: bool) -> Features:
        """Zoo model ``index``'s features of the sample (cached), for the re-ranking stages."""
        from .features import extract_features

        entry = self.zoo[index]
        try:
            return extract_features(entry.model_id, sample, revision=entry.revision,
                                    with_source_probs=with_source_probs, verbose=verbose)
        except (OSError, hub.HubUnreachableError, ArtifactError) as err:  # cannot load / not cached / offline
            raise ZooError(
                f"Re-ranking runs the top models, and {entry.model_id!r} could not be loaded ({err}). Rank with "
                "rerank=0 and no estimator (CLI: --rerank 0) for the token-only ranking, or make the model "
                "reachable (network, a pre-filled HF cache, or a local folder)."
            ) from err
