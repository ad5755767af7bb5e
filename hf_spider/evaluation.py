"""Ranking quality: weighted Kendall tau, Pearson r and top-k regret, with unknown ground truth (NaN) ignored."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _known(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt, pred = np.asarray(gt, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.ndim != 1:
        raise ValueError(f"gt and pred must be 1-D of equal length, got {gt.shape} and {pred.shape}.")
    known = np.isfinite(gt)
    return gt[known], pred[known]


def weighted_tau(gt: np.ndarray, pred: np.ndarray) -> float:
    """Weighted Kendall tau (hyperbolic weights on the top of *both* rankings): ``weightedtau(gt, pred, rank=None)``.

    Models with unknown ground truth (NaN) are left out. Returns NaN with fewer than two models.
    """
    gt, pred = _known(gt, pred)
    if len(gt) < 2:
        return float("nan")
    return float(stats.weightedtau(gt, pred, rank=None).statistic)


def kendall_tau(gt: np.ndarray, pred: np.ndarray) -> float:
    """Kendall tau-b between ground truth and predictions, NaN ground truth left out."""
    gt, pred = _known(gt, pred)
    return float(stats.kendalltau(gt, pred).statistic) if len(gt) >= 2 else float("nan")


def pearson(gt: np.ndarray, pred: np.ndarray) -> float:
    """Pearson correlation, NaN ground truth left out; NaN when either side is constant."""
    gt, pred = _known(gt, pred)
    if len(gt) < 2 or np.ptp(gt) == 0 or np.ptp(pred) == 0:
        return float("nan")
    return float(stats.pearsonr(gt, pred).statistic)


def regret_at_k(gt: np.ndarray, pred: np.ndarray, k: int = 1) -> float:
    """Best ground truth minus the best ground truth among the top-``k`` predicted models (same units as ``gt``)."""
    gt, pred = _known(gt, pred)
    top = np.argsort(-pred, kind="stable")[:k]
    return float(gt.max() - gt[top].max())
