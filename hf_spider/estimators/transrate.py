"""TransRate: mutual information between features and labels, estimated by coding rates."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs


def _coding_rate(z: np.ndarray, eps: float) -> float:
    """R(Z, ε) = ½ log det(I_d + ZᵀZ / (n ε)) of an (n, d) block, through the smaller of its two Gram matrices."""
    n, d = z.shape
    gram = z @ z.T if n < d else z.T @ z  # (min(n, d), min(n, d)); det(I + AB) = det(I + BA)
    chol = np.linalg.cholesky(np.eye(gram.shape[0]) + gram / (n * eps))
    return float(np.log(np.diagonal(chol)).sum())  # ½ log det = Σ log diag(L)


def transrate(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
    eps: float = 1e-4,
) -> float:
    """TransRate of Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability Estimation", ICML 2022.

    With Z the centred features (N, D) and Z_c the rows of class c (also centred by the global mean), the coding
    rate of the features minus their average coding rate per class,

        R(Z, ε) = ½ log det( I_D + 1/(N ε) ZᵀZ ),
        TrR = R(Z, ε) − 1/C Σ_c R(Z_c, ε),

    approximates the mutual information I(Z; Y) (the coding rate of Z given Y). `ε` is the distortion term of the
    reference code published with the paper (it plays the role of ε² in the paper's notation), 1e-4 by default,
    and the conditional term averages over classes uniformly, as in that code. Each log-determinant uses the
    Cholesky factor of the smaller Gram matrix. The per-class rates loop over classes: each class has its own
    matrix of a different size, so the C log-determinants cannot be stacked into one array. Higher is better.
    The score depends on the feature scale (as in the paper, features are not normalised). Because class blocks
    are not re-centred, R(Z_c) measures second moments: with two balanced classes at ±μ it equals R(Z) whatever
    the separation, so TransRate is uninformative for balanced binary tasks.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.
        eps (`float`, defaults to 1e-4): distortion of the coding rate.

    Returns:
        `float`: the TransRate score, in nats.

    Raises:
        `InvalidInputError`: see `check_inputs`.

    Shape:
        features (N, D) -> Z (N, D) -> per-class blocks Z_c (n_c, D) -> Gram matrices (min(n, D), min(n, D)) -> scalar.

    Example:
        >>> x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # ZᵀZ = 2 I, Z_cᵀZ_c = 2 e_c e_cᵀ
        >>> round(transrate(x, np.array([0, 0, 1, 1]), eps=1.0), 6)  # log(1 + 1/(2ε)) − ½ log(1 + 1/ε)
        0.058892
    """
    x, y, n_classes, _ = check_inputs(features, labels, name="transrate")
    z = x - x.mean(axis=0)  # (N, D)
    order = np.argsort(y, kind="stable")
    blocks = np.split(z[order], np.cumsum(np.bincount(y))[:-1])  # C arrays (n_c, D)
    conditional = np.mean([_coding_rate(block, eps) for block in blocks])
    return _coding_rate(z, eps) - float(conditional)
