"""H-score: how much of the feature covariance the class-conditional means explain."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs


def class_means(x: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class counts `(C,)` and means `(C, D)` of validated features, without a loop over classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)  # (C,)
    onehot = np.eye(n_classes)[labels]  # (N, C)
    return counts, (onehot.T @ x) / counts[:, None]  # (C,), (C, D)


def unit_scale(x: np.ndarray) -> np.ndarray:
    """``x`` divided by its largest deviation from the mean. H-scores are invariant to one global scale, and features
    of ~1e-160 would otherwise square to subnormal covariances whose inverse overflows to inf (found by the fuzzer)."""
    scale = np.abs(x - x.mean(axis=0)).max()
    return x / scale if scale > 0 else x


def between_class_term(x: np.ndarray, labels: np.ndarray, n_classes: int, cov: np.ndarray) -> float:
    """tr(cov⁻¹ Σ_b) = Σ_c (n_c / N) (μ_c − μ)ᵀ cov⁻¹ (μ_c − μ), with a rank-aware pseudo-inverse of `cov`."""
    counts, means = class_means(x, labels, n_classes)
    centred = means - x.mean(axis=0)  # (C, D)
    eigval, eigvec = np.linalg.eigh(cov)  # (D,), (D, D)
    cutoff = eigval.max() * max(cov.shape[0], x.shape[0]) * np.finfo(np.float64).eps  # numpy's matrix_rank rule
    inv = np.divide(1.0, eigval, out=np.zeros_like(eigval), where=eigval > cutoff)  # pseudo-inverse spectrum
    projected = centred @ eigvec  # (C, D)
    return float(np.sum(counts / x.shape[0] * (projected**2 @ inv)))


def hscore(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
) -> float:
    """H-score of Bao, Li, Huang, Zheng, Wang, Zheng & Wang, "An Information-Theoretic Approach to Transferability
    in Task Transfer Learning", ICIP 2019.

    With `f` the features and `g(y) = E[f | y]` the class-conditional mean,

        H(f) = tr( cov(f)⁻¹ cov(E[f | Y]) ) = Σ_c (n_c / N) (μ_c − μ)ᵀ cov(f)⁺ (μ_c − μ),

    using the (population) covariance `cov(f) = 1/N Σ_i (f_i − μ)(f_i − μ)ᵀ` and the weighted between-class
    covariance; `⁺` is a pseudo-inverse discarding eigenvalues below `λ_max · max(N, D) · eps`. H is the
    fraction of feature variance explained by the labels, summed over directions: it lies in [0, min(C − 1, D)]
    and is invariant to any invertible affine map `f ↦ A f + b` of the features (not only to scaling) when
    `cov(f)` has full rank. Higher is better.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.

    Returns:
        `float`: the H-score.

    Raises:
        `InvalidInputError`: see `check_inputs`.

    Shape:
        features (N, D) -> cov(f) (D, D), class means (C, D) -> scalar.

    Example:
        >>> hscore(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))  # between 1 / total 1.25
        0.8
    """
    x, y, n_classes, _ = check_inputs(features, labels, name="hscore")
    x = unit_scale(x)
    centred = x - x.mean(axis=0)  # (N, D)
    cov = centred.T @ centred / x.shape[0]  # (D, D)
    return between_class_term(x, y, n_classes, cov)
