"""Transferability estimators: score how well a pre-trained model's features suit a labelled target task.

Every estimator has the signature `(features, labels, *, source_probs=None, ...) -> float`, returns a higher value
for better transferability, validates its inputs with `_checks.check_inputs`, and never mutates them. The registry
below is the single place that names them.
"""

from __future__ import annotations

from collections.abc import Callable

from hf_spider.errors import InvalidInputError
from hf_spider.estimators.aggregate import aggregate_rankings, score_zoo
from hf_spider.estimators.gbc import gbc
from hf_spider.estimators.hscore import hscore
from hf_spider.estimators.leep import leep
from hf_spider.estimators.linear_probe import linear_probe
from hf_spider.estimators.logme import logme
from hf_spider.estimators.nce import nce
from hf_spider.estimators.nleep import nleep
from hf_spider.estimators.parc import parc
from hf_spider.estimators.reg_hscore import reg_hscore
from hf_spider.estimators.sfda import sfda
from hf_spider.estimators.transrate import transrate

ESTIMATORS: dict[str, Callable[..., float]] = {
    "logme": logme,
    "leep": leep,
    "nleep": nleep,
    "nce": nce,
    "hscore": hscore,
    "reg_hscore": reg_hscore,
    "gbc": gbc,
    "sfda": sfda,
    "parc": parc,
    "transrate": transrate,
    "linear_probe": linear_probe,
}

# Estimators that read the pre-trained model's source-class probabilities instead of (or besides) its features.
_NEEDS_SOURCE_PROBS = frozenset({"leep", "nce"})


def get_estimator(name: str) -> Callable[..., float]:
    """Return the estimator registered as `name`.

    Args:
        name (`str`): a key of `ESTIMATORS`, e.g. `"logme"`.

    Returns:
        `Callable[..., float]`: `(features, labels, *, source_probs=None, ...) -> float`, higher is better.

    Raises:
        `InvalidInputError`: if `name` is not registered; the message lists the known names.

    Example:
        >>> get_estimator("logme") is logme
        True
    """
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise InvalidInputError(f"Unknown estimator {name!r}; known estimators: {sorted(ESTIMATORS)}.") from None


def needs_source_probs(name: str) -> bool:
    """Whether the estimator `name` requires `source_probs` (the source model's class probabilities).

    Raises:
        `InvalidInputError`: if `name` is not registered.
    """
    get_estimator(name)
    return name in _NEEDS_SOURCE_PROBS


__all__ = [
    "ESTIMATORS",
    "aggregate_rankings",
    "gbc",
    "get_estimator",
    "hscore",
    "leep",
    "linear_probe",
    "logme",
    "nce",
    "needs_source_probs",
    "nleep",
    "parc",
    "reg_hscore",
    "score_zoo",
    "sfda",
    "transrate",
]
