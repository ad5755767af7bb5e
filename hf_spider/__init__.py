"""hf-spider: which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?

Model Spider (Zhang et al., NeurIPS 2023) on the Hub: learned model tokens, a task token of class prototypes, and a
small attention fitness network trained to rank a zoo.

    >>> from hf_spider import SpiderSelector
    >>> selector = SpiderSelector.from_pretrained("org/spider-vision")
    >>> ranking = selector.rank("org/my-dataset", split="train", top_k=5)
    >>> model = ranking[0].load()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the submodule that defines it. Imported on first use (PEP 562), so `import hf_spider` and
# `hf-spider --help` do not pay for torch, transformers and datasets.
_EXPORTS = {
    "bundled_selector": "bundled", "list_bundled": "bundled",
    "CascadeConfig": "cascade", "fit_cascade": "cascade",
    "cold_start_token": "cold_start", "linear_cka": "cold_start",
    "SelectorConfig": "config",
    "TaskSample": "data", "sample_task": "data",
    "ArtifactError": "errors", "HfSpiderError": "errors", "InvalidInputError": "errors",
    "MissingDependencyError": "errors", "TokenIntegrityError": "errors", "ZooError": "errors",
    "ESTIMATORS": "estimators", "aggregate_rankings": "estimators", "get_estimator": "estimators",
    "Features": "features", "extract_features": "features",
    "FitnessConfig": "fitness", "FitnessNetwork": "fitness",
    "RankedModel": "ranking", "Ranking": "ranking",
    "ScoreTable": "scoring", "approximate_performance": "scoring", "score_models": "scoring",
    "SpiderSelector": "selector",
    "TaskEncoder": "tokens", "TaskToken": "tokens",
    "TrainingConfig": "training", "TrainingTask": "training", "fit_model_token": "training",
    "listmle_loss": "training", "train_spider": "training",
}

if TYPE_CHECKING:  # static type checkers and IDEs see the eager imports
    from .bundled import bundled_selector, list_bundled
    from .cascade import CascadeConfig, fit_cascade
    from .cold_start import cold_start_token, linear_cka
    from .config import SelectorConfig
    from .data import TaskSample, sample_task
    from .errors import (
        ArtifactError,
        HfSpiderError,
        InvalidInputError,
        MissingDependencyError,
        TokenIntegrityError,
        ZooError,
    )
    from .estimators import ESTIMATORS, aggregate_rankings, get_estimator
    from .features import Features, extract_features
    from .fitness import FitnessConfig, FitnessNetwork
    from .ranking import RankedModel, Ranking
    from .scoring import ScoreTable, approximate_performance, score_models
    from .selector import SpiderSelector
    from .tokens import TaskEncoder, TaskToken
    from .training import TrainingConfig, TrainingTask, fit_model_token, listmle_loss, train_spider


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_spider' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # cached: later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "SpiderSelector", "SelectorConfig", "Ranking", "RankedModel",
    "TaskEncoder", "TaskToken", "TaskSample", "sample_task",
    "FitnessConfig", "FitnessNetwork", "TrainingConfig", "TrainingTask", "listmle_loss", "train_spider",
    "fit_model_token", "cold_start_token", "linear_cka",
    "extract_features", "Features", "ESTIMATORS", "get_estimator", "aggregate_rankings",
    "score_models", "ScoreTable", "approximate_performance", "CascadeConfig", "fit_cascade",
    "bundled_selector", "list_bundled",
    "HfSpiderError", "InvalidInputError", "TokenIntegrityError", "ZooError", "ArtifactError", "MissingDependencyError",
]
