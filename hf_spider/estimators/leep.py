"""LEEP: log expected empirical prediction of a dummy classifier built on the source model's outputs."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs


def leep_from_probs(theta: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """LEEP of already-validated inputs (`theta` (N, Z) rows summing to 1, `labels` (N,) in `[0, n_classes)`).

    Shared by `leep` (θ = source-class probabilities) and `nleep` (θ = Gaussian-mixture posteriors).
    """
    n = theta.shape[0]
    onehot = np.eye(n_classes)[labels]  # (N, C)
    joint = onehot.T @ theta / n  # P̂(y, z), (C, Z)
    marginal = joint.sum(axis=0)  # P̂(z), (Z,)
    # A z no sample puts mass on has P̂(z) = 0 and θ_iz = 0 for every i: its column contributes nothing.
    cond = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P̂(y | z), (C, Z)
    eep = np.take_along_axis(theta @ cond.T, labels[:, None], axis=1)[:, 0]  # Σ_z P̂(y_i | z) θ_iz, (N,)
    return float(np.mean(np.log(np.clip(eep, np.finfo(np.float64).tiny, 1.0))))  # eep ≤ 1 up to rounding


def leep(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
) -> float:
    """LEEP of Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate Transferability of Learned
    Representations", ICML 2020.

    With θ(x_i) the pre-trained model's probabilities over its Z source classes, the empirical joint and
    conditional distributions of target label y and source label z are

        P̂(y, z) = 1/N Σ_{i: y_i = y} θ(x_i)_z,    P̂(y | z) = P̂(y, z) / Σ_y' P̂(y', z),

    and LEEP is the average log-likelihood of the "expected empirical predictor" on the target labels:

        LEEP = 1/N Σ_i log( Σ_z P̂(y_i | z) θ(x_i)_z ).

    It is ≤ 0; higher is better. The features are validated but not used.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features (only checked for consistency).
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray` of shape `(N, Z)`): required; rows are probability vectors.

    Returns:
        `float`: the LEEP score, in (−∞, 0].

    Raises:
        `InvalidInputError`: see `check_inputs`; also when `source_probs` is missing.

    Shape:
        source_probs θ (N, Z), labels (N,) -> P̂(y, z) and P̂(y | z) (C, Z) -> per-sample EEP (N,) -> scalar.

    Example:
        >>> theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
        >>> round(leep(np.zeros((4, 1)), np.array([0, 0, 1, 1]), source_probs=theta), 4)
        -0.3426
    """
    _, y, n_classes, theta = check_inputs(features, labels, source_probs, name="leep", needs_source_probs=True)
    return leep_from_probs(theta, y, n_classes)
