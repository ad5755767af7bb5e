"""NCE: negative conditional entropy of the target labels given the source model's hard predictions."""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._checks import check_inputs


def nce(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
) -> float:
    """NCE of Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019.

    The source labels are the pre-trained model's hard predictions `z_i = argmax_z θ(x_i)_z`. With the empirical
    joint distribution `P̂(y, z) = |{i : y_i = y, z_i = z}| / N` of target and source labels,

        NCE = −H(Y | Z) = Σ_{y, z} P̂(y, z) log( P̂(y, z) / P̂(z) ),    P̂(z) = Σ_y P̂(y, z),

    with 0 log 0 = 0. It is ≤ 0 and equals 0 when each source label determines the target label; higher is
    better. The features are validated but not used.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features (only checked for consistency).
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray` of shape `(N, Z)`): required; only its row-wise argmax is used.

    Returns:
        `float`: −H(Y | Z) in nats, in [−log C, 0].

    Raises:
        `InvalidInputError`: see `check_inputs`; also when `source_probs` is missing.

    Shape:
        source_probs (N, Z) -> source labels (N,), remapped to the Z' ≤ min(N, Z) predicted ones -> P̂(y, z) (C, Z')
        -> scalar.

    Example:
        >>> theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
        >>> round(nce(np.zeros((4, 1)), np.array([0, 1, 1, 1]), source_probs=theta), 4)  # −½ log 2
        -0.3466
    """
    _, y, n_classes, theta = check_inputs(features, labels, source_probs, name="nce", needs_source_probs=True)
    n = theta.shape[0]
    _, z = np.unique(np.argmax(theta, axis=1), return_inverse=True)  # source labels actually predicted, (N,)
    n_source = int(z.max()) + 1
    joint = np.bincount(y * n_source + z, minlength=n_classes * n_source).reshape(n_classes, n_source) / n
    marginal = joint.sum(axis=0, keepdims=True)  # P̂(z), (1, Z)
    nonzero = joint > 0
    ratio = np.divide(joint, marginal, out=np.ones_like(joint), where=nonzero)  # P̂(y | z); 1 where P̂(y, z) = 0
    return float(np.sum(joint * np.log(ratio)))
