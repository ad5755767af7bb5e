"""Combine transferability scores: per-model scores for a zoo, and rank aggregation across estimators."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from hf_spider.errors import InvalidInputError

logger = logging.getLogger(__name__)

_METHODS = ("mean_rank", "borda")


def aggregate_rankings(scores: Mapping[str, np.ndarray], *, method: str = "mean_rank") -> np.ndarray:
    """Aggregate several estimators' scores of the same M models into one score per model (higher is better).

    Each estimator's scores are turned into ascending ranks `r_k(m)` in [1, M] (the best model gets M; tied models
    share the average of their ranks, `scipy.stats.rankdata(method="average")`), which makes estimators on
    different scales comparable. Then

        mean_rank(m) = 1/K Σ_k r_k(m)                       in [1, M],
        borda(m)     = Σ_k (r_k(m) − 1)                     in [0, K(M − 1)],

    i.e. Borda counts how many models each model beats, a tie counting one half. Both order the models the same
    way (borda = K · (mean_rank − 1)); they differ in scale.

    Args:
        scores (`Mapping[str, np.ndarray]`): estimator name -> finite scores of shape `(M,)`, models in the same order.
        method (`str`, defaults to `"mean_rank"`): `"mean_rank"` or `"borda"`.

    Returns:
        `np.ndarray` of shape `(M,)`: the aggregate score of each model, float64.

    Raises:
        `InvalidInputError`: for an empty mapping, an unknown `method`, arrays that are not 1-D, of different
            lengths, or not finite.

    Example:
        >>> aggregate_rankings({"logme": np.array([0.1, 0.3, 0.3]), "leep": np.array([-2.0, -1.0, -3.0])})
        array([1.5 , 2.75, 1.75])
    """
    if method not in _METHODS:
        raise InvalidInputError(f"Unknown aggregation method {method!r}; choose one of {list(_METHODS)}.")
    if not scores:
        raise InvalidInputError("`scores` is empty; pass at least one estimator's scores, e.g. {'logme': scores}.")
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in scores.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1 or any(len(shape) != 1 or shape[0] == 0 for shape in shapes.values()):
        raise InvalidInputError(
            f"Every estimator's scores must be a non-empty 1-D array over the same models, got shapes {shapes}."
        )
    bad = [name for name, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise InvalidInputError(f"Scores of {bad} contain NaN or infinite values; drop or re-run those models first.")
    ranks = np.stack([rankdata(a, method="average") for a in arrays.values()])  # (K, M), 1 = worst
    return ranks.mean(axis=0) if method == "mean_rank" else (ranks - 1.0).sum(axis=0)


def score_zoo(
    features_by_model: Mapping[str, np.ndarray],
    labels: np.ndarray,
    estimators: Sequence[str],
    *,
    source_probs_by_model: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Score every model of a zoo on one target task with several estimators.

    This produces the per-task "approximated performance" Model Spider trains on. Models are scored one at a time
    (each has its own feature matrix); the result is ready for `aggregate_rankings`.

    Args:
        features_by_model (`Mapping[str, np.ndarray]`): model id -> its features `(N, D_model)` of the same N
            target samples.
        labels (`np.ndarray` of shape `(N,)`): integer class ids of the target samples.
        estimators (`Sequence[str]`): registry names, e.g. `["logme", "leep"]` (see `ESTIMATORS`).
        source_probs_by_model (`Mapping[str, np.ndarray]`, *optional*): model id -> source-class probabilities
            `(N, Cs_model)`; required for the models when an estimator needs them (`needs_source_probs`).

    Returns:
        `dict[str, np.ndarray]`: estimator name -> scores of shape `(M,)`, models in the iteration order of
        `features_by_model`.

    Raises:
        `InvalidInputError`: for an unknown estimator, an empty zoo, missing source probabilities, or bad inputs.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 20)
        >>> zoo = {"good": rng.normal(size=(40, 4)) + 3 * y[:, None], "bad": rng.normal(size=(40, 4))}
        >>> scores = score_zoo(zoo, y, ["logme", "hscore"])
        >>> aggregate_rankings(scores)
        array([2., 1.])
    """
    from hf_spider.estimators import get_estimator, needs_source_probs  # the registry imports this module

    functions = {name: get_estimator(name) for name in estimators}
    if not features_by_model or not functions:
        raise InvalidInputError("`score_zoo` needs at least one model in `features_by_model` and one estimator.")
    probs_by_model = source_probs_by_model or {}
    scores = {name: np.empty(len(features_by_model)) for name in functions}
    for index, (model_id, features) in enumerate(features_by_model.items()):  # per model: features differ in D
        for name, function in functions.items():
            probs = probs_by_model.get(model_id)
            if needs_source_probs(name) and probs is None:
                raise InvalidInputError(
                    f"Estimator {name!r} needs source-class probabilities, but `source_probs_by_model` has none for "
                    f"model {model_id!r}; pass them or drop {name!r} from `estimators`."
                )
            scores[name][index] = function(features, labels, source_probs=probs)
            logger.debug("%s on %s: %.6g", name, model_id, scores[name][index])
    return scores
