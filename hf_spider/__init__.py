"""hf-spider: which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?

Model Spider (Zhang et al., NeurIPS 2023) on the Hub: learned model tokens, a task token of class prototypes, and a
small attention fitness network trained to rank a zoo.

    >>> from hf_spider import SpiderSelector
    >>> selector = SpiderSelector.from_pretrained("org/spider-vision")
    >>> ranking = selector.rank("org/my-dataset", split="train", top_k=5)
    >>> model = ranking[0].load()
"""

from .bundled import bundled_selector, list_bundled
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

__version__ = "0.1.0"

__all__ = [
    "SpiderSelector", "SelectorConfig", "Ranking", "RankedModel",
    "TaskEncoder", "TaskToken", "TaskSample", "sample_task",
    "FitnessConfig", "FitnessNetwork", "TrainingConfig", "TrainingTask", "listmle_loss", "train_spider",
    "fit_model_token", "cold_start_token", "linear_cka",
    "extract_features", "Features", "ESTIMATORS", "get_estimator", "aggregate_rankings",
    "score_models", "ScoreTable", "approximate_performance",
    "bundled_selector", "list_bundled",
    "HfSpiderError", "InvalidInputError", "TokenIntegrityError", "ZooError", "ArtifactError", "MissingDependencyError",
]
