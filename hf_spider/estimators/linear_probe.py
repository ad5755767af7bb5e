"""Linear probe: cross-validated accuracy of a logistic regression on the frozen features (the costly reference)."""

from __future__ import annotations

import numpy as np

from hf_spider.errors import InvalidInputError
from hf_spider.estimators._checks import check_inputs


def linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    source_probs: np.ndarray | None = None,
    n_splits: int = 5,
    seed: int = 0,
    c: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Linear-probe accuracy: the standard "frozen features + logistic regression" protocol (e.g. Kornblith, Shlens
    & Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019) against which the other estimators are judged.

    The samples are split into `n_splits` stratified folds (shuffled with `seed`). For each fold k, features are
    standardised with the training folds' statistics and an L2-regularised multinomial logistic regression
    (scikit-learn, L-BFGS, inverse strength `c`) is fitted on the training folds:

        ŵ_k = argmin_w  Σ_{i ∉ fold k} −log softmax(w x_i)_{y_i} + ‖w‖² / (2c),
        probe = 1/K Σ_k accuracy(ŵ_k, fold k).

    `n_splits` is lowered to the size of the smallest class when that is smaller (at least 2 folds). Because the
    folds are assigned per class, relabelling the classes can change the split and so the score slightly.

    Args:
        features (`np.ndarray` of shape `(N, D)`): target-set features of the pre-trained model.
        labels (`np.ndarray` of shape `(N,)`): integer class ids (need not be contiguous).
        source_probs (`np.ndarray`, *optional*): ignored.
        n_splits (`int`, defaults to 5): number of cross-validation folds (≥ 2).
        seed (`int`, defaults to 0): seed of the fold assignment.
        c (`float`, defaults to 1.0): inverse L2 regularisation strength (scikit-learn's `C`).
        max_iter (`int`, defaults to 1000): L-BFGS iteration cap per fit.

    Returns:
        `float`: mean held-out accuracy, in [0, 1]; higher is better.

    Raises:
        `InvalidInputError`: see `check_inputs`; also when `n_splits < 2`.

    Shape:
        features (N, D) -> K folds of (N − N/K, D) training and (N/K, D) held-out rows -> K accuracies -> scalar.

    Example:
        >>> y = np.repeat([0, 1], 20)
        >>> linear_probe(np.random.default_rng(0).normal(size=(40, 3)) + 5 * y[:, None], y)
        1.0
    """
    if n_splits < 2:
        raise InvalidInputError(f"linear_probe: `n_splits` must be at least 2, got {n_splits}.")
    x, y, n_classes, _ = check_inputs(features, labels, name="linear_probe")
    from sklearn.linear_model import LogisticRegression  # lazy: importing scikit-learn takes about a second
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise InvalidInputError(
            f"linear_probe: a class has {smallest} sample; cross-validation needs at least 2 per class. "
            "Sample more rows per class (`shots_per_class`) or drop that class."
        )
    n_splits = min(n_splits, smallest)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    accuracies = []
    for train, test in folds.split(x, y):  # a loop over folds, each a separate fit
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        probe = LogisticRegression(C=c, max_iter=max_iter)
        probe.fit((x[train] - mean) / std, y[train])
        accuracies.append(np.mean(probe.predict((x[test] - mean) / std) == y[test]))
    return float(np.mean(accuracies))
