"""PARC: agreement between the pairwise dissimilarities of the features and of the labels."""

from __future__ import annotations

import numpy as np
from scipy import stats

from hf_spider.errors import InvalidInputError
from hf_spider.estimators._checks import check_inputs


def _stratified_subsample(labels: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """Indices of ≤ `max_samples` samples, each class kept in proportion, chosen by a seeded random order."""
    n = labels.shape[0]
    if n <= max_samples:
        return np.arange(n)
    perm = np.random.default_rng(seed).permutation(n)  # (N,)
    grouped = np.argsort(labels[perm], kind="stable")  # positions in `perm`, grouped by class, random within
    counts = np.bincount(labels)
    rank = np.empty(n)
    rank[grouped] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    quantile = (rank + 0.5) / counts[labels[perm]]  # how far into its class's random order each sample sits
    return np.sort(perm[np.argsort(quantile, kind="stable")[:max_samples]])


def parc(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
    max_samples: int = 2000,
    seed: int = 0,
    correlation: str = "spearman",
) -> float:
    """PARC of Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer Learning",
    NeurIPS 2021.

    Features are standardised per dimension (as in the authors' code). Pairwise dissimilarity matrices of the
    samples are built from Pearson correlations, for the features and for the one-hot labels,

        D_F[i, j] = 1 − pearson(f_i, f_j),    D_Y[i, j] = 1 − pearson(onehot(y_i), onehot(y_j)),

    (`D_Y` is 0 within a class and C/(C − 1) across classes) and the score is the correlation of their upper
    triangles, Spearman's as in the paper (`D_F` rounded to 12 decimals so that equal dissimilarities tie):

        PARC = spearman( {D_F[i, j]}_{i<j}, {D_Y[i, j]}_{i<j} ).

    To bound memory (O(n²)), at most `max_samples` samples are kept, by a seeded class-stratified draw.

    Differences from the authors' code (github.com/dbolya/parc, `methods.PARC`), which this function does not
    reproduce by default: their published setting ("PARC f=32" in the paper and their demo) first reduces the
    features to 32 dimensions by (randomised) PCA, then standardises them, and it reports 100·PARC. The ×100 does
    not change a ranking; the PCA does. Here the full features are used (reduce them yourself, e.g. with the top
    32 principal components, to match the paper's numbers), and the authors compare every sample, without a cap.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.
        max_samples (`int`, defaults to 2000): cap n on the samples compared pairwise.
        seed (`int`, defaults to 0): seed of the subsample.
        correlation (`str`, defaults to `"spearman"`): `"spearman"` (paper) or `"pearson"` between the triangles.

    Returns:
        `float`: the correlation, in [−1, 1] (0 when the features carry no pairwise structure); higher is better.

    Raises:
        `InvalidInputError`: see `check_inputs`; also for an unknown `correlation` or `max_samples < 2`.

    Shape:
        features (N, D) -> subsample (n, D), n ≤ max_samples -> D_F, D_Y (n, n) -> triangles (n(n − 1)/2,) -> scalar.

    Example:
        >>> y = np.repeat([0, 1, 2], 10)
        >>> parc(np.eye(3)[y], y)  # features are the one-hot labels: perfectly aligned
        1.0
    """
    if correlation not in ("spearman", "pearson") or max_samples < 2:
        raise InvalidInputError(
            f"parc: `correlation` must be 'spearman' or 'pearson' and `max_samples` ≥ 2, got {correlation!r} and "
            f"{max_samples}."
        )
    x, y, n_classes, _ = check_inputs(features, labels, name="parc")
    keep = _stratified_subsample(y, max_samples, seed)
    x, y = x[keep], y[keep]  # (n, D), (n,)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)  # standardised features
    x = x - x.mean(axis=1, keepdims=True)  # centre each sample for its Pearson correlations
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norm > 0, norm, 1.0)  # a constant sample gets correlation 0 with every other
    upper = np.triu_indices(x.shape[0], k=1)
    d_f = np.round(1.0 - (x @ x.T)[upper], 12)  # (n(n − 1)/2,); rounding lets numerically equal values tie
    d_y = np.where(y[upper[0]] == y[upper[1]], 0.0, n_classes / (n_classes - 1))  # equal to 1 − pearson(onehots)
    test = stats.spearmanr if correlation == "spearman" else stats.pearsonr
    rho = float(test(d_f, d_y)[0]) if np.ptp(d_f) > 0 and np.ptp(d_y) > 0 else 0.0
    return rho
