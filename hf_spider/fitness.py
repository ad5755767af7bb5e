"""The fitness network: how well does a model (its token) fit a task (its class prototypes)?

For every (task, model) pair the network reads the sequence ``[model token; projected task prototypes;
optional PTM-specific tokens]`` with a Transformer encoder and reads the score at the model-token position.
All ``M`` models of a zoo and a batch of ``B`` tasks are scored in one call: the pairs are folded into the batch
dimension, so there is no Python loop over models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FitnessConfig:
    """Sizes of the fitness network."""

    task_dim: int = 384  # width of the task encoder's features (prototype width)
    token_dim: int = 64  # width of model tokens and of the attention layers
    num_heads: int = 4  # attention heads; must divide token_dim
    num_layers: int = 2  # Transformer encoder layers
    ffn_mult: int = 2  # feed-forward width = ffn_mult * token_dim
    dropout: float = 0.1  # dropout inside the encoder layers (training only)

    def __post_init__(self) -> None:
        if self.token_dim % self.num_heads:
            raise ValueError(f"token_dim ({self.token_dim}) must be divisible by num_heads ({self.num_heads}).")


class FitnessNetwork(nn.Module):
    """Scores (model token, task prototypes) pairs.

    Shape:
        model_tokens: (M, D) — one learned token per zoo model.
        prototypes: (B, C, task_dim) — task prototypes, padded to the largest class count C of the batch.
        class_mask: (B, C) bool, True where a prototype is real (False = padding).
        extra: optional (B, M, K, D) extra tokens per pair (e.g. projected PTM-specific prototypes), with
        extra_mask (B, M, K) bool.
        Returns: (B, M) scores; higher = the model fits the task better.
    """

    def __init__(self, config: FitnessConfig) -> None:
        super().__init__()
        self.config = config
        d = config.token_dim
        # Prototypes are L2-normalised before projection: encoders differ wildly in feature scale.
        self.task_proj = nn.Sequential(nn.LayerNorm(config.task_dim), nn.Linear(config.task_dim, d))
        # Marks which position holds the model token (the rest are task/PTM tokens).
        self.type_embed = nn.Parameter(torch.zeros(3, d))
        layer = nn.TransformerEncoderLayer(
            d, config.num_heads, config.ffn_mult * d, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))

    def forward(
        self,
        model_tokens: torch.Tensor,
        prototypes: torch.Tensor,
        class_mask: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        extra_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        M, D = model_tokens.shape
        B, C, _ = prototypes.shape
        if class_mask is None:
            class_mask = torch.ones(B, C, dtype=torch.bool, device=prototypes.device)
        task = self.task_proj(nn.functional.normalize(prototypes, dim=-1)) + self.type_embed[1]  # (B, C, D)
        model = model_tokens + self.type_embed[0]  # (M, D)
        # Fold (task, model) pairs into the batch: (B*M, 1 + C [+ K], D).
        seq = [model.unsqueeze(0).expand(B, M, D).unsqueeze(2), task.unsqueeze(1).expand(B, M, C, D)]
        keep = [torch.ones(B, M, 1, dtype=torch.bool, device=task.device), class_mask.unsqueeze(1).expand(B, M, C)]
        if extra is not None:
            K = extra.shape[2]
            seq.append(extra + self.type_embed[2])  # (B, M, K, D)
            keep.append(extra_mask if extra_mask is not None else torch.ones(B, M, K, dtype=torch.bool))
        x = torch.cat(seq, dim=2).reshape(B * M, -1, D)  # (B*M, L, D)
        pad = ~torch.cat(keep, dim=2).reshape(B * M, -1)  # (B*M, L), True = ignore
        h = self.encoder(x, src_key_padding_mask=pad)  # (B*M, L, D)
        return self.head(h[:, 0]).reshape(B, M)  # score read at the model-token position


def pad_prototypes(prototypes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``(C_i, d)`` prototype sets into ``(B, C_max, d)`` plus a ``(B, C_max)`` mask."""
    C = max(p.shape[0] for p in prototypes)
    d = prototypes[0].shape[1]
    out = torch.zeros(len(prototypes), C, d, dtype=prototypes[0].dtype)
    mask = torch.zeros(len(prototypes), C, dtype=torch.bool)
    for i, p in enumerate(prototypes):  # a loop over tasks of a batch, not over samples or models
        out[i, : p.shape[0]] = p
        mask[i, : p.shape[0]] = True
    return out, mask
