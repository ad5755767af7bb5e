"""TransRate: mutual information between features and labels, estimated by coding rates."""

from __future__ import annotations

import numpy as np

from hf_spider.errors import InvalidInputError
from hf_spider.estimators._checks import check_inputs

VARIANTS = ("tllib", "authors")


def _gram(z: np.ndarray) -> np.ndarray:
    """The smaller of the two Gram matrices of an (n, d) block, ZZᵀ or ZᵀZ: they share their nonzero eigenvalues."""
    n, d = z.shape
    return z @ z.T if n < d else z.T @ z


def _coding_rate(z: np.ndarray, eps: float) -> float:
    """R(Z, ε) = ½ log det(I_d + ZᵀZ / (n ε)) of an (n, d) block, through the smaller of its two Gram matrices."""
    gram = _gram(z)  # (min(n, d), min(n, d)); det(I + AB) = det(I + BA)
    chol = np.linalg.cholesky(np.eye(gram.shape[0]) + gram / (z.shape[0] * eps))
    return float(np.log(np.diagonal(chol)).sum())  # ½ log det = Σ log diag(L)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; an all-zero row stays zero."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _rank(z: np.ndarray) -> int:
    """Rank of ZᵀZ / n by numpy's `matrix_rank` rule on the (D, D) matrix (cut-off λ_max · D · machine ε)."""
    eig = np.linalg.eigvalsh(_gram(z) / z.shape[0])  # the nonzero spectrum of ZᵀZ / n
    cutoff = eig.max() * z.shape[1] * np.finfo(np.float64).eps
    return max(1, int(np.sum(eig > cutoff)))


def transrate(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
    eps: float = 1e-4,
    variant: str = "tllib",
) -> float:
    """TransRate of Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability Estimation", ICML 2022.

    With Z the centred features (N, D) and Z_c the rows of class c (also centred by the global mean), the coding
    rate of the features minus their average coding rate per class,

        R(Z, ε) = ½ log det( I_D + 1/(N ε) ZᵀZ ),
        TrR = R(Z, ε) − 1/C Σ_c R(Z_c, ε),

    approximates the mutual information I(Z; Y) (the coding rate of Z given Y). `ε` is the distortion term (it
    plays the role of ε² in the paper's notation), 1e-4 by default.

    Two implementations circulate, and they rank models differently:

    - `variant="tllib"` (the default) is the formula above, on raw features, classes averaged uniformly: exactly
      the version in the Transfer-Learning-Library (tllib) and the paper's printed listing, which most
      benchmarks reuse. It is *not* what the authors' released code (github.com/Long-Kai/TransRate) computes.
    - `variant="authors"` follows that released code: each feature row is L2-normalised, the rows are centred
      and L2-normalised again, the conditional term weights each class by its size n_c / N instead of 1/C, and
      both terms are divided by r = rank(ZᵀZ / N):

          TrR_authors = ( R(Z, ε) − Σ_c (n_c / N) R(Z_c, ε) ) / r.

      The two variants can rank a zoo very differently (Kendall τ between them: 0.04 in the review that found
      the difference, 0.56 on the 15 models of the SpiderBench v2 target `glyphs-lower-a-h-liberation`), so say
      which one a comparison used.

    Each log-determinant uses the Cholesky factor of the smaller Gram matrix. The per-class rates loop over
    classes: each class has its own matrix of a different size, so the C log-determinants cannot be stacked into
    one array. Higher is better. The "tllib" score depends on the feature scale (features are not normalised).
    Because class blocks are not re-centred, R(Z_c) measures second moments: with two balanced classes at ±μ it
    equals R(Z) whatever the separation, so TransRate (either variant) is uninformative for balanced binary tasks.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.
        eps (`float`, defaults to 1e-4): distortion of the coding rate.
        variant (`str`, defaults to `"tllib"`): `"tllib"` or `"authors"` (see above).

    Returns:
        `float`: the TransRate score, in nats ("authors": nats per rank dimension).

    Raises:
        `InvalidInputError`: see `check_inputs`; also for an unknown `variant`.

    Shape:
        features (N, D) -> Z (N, D) -> per-class blocks Z_c (n_c, D) -> Gram matrices (min(n, D), min(n, D)) -> scalar.

    Example:
        >>> x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # ZᵀZ = 2 I, Z_cᵀZ_c = 2 e_c e_cᵀ
        >>> round(transrate(x, np.array([0, 0, 1, 1]), eps=1.0), 6)  # log(1 + 1/(2ε)) − ½ log(1 + 1/ε)
        0.058892
    """
    if variant not in VARIANTS:
        raise InvalidInputError(f"transrate: `variant` must be one of {VARIANTS}, got {variant!r}.")
    x, y, n_classes, _ = check_inputs(features, labels, name="transrate")
    if variant == "authors":
        x = _unit_rows(x)  # the released code normalises the extracted features ...
    z = x - x.mean(axis=0)  # (N, D)
    if variant == "authors":
        z = _unit_rows(z)  # ... and normalises the centred rows again before the eigen-decompositions
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y)  # (C,)
    blocks = np.split(z[order], np.cumsum(counts)[:-1])  # C arrays (n_c, D)
    rates = np.array([_coding_rate(block, eps) for block in blocks])  # (C,)
    if variant == "tllib":
        return _coding_rate(z, eps) - float(rates.mean())
    return (_coding_rate(z, eps) - float(rates @ (counts / counts.sum()))) / _rank(z)
