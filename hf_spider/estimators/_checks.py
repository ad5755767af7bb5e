"""The one input validator every transferability estimator calls first."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hf_spider.errors import InvalidInputError

_PROBS_SUM_ATOL = 1e-3  # softmax outputs in float32 sum to 1 within ~1e-6; float16 within ~1e-3


class CheckedInputs(NamedTuple):
    """Validated, read-only float64 views of an estimator's inputs."""

    features: np.ndarray  # (N, D) float64, read-only
    labels: np.ndarray  # (N,) int64 class indices in [0, n_classes)
    n_classes: int
    source_probs: np.ndarray | None  # (N, Cs) float64, read-only; None unless required


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False  # an accidental in-place op in an estimator raises instead of mutating the caller
    return view


def check_inputs(
    features: np.ndarray,
    labels: np.ndarray,
    source_probs: np.ndarray | None = None,
    *,
    name: str,
    needs_source_probs: bool = False,
) -> CheckedInputs:
    """Validate `(features, labels[, source_probs])` and return them as float64 arrays and class indices.

    Args:
        features (`np.ndarray` of shape `(N, D)`): real-valued, finite features.
        labels (`np.ndarray` of shape `(N,)`): integer class ids; ids may skip values (remapped to `0..C-1`).
        source_probs (`np.ndarray` of shape `(N, Cs)`, *optional*): source-class probabilities (rows sum to 1).
        name (`str`): the estimator's registry name, quoted in error messages.
        needs_source_probs (`bool`): whether `source_probs` is required; when `False` it is ignored.

    Returns:
        `CheckedInputs`: read-only float64 `features`, int64 `labels` in `[0, n_classes)`, `n_classes`, and the
        read-only float64 `source_probs` (or `None`).

    Raises:
        `InvalidInputError`: for a wrong rank, dtype, length, non-finite value, fewer than 2 classes, or missing,
        negative or unnormalised `source_probs`; the message names the shapes/dtypes and how to fix them.
    """
    try:
        x = np.asarray(features)
        y = np.asarray(labels)
    except ValueError as err:  # ragged nested lists
        raise InvalidInputError(
            f"{name}: `features`/`labels` are not rectangular arrays ({err}); pass an (N, D) array and (N,) ids."
        ) from err
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InvalidInputError(
            f"{name}: `features` must be a non-empty 2-D array of shape (N, D), got shape {x.shape}. "
            "Flatten or pool per-sample features to one vector each, e.g. `features.reshape(len(features), -1)`."
        )
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InvalidInputError(
            f"{name}: `features` must have a real numeric dtype, got {x.dtype}. Convert with `.astype(np.float32)`."
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InvalidInputError(
            f"{name}: `labels` must be a 1-D integer array, got shape {y.shape} and dtype {y.dtype}. "
            "Pass class ids such as `np.asarray(labels, dtype=np.int64)` (one id per sample, not one-hot)."
        )
    if y.shape[0] != x.shape[0]:
        raise InvalidInputError(
            f"{name}: `features` has {x.shape[0]} rows (shape {x.shape}) but `labels` has {y.shape[0]} entries "
            f"(shape {y.shape}); pass one label per feature row."
        )
    x = x.astype(np.float64, copy=False)
    finite_rows = np.isfinite(x).all(axis=1)
    if not finite_rows.all():
        bad = int((~finite_rows).sum())
        raise InvalidInputError(
            f"{name}: `features` (shape {x.shape}) contains NaN or infinite values in {bad} row(s); "
            "drop or impute those rows before scoring."
        )
    if not needs_source_probs and np.ptp(x, axis=0).max() == 0:  # LEEP/NCE read source_probs, not features
        raise InvalidInputError(
            f"{name}: every sample has the same features (shape {x.shape}): they carry no information about the "
            "labels. Check the feature extractor (e.g. a dead pooler or all-blank inputs)."
        )
    _, codes = np.unique(y, return_inverse=True)
    n_classes = int(codes.max()) + 1
    if n_classes < 2:
        raise InvalidInputError(
            f"{name}: `labels` contain a single class ({y[0].item()!r}); transferability needs at least 2 classes. "
            "Check the label column or the dataset split."
        )
    probs = None
    if needs_source_probs:
        probs = _check_source_probs(source_probs, x.shape[0], name=name)
    return CheckedInputs(_read_only(x), codes.astype(np.int64, copy=False), n_classes, probs)


def _check_source_probs(source_probs: np.ndarray | None, n_samples: int, *, name: str) -> np.ndarray:
    if source_probs is None:
        raise InvalidInputError(
            f"{name} needs `source_probs`, the (N, Cs) probabilities the pre-trained model assigns to its own "
            "source classes; pass `source_probs=softmax(logits)`."
        )
    p = np.asarray(source_probs)
    if p.ndim != 2 or p.shape[0] != n_samples or p.shape[1] == 0:
        raise InvalidInputError(
            f"{name}: `source_probs` must have shape (N, Cs) = ({n_samples}, Cs) to match `features`, "
            f"got shape {p.shape}."
        )
    if not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)):
        raise InvalidInputError(f"{name}: `source_probs` must have a real numeric dtype, got {p.dtype}.")
    p = p.astype(np.float64, copy=False)
    if not np.isfinite(p).all() or (p < 0).any():
        raise InvalidInputError(
            f"{name}: `source_probs` (shape {p.shape}) must be finite and non-negative; did you pass logits? "
            "Apply a softmax over the source classes first."
        )
    row_sums = p.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=_PROBS_SUM_ATOL):
        worst = float(row_sums[np.argmax(np.abs(row_sums - 1.0))])
        raise InvalidInputError(
            f"{name}: each row of `source_probs` (shape {p.shape}) must sum to 1, found a row summing to {worst:.4g}. "
            "Normalise with `source_probs / source_probs.sum(axis=1, keepdims=True)`."
        )
    return _read_only(p)
