"""Cold-start model tokens: place a new model by how it *represents* a fixed probe set, with no labels and no
training.

Two models that embed the same inputs alike (high linear CKA, Kornblith et al. 2019) tend to transfer alike, so a new
model's token is the similarity-weighted mean of its nearest zoo neighbours' tokens. It costs one forward pass of the
new model over the probe inputs (the zoo's features on the same inputs are cached), against [`fit_model_token`]'s
probe tasks ranked by estimators. Pure functions of features; the selector wires them up in ``zoo.py``.
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError


def _centred_gram(features: torch.Tensor) -> torch.Tensor:
    x = features.double()
    x = x - x.mean(0, keepdim=True)
    return x @ x.T  # (N, N): feature width drops out, so models of any width compare


def linear_cka(features: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
    """Linear CKA between ``features`` ``(N, d)`` and each of ``others`` ``(N, d_j)`` (same N inputs, same order).

    Returns:
        ``(len(others),)`` similarities in [0, 1].
    """
    n = features.shape[0]
    if any(o.shape[0] != n for o in others):
        raise InvalidInputError("CKA compares features of the *same* probe inputs; the row counts differ.")
    grams = torch.stack([_centred_gram(o) for o in others])  # (M, N, N)
    k = _centred_gram(features)
    num = (grams * k).sum((1, 2))
    den = grams.flatten(1).norm(dim=1) * k.norm()
    return (num / den.clamp_min(1e-12)).float()


def cold_start_token(
    features: torch.Tensor, zoo_features: list[torch.Tensor], zoo_tokens: torch.Tensor, *, neighbours: int = 3
) -> torch.Tensor:
    """A token for a new model from its probe-set features: the CKA-weighted mean of its ``neighbours`` most similar
    zoo models' tokens.

    Args:
        features: ``(N, d)`` features of the new model on the probe inputs.
        zoo_features: One ``(N, d_j)`` tensor per zoo model, on the same inputs in the same order.
        zoo_tokens: ``(M, token_dim)`` learned tokens of the zoo, in the same order.
        neighbours: How many nearest zoo models to average (clipped to M).

    Returns:
        ``(token_dim,)`` token.
    """
    if len(zoo_features) != zoo_tokens.shape[0]:
        raise InvalidInputError(f"{len(zoo_features)} zoo feature sets for {zoo_tokens.shape[0]} tokens.")
    if neighbours < 1:
        raise InvalidInputError(f"neighbours must be ≥ 1, got {neighbours}.")
    sim = linear_cka(features, zoo_features)
    top = torch.topk(sim, min(neighbours, len(sim))).indices
    weights = sim[top].clamp_min(1e-6)
    return (weights / weights.sum()) @ zoo_tokens[top].to(weights.dtype)
