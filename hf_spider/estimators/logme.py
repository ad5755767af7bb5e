"""LogME: logarithm of the maximum label evidence of a Bayesian linear model on the features."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs


def logme(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
) -> float:
    """LogME of You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
    ICML 2021.

    Each class c gets a one-hot target `y_c` in {0, 1}^N and a Bayesian linear model `y_c = F w + noise` with prior
    `w ~ N(0, α⁻¹ I_D)` and noise `N(0, β⁻¹)`. One SVD per task, `F = U diag(√σ) Vᵀ` (computed, as the paper's
    Algorithm 1 does, as the eigendecomposition of the smaller Gram matrix, FᵀF or FFᵀ), gives `z_c = Uᵀ y_c`
    and the residual `r_c = ‖y_c − U Uᵀ y_c‖²`. With `A = αI + βFᵀF` the posterior mean is `m = β A⁻¹ Fᵀ y_c`,
    and Algorithm 1 (MacKay's evidence maximisation) iterates

        γ = Σ_i βσ_i / (α + βσ_i),    α ← γ / ‖m‖²,    β ← (N − γ) / ‖F m − y_c‖²,
        ‖m‖² = Σ_i β² σ_i z_i² / (α + βσ_i)²,    ‖F m − y_c‖² = r_c + Σ_i α² z_i² / (α + βσ_i)²,

    (sums of non-negative terms: no cancellation) from α = β = 1, for all classes at once. The log evidence at
    (α, β) is

        L_c = D/2 log α + N/2 log β − N/2 log 2π − β/2 ‖F m − y_c‖² − α/2 ‖m‖² − 1/2 Σ_{i=1..D} log(α + βσ_i)

    (σ_i = 0 for i > rank); a per-class mask freezes a class once L_c / N moves by less than `tol`. (Stopping on
    the evidence rather than on α/β also covers classes whose maximum lies at β → ∞, which happens when N < D
    and the class is exactly interpolable: α/β never settles but the evidence converges.) The score is
    `mean_c L_c / N`.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.
        tol (`float`, defaults to 1e-10): change of L_c / N under which a class counts as converged.
        max_iter (`int`, defaults to 500): cap on fixed-point iterations (each costs O(min(N, D) · C)).

    Returns:
        `float`: mean per-class log evidence divided by N; higher is better.

    Raises:
        `InvalidInputError`: see `check_inputs`.

    Shape:
        features (N, D), labels (N,) -> σ (K,), K = min(N, D); z² (K, C) and r (C,) -> α, β, L (C,) -> scalar.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 200)
        >>> logme(rng.normal(size=(200, 16)) + 3 * y[:, None], y) > logme(rng.normal(size=(200, 16)), y)
        True
    """
    x, y, n_classes, _ = check_inputs(features, labels, name="logme")
    n, d = x.shape
    onehot = np.eye(n_classes)[y]  # (N, C)
    sigma, basis = np.linalg.eigh(x.T @ x if n >= d else x @ x.T)  # (K,), (K, K) with K = min(N, D)
    rank = sigma > sigma.max() * max(n, d) * np.finfo(np.float64).eps  # numerically non-zero σ_i, (K,)
    sigma = np.where(rank, sigma, 0.0)[:, None]  # (K, 1)
    if n >= d:  # basis = V: z_i = v_iᵀ Fᵀ y / √σ_i; the complement of U's span keeps the rest of ‖y‖²
        z2 = np.where(rank[:, None], (basis.T @ (x.T @ onehot)) ** 2 / np.where(sigma > 0, sigma, 1.0), 0.0)
        r = np.maximum(onehot.sum(axis=0) - z2.sum(axis=0), 0.0)  # (C,)
    else:  # basis = U spans R^N: the residual lies on its null-eigenvalue directions
        z2 = (basis.T @ onehot) ** 2  # (K, C)
        r, z2 = np.where(rank[:, None], 0.0, z2).sum(axis=0), np.where(rank[:, None], z2, 0.0)
    tiny = 1e-300

    def moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, ...]:  # γ, ‖m‖², ‖Fm − y‖², L / N
        denom = alpha + beta * sigma  # (K, C)
        gamma = (beta * sigma / denom).sum(axis=0)  # (C,)
        m2 = (beta**2 * sigma * z2 / denom**2).sum(axis=0)  # ‖m‖²
        res2 = r + (alpha**2 * z2 / denom**2).sum(axis=0)  # ‖F m − y‖²
        logdet_a = np.log(denom).sum(axis=0) + (d - sigma.shape[0]) * np.log(alpha)  # log |A|
        evidence = (
            d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * res2 - alpha / 2 * m2 - logdet_a / 2
        ) / n  # L_c / N, (C,)
        return gamma, np.maximum(m2, tiny), np.maximum(res2, tiny), evidence

    alpha, beta = np.ones(n_classes), np.ones(n_classes)
    gamma, m2, res2, evidence = moments(alpha, beta)
    active = np.ones(n_classes, dtype=bool)
    for _ in range(max_iter):
        alpha = np.where(active, np.clip(gamma / m2, 1e-100, 1e100), alpha)
        beta = np.where(active, np.clip((n - gamma) / res2, 1e-100, 1e100), beta)  # a perfect fit: β → ∞
        gamma, m2, res2, new_evidence = moments(alpha, beta)
        active &= np.abs(new_evidence - evidence) > tol
        evidence = new_evidence
        if not active.any():
            break
    return float(evidence.mean())
