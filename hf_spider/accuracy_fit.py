"""Fit an [`AccuracyModel`] from measured accuracies and leave-one-target-out (LOTO) ranking scores, and measure it.

Inputs, for ``T`` training tasks (targets) and ``M`` zoo models:

* ``embeddings`` ``(T, d)``: each target's mean label embedding (``accuracy.task_embedding`` of its prototypes);
* ``accuracy`` ``(T, M)``: measured fine-tuning accuracy, NaN where a model was not run;
* ``percentiles`` ``(T, M)``: each model's rank percentile (0 = first) for target ``t`` under a selector that never
  saw ``t`` (``rank_percentiles`` of its LOTO scores).

Nothing is tuned on the targets: the task level averages fixed temperatures, the offset curve is a monotone fit,
and the interval is the quantiles of leave-one-target-out residuals of the same procedure. ``nested_loto`` repeats
the whole fit without each target in turn and counts coverage and error on it: the numbers a card may state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .accuracy import AccuracyModel, ModelRecord, interval_bounds, normalise_label, task_levels
from .errors import InvalidInputError

# The task level averages softmax(similarity / T)-weighted levels over these T (None: plain mean), a fixed hedge:
# choosing one T by an inner leave-one-out on 9 targets flipped between extremes from fold to fold, and measured worse
# (during development, Hub image zoo with zoo_mean scores: nested LOTO MAE 0.158 vs 0.129 for this average).
TEMPERATURES: tuple[float | None, ...] = (None, 0.2, 0.1, 0.05, 0.02)
NUM_BINS = 20  # rank-percentile bins of the offset curve (~9 targets x 9 models per bin on the Hub zoos)
# Interval quantiles per rank quartile: the bottom ranks hold the diverged runs. On the Hub image zoo (zoo_mean
# scores, nested LOTO) this narrowed the top decile's 80 % interval from 0.43 to 0.31 wide at the same pooled
# coverage (77 %); on the text zoo it changed nothing.
NUM_INTERVAL_BANDS = 4


def rank_percentiles(scores: np.ndarray) -> np.ndarray:
    """``(T, M)`` rank percentile of every model per row of ``scores`` (0 = highest score, 1 = lowest; NaN last;
    ties keep zoo order, as ``SpiderSelector.rank`` does)."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    order = np.argsort(-np.where(np.isfinite(scores), scores, -np.inf), axis=1, kind="stable")
    out = np.empty_like(scores)
    np.put_along_axis(out, order, np.arange(scores.shape[1], dtype=np.float64)[None, :], axis=1)
    return out / max(scores.shape[1] - 1, 1)


@dataclass(frozen=True)
class _Core:
    embeddings: np.ndarray  # (T, d)
    levels: np.ndarray  # (T,)
    knots: np.ndarray  # (K,)
    offsets: np.ndarray  # (K,)


def _fit_core(E: np.ndarray, A: np.ndarray, P: np.ndarray, rank_curve: bool) -> _Core:
    from sklearn.isotonic import IsotonicRegression

    levels = np.nanmedian(A, axis=1)
    offsets = A - levels[:, None]
    known = np.isfinite(offsets)
    x, y = P[known], offsets[known]
    bins = np.minimum((x * NUM_BINS).astype(int), NUM_BINS - 1)
    centres = (np.arange(NUM_BINS) + 0.5) / NUM_BINS
    counts = np.bincount(bins, minlength=NUM_BINS)
    filled = counts > 0
    # Medians, not means: diverged runs sit near chance and would drag a mean far below the typical model.
    medians = np.array([np.median(y[bins == b]) for b in np.flatnonzero(filled)])  # <= NUM_BINS bins
    if rank_curve:
        curve = IsotonicRegression(increasing=False).fit(centres[filled], medians, sample_weight=counts[filled])
        fitted = curve.predict(centres[filled])
    else:  # the "task level only" baseline
        fitted = np.zeros(int(filled.sum()))
    knots = np.concatenate([[0.0], centres[filled], [1.0]])
    values = np.concatenate([[fitted[0]], fitted, [fitted[-1]]])
    return _Core(E, levels, knots, values)


def _predict_core(core: _Core, E_new: np.ndarray, P_new: np.ndarray) -> np.ndarray:
    """``(n, M)`` predicted accuracy for new tasks ``E_new (n, d)`` at rank percentiles ``P_new (n, M)``."""
    level = task_levels(E_new @ core.embeddings.T, core.levels, TEMPERATURES)
    return np.clip(level[:, None] + np.interp(P_new, core.knots, core.offsets), 0.0, 1.0)


def _loo_residuals(E, A, P, rank_curve: bool) -> np.ndarray:
    """``(T, M)`` residuals ``accuracy - prediction`` of each target, fitted on the other targets."""
    out = np.full(A.shape, np.nan)
    for t in range(len(A)):  # one fit per target (T ~ 10)
        rest = np.arange(len(A)) != t
        out[t] = A[t] - _predict_core(_fit_core(E[rest], A[rest], P[rest], rank_curve), E[t:t + 1], P[t:t + 1])[0]
    return out


def _fit_all(E, A, P, level: float, rank_curve: bool) -> tuple[_Core, np.ndarray]:
    """The core fitted on all given targets, and its ``(B, 2)`` interval from the LOO residuals of the same
    procedure, one residual-quantile pair per rank band."""
    if len(A) < 3:
        raise InvalidInputError(f"Calibrating predicted accuracy needs at least 3 training targets, got {len(A)}.")
    residuals = _loo_residuals(E, A, P, rank_curve)
    known = np.isfinite(residuals)
    band = np.minimum((P * NUM_INTERVAL_BANDS).astype(int), NUM_INTERVAL_BANDS - 1)
    interval = np.zeros((NUM_INTERVAL_BANDS, 2))
    for b in range(NUM_INTERVAL_BANDS):  # 4 bands
        r = residuals[known & (band == b)]
        if len(r):
            low, high = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
            interval[b] = min(float(low), 0.0), max(float(high), 0.0)
    return _fit_core(E, A, P, rank_curve), interval


def _prepare(embeddings, accuracy, percentiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float arrays, embeddings scaled to unit length (similarities are cosines)."""
    E, A, P = (np.asarray(x, dtype=np.float64) for x in (embeddings, accuracy, percentiles))
    if E.ndim != 2 or A.ndim != 2 or A.shape != P.shape or len(E) != len(A):
        raise InvalidInputError(f"embeddings (T, d), accuracy (T, M) and percentiles (T, M) disagree: "
                                f"{E.shape}, {A.shape}, {P.shape}.")
    if not np.isfinite(E).all() or not np.isfinite(P).all():
        raise InvalidInputError("embeddings and percentiles must be finite (NaN only in accuracy, for no run).")
    if np.any(~np.isfinite(A).any(axis=1)) or np.nanmin(A) < 0 or np.nanmax(A) > 1:
        raise InvalidInputError("Every target needs a measured accuracy, and accuracies must lie in [0, 1].")
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12), A, P


def nested_loto(embeddings: np.ndarray, accuracy: np.ndarray, percentiles: np.ndarray, *, level: float = 0.8,
                rank_curve: bool = True) -> dict[str, Any]:
    """Measure the calibration honestly: for each target, fit everything on the others, predict it, count.

    Returns:
        ``coverage`` (pooled over held-out (target, model) pairs), ``coverage_min``/``coverage_max`` (per target),
        ``mae`` (pooled absolute error), ``per_target`` {index: (mae, coverage, n)}.
    """
    E, A, P = _prepare(embeddings, accuracy, percentiles)
    errors, covered, per_target = [], [], {}
    for t in range(len(A)):  # T outer folds
        rest = np.arange(len(A)) != t
        core, interval = _fit_all(E[rest], A[rest], P[rest], level, rank_curve)
        pred = _predict_core(core, E[t:t + 1], P[t:t + 1])[0]
        known = np.isfinite(A[t])
        lo, hi = interval_bounds(pred, P[t], interval)
        err = np.abs(A[t] - pred)[known]
        cov = ((A[t] >= lo) & (A[t] <= hi))[known]
        errors.append(err)
        covered.append(cov)
        per_target[t] = (float(err.mean()), float(cov.mean()), int(known.sum()))
    return {"coverage": float(np.concatenate(covered).mean()), "mae": float(np.concatenate(errors).mean()),
            "coverage_min": min(c for _, c, _ in per_target.values()),
            "coverage_max": max(c for _, c, _ in per_target.values()), "per_target": per_target}


def fit_accuracy_model(
    embeddings: np.ndarray,
    accuracy: np.ndarray,
    percentiles: np.ndarray,
    *,
    targets: Sequence[str],
    model_ids: Sequence[str],
    task_encoder: str,
    source_labels: Sequence[Sequence[str]] | None = None,
    level: float = 0.8,
    calibration: dict[str, Any] | None = None,
) -> AccuracyModel:
    """Fit the [`AccuracyModel`] a selector ships (shapes in the module docstring).

    Args:
        targets: ``T`` names of the training targets, row order.
        model_ids: ``M`` zoo model ids, column order (the file is keyed by id).
        task_encoder: The selector's task encoder (checked when the file is loaded).
        source_labels: Per model, the class names it was fine-tuned on (``[]``: unknown).
        level: Nominal coverage of the interval.
        calibration: What to record about the fit (e.g. ``nested_loto``'s numbers, the command).

    Raises:
        InvalidInputError: inconsistent shapes, non-finite inputs, fewer than 3 targets, repeated model ids.
    """
    E, A, P = _prepare(embeddings, accuracy, percentiles)
    if len(targets) != len(A) or len(model_ids) != A.shape[1] or len(set(model_ids)) != len(model_ids):
        raise InvalidInputError(f"{len(targets)} target names and {len(model_ids)} unique model ids are needed for "
                                f"an accuracy matrix of shape {A.shape}.")
    core, interval = _fit_all(E, A, P, level, rank_curve=True)
    labels = source_labels if source_labels is not None else [[] for _ in model_ids]
    models = {
        m: ModelRecord({t: round(float(a), 6) for t, a in zip(targets, A[:, j]) if np.isfinite(a)},
                       tuple(sorted({normalise_label(n) for n in names} - {''})))
        for j, (m, names) in enumerate(zip(model_ids, labels))
    }
    return AccuracyModel(task_encoder, tuple(targets), E, core.levels, TEMPERATURES, core.knots,
                         core.offsets, interval, level, models, dict(calibration or {}))
