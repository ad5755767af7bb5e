"""SFDA: accuracy-like score of a regularised Fisher discriminant after a self-challenging feature mix-up."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs
from hf_spider.estimators.hscore import class_means


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fisher_posterior(
    z: np.ndarray, y: np.ndarray, n_classes: int, shrinkage: float | None
) -> tuple[np.ndarray, float]:
    """Class posteriors (N, C) of the regularised Fisher discriminant on `z`, and the shrinkage λ used."""
    n, d = z.shape
    counts, mu = class_means(z, y, n_classes)  # (C,), (C, D)
    residual = z - mu[y]  # (N, D)
    s_w = residual.T @ residual / n  # Σ_c π_c cov_c, (D, D)
    if shrinkage is None:  # λ = exp(−5 λ_max(S_w)); λ_max by the authors' 3-step power iteration
        u = s_w.sum(axis=1)
        for _ in range(3):
            v = s_w @ u
            v = v / (np.linalg.norm(v) or 1.0)
            u = s_w @ v
            u = u / (np.linalg.norm(u) or 1.0)
        shrinkage = max(float(np.exp(-5 * (u @ s_w @ v))), 1e-10)
    s_shrunk = (1 - shrinkage) * s_w
    s_shrunk[np.diag_indices(d)] += shrinkage * np.trace(s_w) / d
    try:
        coef = np.linalg.solve(s_shrunk, mu.T)  # S⁻¹ μ_c, (D, C)
    except np.linalg.LinAlgError:  # no within-class scatter at all (e.g. one sample per class)
        coef = np.linalg.lstsq(s_shrunk, mu.T, rcond=None)[0]
    logits = z @ coef - 0.5 * np.sum(mu * coef.T, axis=1) + np.log(counts / n)  # (N, C)
    return _softmax(logits), shrinkage


def sfda(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
) -> float:
    """SFDA of Shao, Zhao, Ge, Li, Ren, Wang & Luo, "Not All Models Are Equal: Predicting Model Transferability
    in a Self-challenging Fisher Space", ECCV 2022.

    1. Regularised Fisher discriminant: with within-class scatter `S_w = Σ_c π_c cov_c` and the shrinkage
       `λ = max(exp(−5 λ_max(S_w)), 1e-10)`, `S_λ = (1 − λ) S_w + λ (tr S_w / D) I`. The authors' code projects on
       all D generalised eigenvectors W of `(S_b, S_λ)`; since `W Wᵀ = S_λ⁻¹`, the classifier is

           p(c | x) = softmax_c( xᵀ S_λ⁻¹ μ_c − ½ μ_cᵀ S_λ⁻¹ μ_c + log π_c ),

       which is what is computed here (no eigendecomposition needed).
    2. Self-challenging ConfMix: with the softened confidence `p̃_i = softmax(p(· | x_i))_{y_i}` and `μ̄_c` the mean
       of the other classes' means, `x̃_i = p̃_i x_i + (1 − p̃_i) μ̄_{y_i}` (hard samples move towards the others).
    3. The discriminant is refitted on `x̃` with the same λ and `SFDA = 1/N Σ_i p(y_i | x̃_i)` (no log, as in the
       authors' code).

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.

    Returns:
        `float`: the SFDA score, in [0, 1]; higher is better.

    Raises:
        `InvalidInputError`: see `check_inputs`.

    Shape:
        features (N, D) -> S_w, S_λ (D, D), class means (C, D) -> posteriors (N, C) -> mixed features (N, D)
        -> posteriors (N, C) -> scalar.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1, 2], 30)
        >>> sfda(rng.normal(size=(90, 5)) + 4 * np.eye(3, 5)[y], y) > 0.9
        True
    """
    x, y, n_classes, _ = check_inputs(features, labels, name="sfda")
    rows = np.arange(x.shape[0])
    prob, shrinkage = _fisher_posterior(x, y, n_classes, None)  # (N, C)
    confidence = _softmax(prob)[rows, y][:, None]  # softened p̃_i, (N, 1)
    _, mu = class_means(x, y, n_classes)  # (C, D)
    others = (mu.sum(axis=0) - mu) / (n_classes - 1)  # μ̄_c, (C, D)
    mixed = confidence * x + (1 - confidence) * others[y]  # (N, D)
    prob, _ = _fisher_posterior(mixed, y, n_classes, shrinkage)
    return float(prob[rows, y].mean())
