"""Shrinkage-regularised H-score: the H-score with a Ledoit-Wolf estimate of the feature covariance."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs
from hf_spider.estimators.hscore import between_class_term, unit_scale


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf (2004) shrunk covariance `(1 − α) S + α (tr S / D) I` and its α, of centred (N, D) data.

    Same estimator as `sklearn.covariance.LedoitWolf`, in closed form: with `S = XᵀX / N` and `μ = tr S / D`,
    `δ = ‖S − μI‖²_F / D`, `β = min(δ, (Σ_i ‖x_i‖⁴ / N − ‖S‖²_F) / (N D))` and `α = β / δ`.
    """
    n, d = centred.shape
    s = centred.T @ centred / n  # (D, D)
    mu = np.trace(s) / d
    s_fro2 = np.sum(s**2)
    delta = (s_fro2 - 2 * mu * np.trace(s) + d * mu**2) / d
    beta = min(delta, (np.sum(np.sum(centred**2, axis=1) ** 2) / n - s_fro2) / (n * d))
    alpha = 0.0 if beta <= 0 else float(beta / delta)
    shrunk = (1 - alpha) * s
    shrunk[np.diag_indices(d)] += alpha * mu
    return shrunk, alpha


def reg_hscore(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
) -> float:
    """Shrinkage-based H-score of Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking
    transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022 (arXiv:2110.06893).

    The H-score's covariance inverse is unstable when D is comparable to N; the paper replaces `cov(f)` by the
    Ledoit-Wolf shrinkage estimate and the between-class covariance by its equally shrunk counterpart:

        Σ_α = (1 − α) cov(f) + α (tr cov(f) / D) I,    α = Ledoit-Wolf optimal shrinkage,
        H_α(f) = tr( Σ_α⁻¹ (1 − α) cov(E[f | Y]) ) = (1 − α) Σ_c (n_c / N) (μ_c − μ)ᵀ Σ_α⁻¹ (μ_c − μ),

    with population (1/N) covariances throughout. α → 0 as N/D grows, recovering the H-score. Higher is better.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.

    Returns:
        `float`: the regularised H-score.

    Raises:
        `InvalidInputError`: see `check_inputs`.

    Shape:
        features (N, D) -> Σ_α (D, D), class means (C, D) -> scalar.

    Example:
        >>> from hf_spider.estimators import hscore
        >>> y = np.repeat([0, 1], 20)
        >>> x = np.random.default_rng(0).normal(size=(40, 60)) + y[:, None]  # D > N: cov(f) is singular
        >>> reg_hscore(x, y) < hscore(x, y)
        True
    """
    x, y, n_classes, _ = check_inputs(features, labels, name="reg_hscore")
    x = unit_scale(x)
    shrunk, alpha = ledoit_wolf(x - x.mean(axis=0))
    return (1 - alpha) * between_class_term(x, y, n_classes, shrunk)
