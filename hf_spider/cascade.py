"""The estimator cascade: the token score picks k candidates, a transferability estimator re-orders them.

Stage one ranks the whole zoo from tokens (no forward pass); stage two runs only the top k models on the task
sample and scores them with an estimator such as LogME. The two scores live on unrelated scales, so inside the top k
both are z-scored over the k candidates and mixed by one weight, learned per k on training tasks whose ground truth
was measured (`fit_cascade`). The k candidates are placed above every other model, which keep their token order,
as in the paper's two-stage scheme.

Everything here is numpy over ``(T, M)`` arrays (T tasks, M models): the benchmark fits on precomputed scores, and
the selector calls `fuse` with ``T = 1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ArtifactError, InvalidInputError

DEFAULT_K_TOLERANCE = 0.005  # mean tau a deeper default k must gain (~ the spread between training seeds)
UNLEARNED_WEIGHT = 0.5  # estimator weight when the selector learned none for the estimator asked for


def top_k_indices(token_scores: np.ndarray, k: int) -> np.ndarray:
    """The k best models of each task by token score, best first; ties go to the lower model index.

    Shape:
        token_scores (T, M) -> (T, min(k, M)) int indices.
    """
    order = np.argsort(-np.asarray(token_scores, dtype=np.float64), axis=-1, kind="stable")
    return order[..., : max(0, min(k, order.shape[-1]))]


def fuse(token_scores: np.ndarray, estimator_scores: np.ndarray, k: int, weight: float) -> np.ndarray:
    """Final scores of a cascade: each task's top k by token score re-ordered by the fused score, above the rest.

    Inside the top k, both scores are z-scored over the k candidates (a constant score becomes zeros) and
    ``fused = (1 - weight) * z_token + weight * z_estimator``. The k candidates get ``fused`` shifted above every other
    model, as ``floor + k`` (best) down to ``floor + 1`` with ``floor`` the best score outside the top k; the others
    keep their token scores (so their order). Estimator scores are read only at the top k (other entries may be NaN).
    Ties are deterministic: the top k is chosen by `top_k_indices` (ties: lower index), and candidates with equal
    fused scores keep their token order, so the output itself has no ties among the candidates.

    Args:
        token_scores: ``(T, M)`` or ``(M,)`` stage-one scores, finite.
        estimator_scores: Same shape; finite at each task's top k.
        k: Candidates per task; ``k >= M`` re-orders every model, ``k <= 1`` returns the token scores unchanged.
        weight: Estimator weight in [0, 1]: 0 keeps the token order, 1 orders the top k by the estimator alone.

    Returns:
        float64 scores of the input's shape; sort them descending for the cascade's ranking.

    Raises:
        InvalidInputError: mismatched shapes, non-finite scores where they are read, a weight outside [0, 1], a
            negative or non-integer k.

    Example:
        >>> fuse(np.array([3.0, 2.0, 1.0]), np.array([0.0, 5.0, np.nan]), k=2, weight=1.0).argsort()[::-1].tolist()
        [1, 0, 2]
    """
    token = np.asarray(token_scores, dtype=np.float64)
    est = np.asarray(estimator_scores, dtype=np.float64)
    _check_k(k)
    if not (isinstance(weight, (int, float, np.floating)) and 0.0 <= weight <= 1.0):
        raise InvalidInputError(f"weight must be a number in [0, 1], got {weight!r:.40}.")
    if token.ndim not in (1, 2) or token.shape != est.shape or token.shape[-1] == 0:
        raise InvalidInputError(f"token_scores and estimator_scores must both be (T, M) or (M,) with M ≥ 1, got "
                                f"{token.shape} and {est.shape}.")
    if not np.isfinite(token).all():
        raise InvalidInputError("token_scores hold NaN or inf; the token stage must score every model.")
    if k <= 1:
        return token.copy()
    single = token.ndim == 1
    token2, est2 = np.atleast_2d(token), np.atleast_2d(est)
    top = top_k_indices(token2, k)  # (T, k)
    tok_top = np.take_along_axis(token2, top, axis=1)
    est_top = np.take_along_axis(est2, top, axis=1)
    bad = ~np.isfinite(est_top)
    if bad.any():
        task, slot = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"estimator_scores must be finite at each task's top {k} by token score; task {task}, model "
            f"{top[task, slot]} holds {est_top[task, slot]}. Re-run the estimator on that model or drop the task.")
    fused = (1.0 - weight) * _zscore(tok_top) + weight * _zscore(est_top)  # (T, k), columns in token order
    order = np.argsort(-fused, axis=1, kind="stable")  # stable: equal fused scores keep their token order
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.arange(order.shape[1])[None, :].repeat(len(order), 0), axis=1)
    out = token2.copy()
    rest = np.ones_like(token2, dtype=bool)
    np.put_along_axis(rest, top, False, axis=1)
    floor = np.where(rest, token2, -np.inf).max(axis=1)  # best model outside the top k; -inf when k >= M
    floor = np.where(np.isfinite(floor), floor, 0.0)[:, None]
    np.put_along_axis(out, top, floor + (order.shape[1] - place), axis=1)  # floor + k for the best candidate
    return out[0] if single else out


def _zscore(x: np.ndarray) -> np.ndarray:
    """Row-wise z-scores ``(T, k)``; a constant row becomes zeros."""
    std = x.std(axis=1, keepdims=True)
    return np.where(std > 0, (x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0), 0.0)


def _check_k(k: Any) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise InvalidInputError(f"k must be a non-negative integer, got {k!r:.40}.")


@dataclass
class CascadeConfig:
    """A selector's learned estimator cascade, saved in ``config.json["cascade"]``.

    Attributes:
        estimator: Name in ``hf_spider.estimators.ESTIMATORS`` the weights were learned for.
        default_k: Candidates re-ranked when the caller gives no ``rerank``; a key of ``weights``.
        weights: Estimator weight in [0, 1] learned for each k.
        trained_on: What the weights were fitted on (task count, mean tau by k), for the card and the reader.
    """

    estimator: str
    default_k: int
    weights: dict[int, float]
    trained_on: dict[str, Any] = field(default_factory=dict)

    def weight_for(self, k: int) -> float:
        """The weight learned for ``k``, else for the nearest learned k (the smaller one on a tie)."""
        nearest = min(self.weights, key=lambda learned: (abs(learned - k), learned))
        return self.weights[nearest]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (k keys as strings, as JSON writes them); validated first."""
        type(self).from_dict({"estimator": self.estimator, "default_k": self.default_k, "weights": self.weights,
                              "trained_on": self.trained_on})
        return {"estimator": self.estimator, "default_k": int(self.default_k),
                "weights": {str(int(k)): float(w) for k, w in sorted(self.weights.items())},
                "trained_on": dict(self.trained_on)}

    @classmethod
    def from_dict(cls, data: Any) -> CascadeConfig:
        """Validate ``config.json["cascade"]``.

        Raises:
            ArtifactError: unknown or missing fields, an unknown estimator, a k that is not a positive integer, a
                weight outside [0, 1], a ``default_k`` without a learned weight.
        """
        from .estimators import ESTIMATORS

        where = "config.json: cascade"
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where} must be a JSON object, got {type(data).__name__}.")
        unknown = set(data) - set(cls.__dataclass_fields__)
        missing = {"estimator", "default_k", "weights"} - set(data)
        if unknown or missing:
            raise ArtifactError(f"{where} has unknown fields {sorted(unknown)} / lacks {sorted(missing)}; it needs "
                                "estimator, default_k, weights (and optionally trained_on).")
        estimator = data["estimator"]
        if not isinstance(estimator, str) or estimator not in ESTIMATORS:
            raise ArtifactError(f"{where}: unknown estimator {estimator!r:.40}; known: {sorted(ESTIMATORS)}.")
        weights_in = data["weights"]
        if not isinstance(weights_in, Mapping) or not weights_in:
            raise ArtifactError(f"{where}: `weights` must be a non-empty object mapping k to a weight in [0, 1].")
        weights = {_parse_k(k, where): _parse_weight(w, k, where) for k, w in weights_in.items()}
        default_k = data["default_k"]
        if not isinstance(default_k, int) or isinstance(default_k, bool) or default_k not in weights:
            raise ArtifactError(f"{where}: `default_k` {default_k!r:.40} must be one of the learned k "
                                f"{sorted(weights)}.")
        trained_on = data.get("trained_on", {})
        if not isinstance(trained_on, Mapping):
            raise ArtifactError(f"{where}: `trained_on` must be a JSON object, got {type(trained_on).__name__}.")
        return cls(estimator, default_k, weights, dict(trained_on))


def _parse_k(key: Any, where: str) -> int:
    """A weights key: an int, or the decimal string JSON turns it into."""
    if isinstance(key, str) and key.isascii() and key.isdigit():
        key = int(key)
    if not isinstance(key, int) or isinstance(key, bool) or not 1 <= key <= 1_000_000:
        raise ArtifactError(f"{where}: weights key {key!r:.40} must be a positive integer k.")
    return key


def _parse_weight(value: Any, k: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ArtifactError(f"{where}: the weight for k={k} must be a number in [0, 1], got {value!r:.40}.")
    return float(value)


def fit_cascade(
    token_scores: np.ndarray,
    estimator_scores: np.ndarray,
    ground_truth: np.ndarray,
    *,
    estimator: str,
    ks: Iterable[int] | None = None,
    grid: Iterable[float] = np.linspace(0.0, 1.0, 21),
    default_k: int | None = None,
) -> tuple[CascadeConfig, dict[str, Any]]:
    """Learn the estimator weight of each k on training tasks with measured ground truth.

    For each k, the weight of ``grid`` whose fused scores (`fuse`) give the highest mean
    ``hf_spider.evaluation.weighted_tau(ground_truth, fused)`` over the tasks wins; ties go to the smaller weight
    (the cheaper-to-trust token score). Tasks whose tau is NaN (fewer than two known ground-truth values) are left out
    of the means.

    Args:
        token_scores: ``(T, M)`` token-stage scores of the training tasks.
        estimator_scores: ``(T, M)`` estimator scores, finite at least at each task's top ``max(ks)`` by token score.
        ground_truth: ``(T, M)`` measured performance (NaN = unknown).
        estimator: Name of the estimator the scores came from (recorded in the config).
        ks: Candidate counts to fit (default: every k in 1..M; k = 1 is the token ranking, the baseline).
        grid: Weights tried, each in [0, 1].
        default_k: The k a selector uses when the caller gives none, chosen by the caller (e.g. on validation tasks);
            default: the smallest k whose best mean tau is within 0.005 of the best over all k.

    Returns:
        ``(config, curve)``: the `CascadeConfig`, and ``curve`` with ``"ks"`` (list), ``"weights"`` (the sorted grid),
        ``"mean_tau"`` (array ``(len(ks), len(weights))``, row ``i`` for ``ks[i]``), ``"best_weight"`` and
        ``"best_tau"`` (dicts k -> value), ``"token_tau"`` (mean tau of the token scores alone) and ``"default_k"``.

    Raises:
        InvalidInputError: shapes that differ, an unknown estimator, an empty or out-of-range grid, ks outside
            1..M, a ``default_k`` not among ``ks``, no task with a defined tau.
    """
    from .estimators import get_estimator
    from .evaluation import weighted_tau

    get_estimator(estimator)  # an unknown name fails here, listing the known ones
    token = np.asarray(token_scores, dtype=np.float64)
    est = np.asarray(estimator_scores, dtype=np.float64)
    gt = np.asarray(ground_truth, dtype=np.float64)
    if token.ndim != 2 or token.shape != est.shape or token.shape != gt.shape or 0 in token.shape:
        raise InvalidInputError(f"token_scores, estimator_scores and ground_truth must all be (T, M) with T, M ≥ 1, "
                                f"got {token.shape}, {est.shape} and {gt.shape}.")
    num_models = token.shape[1]
    ks = sorted({int(k) for k in (range(1, num_models + 1) if ks is None else ks)})
    if not ks or ks[0] < 1 or ks[-1] > num_models:
        raise InvalidInputError(f"ks must be integers in 1..{num_models} (the zoo size), got {ks}.")
    weights = np.unique(np.round(np.asarray(list(grid), dtype=np.float64), 12))  # linspace's 0.9500000000000001
    if not len(weights) or not (np.isfinite(weights).all() and weights[0] >= 0 and weights[-1] <= 1):
        raise InvalidInputError(f"grid must hold weights in [0, 1], got {weights.tolist()}.")
    if default_k is not None and default_k not in ks:
        raise InvalidInputError(f"default_k={default_k} must be one of ks {ks}.")

    def mean_tau(scores: np.ndarray) -> float:
        # weightedtau is a 1-D scipy routine: one call per task (fusion itself is batched over tasks)
        taus = np.array([weighted_tau(g, s) for g, s in zip(gt, scores)])
        if np.isnan(taus).all():
            raise InvalidInputError("No training task has two models with known ground truth; tau is undefined.")
        return float(np.nanmean(taus))

    token_tau = mean_tau(token)
    table = np.array([[token_tau if k == 1 else mean_tau(fuse(token, est, k, float(w))) for w in weights]
                      for k in ks])  # (K, W); k = 1 is the token ranking whatever the weight
    best_col = (table >= table.max(axis=1, keepdims=True) - 1e-12).argmax(axis=1)  # first = smallest weight
    best_weight = {k: float(weights[c]) for k, c in zip(ks, best_col)}
    best_tau = {k: float(table[i, c]) for i, (k, c) in enumerate(zip(ks, best_col))}
    if default_k is None:
        top = max(best_tau.values())
        default_k = next(k for k in ks if best_tau[k] >= top - DEFAULT_K_TOLERANCE)
    config = CascadeConfig(estimator, int(default_k), best_weight, trained_on={
        "tasks": int(token.shape[0]), "models": int(num_models), "token_weighted_tau": round(token_tau, 4),
        "weighted_tau_by_k": {str(k): round(t, 4) for k, t in best_tau.items()}})
    curve = {"ks": ks, "weights": weights.tolist(), "mean_tau": table, "best_weight": best_weight,
             "best_tau": best_tau, "token_tau": token_tau, "default_k": int(default_k)}
    return config, curve
