"""The fitness network: how well does a model (its token) fit a task (its class prototypes)?

For every (task, model) pair the network reads the sequence ``[model token; projected task prototypes;
optional PTM-specific tokens]`` with a Transformer encoder and reads the score at the model-token position.
All ``M`` models of a zoo and a batch of ``B`` tasks are scored in one call: the pairs are folded into the batch
dimension, so there is no Python loop over models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .fitness_eval import MAX_EXACT_CLASSES, chunked_exact_scores, one_layer_scores, quantise_task


@dataclass
class FitnessConfig:
    """Sizes of the fitness network."""

    task_dim: int = 384  # width of the task encoder's features (prototype width)
    token_dim: int = 64  # width of model tokens and of the attention layers
    num_heads: int = 4  # attention heads; must divide token_dim
    num_layers: int = 2  # Transformer encoder layers
    ffn_mult: int = 2  # feed-forward width = ffn_mult * token_dim
    dropout: float = 0.1  # dropout inside the encoder layers (training only)
    ptm_widths: list[int] = field(default_factory=list)  # feature widths of zoo models that can be re-ranked

    def __post_init__(self) -> None:
        if not isinstance(self.num_heads, int) or self.num_heads < 1 or self.token_dim % self.num_heads:
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
        # One projection per feature width: models of the same width share it, so a new model of a known
        # width can be re-ranked without training anything.
        self.ptm_proj = nn.ModuleDict(
            {str(w): nn.Sequential(nn.LayerNorm(w), nn.Linear(w, d)) for w in sorted(set(config.ptm_widths))}
        )

    def forward(
        self,
        model_tokens: torch.Tensor,
        prototypes: torch.Tensor,
        class_mask: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        extra_mask: torch.Tensor | None = None,
        *,
        max_classes: int = MAX_EXACT_CLASSES,
    ) -> torch.Tensor:
        """Scores ``(B, M)``; see the class docstring for shapes.

        In training mode this is the reference computation (full self-attention over every pair's sequence). In eval
        mode the same scores come from a path whose memory is linear in the class count (see ``fitness_eval``):
        exact for a one-layer network; for deeper ones exact up to ``max_classes`` classes, beyond which each task's
        tokens are clustered into ``max_classes`` centroids.
        """
        M, D = model_tokens.shape
        B, C, _ = prototypes.shape
        if class_mask is None:
            class_mask = torch.ones(B, C, dtype=torch.bool, device=prototypes.device)
        task = self.task_proj(nn.functional.normalize(prototypes, dim=-1)) + self.type_embed[1]  # (B, C, D)
        model = model_tokens + self.type_embed[0]  # (M, D)
        if extra is not None:
            extra = extra + self.type_embed[2]  # (B, M, K, D)
            if extra_mask is None:
                extra_mask = torch.ones(extra.shape[:3], dtype=torch.bool, device=extra.device)
        if not self.training:
            if self.config.num_layers == 1:
                return one_layer_scores(self.encoder.layers[0], self.head, model, task, class_mask, extra, extra_mask)
            task, task_bias, extra, extra_bias = quantise_task(task, class_mask, extra, extra_mask, max_classes)
            return chunked_exact_scores(self.encoder, self.head, model, task, task_bias, extra, extra_bias)
        # Fold (task, model) pairs into the batch: (B*M, 1 + C [+ K], D).
        seq = [model.unsqueeze(0).expand(B, M, D).unsqueeze(2), task.unsqueeze(1).expand(B, M, C, D)]
        keep = [torch.ones(B, M, 1, dtype=torch.bool, device=task.device), class_mask.unsqueeze(1).expand(B, M, C)]
        if extra is not None:
            seq.append(extra)
            keep.append(extra_mask)
        x = torch.cat(seq, dim=2).reshape(B * M, -1, D)  # (B*M, L, D)
        pad = ~torch.cat(keep, dim=2).reshape(B * M, -1)  # (B*M, L), True = ignore
        h = self.encoder(x, src_key_padding_mask=pad)  # (B*M, L, D)
        return self.head(h[:, 0]).reshape(B, M)  # score read at the model-token position

    def ptm_tokens(
        self, ptm: list[dict[int, torch.Tensor]], num_models: int, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project PTM-specific prototypes into extra tokens for the models that have them.

        Args:
            ptm: One dict per task: zoo index → ``(C_task, width)`` prototypes of the task's classes computed
                from that model's own features (``C_task`` ≤ ``num_classes``, same class order as the task).
            num_models: ``M``. num_classes: ``C`` of the padded task batch.

        Returns:
            ``extra (B, M, C, D)`` and ``extra_mask (B, M, C)`` for ``forward``.
        """
        B, D = len(ptm), self.config.token_dim
        extra = torch.zeros(B, num_models, num_classes, D)
        mask = torch.zeros(B, num_models, num_classes, dtype=torch.bool)
        by_width: dict[int, list[tuple[int, int, torch.Tensor]]] = {}
        for b, per_task in enumerate(ptm):
            for m, protos in per_task.items():
                by_width.setdefault(protos.shape[1], []).append((b, m, protos))
        for width, items in by_width.items():  # one projection call per feature width
            if str(width) not in self.ptm_proj:
                raise ValueError(
                    f"No projection for PTM features of width {width}; this selector was trained for widths "
                    f"{sorted(int(w) for w in self.ptm_proj)}."
                )
            stacked, lengths = torch.cat([p for _, _, p in items]), [p.shape[0] for _, _, p in items]
            projected = self.ptm_proj[str(width)](nn.functional.normalize(stacked, dim=-1))  # (ΣC, D)
            for (b, m, _), chunk in zip(items, projected.split(lengths)):
                extra[b, m, : chunk.shape[0]] = chunk
                mask[b, m, : chunk.shape[0]] = True
        return extra, mask


def merge_rerank(base: torch.Tensor, reranked: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """Final ordering scores after re-ranking: the ``top`` models (re-scored) stay above all others.

    The token-only stage picked ``top``; re-ranking may only reorder them, as in the paper's two-stage scheme.

    Shape:
        base, reranked: (M,) scores without / with PTM tokens; top: (k,) indices. Returns (M,).
    """
    out = base.clone()
    lift = base.max() - reranked[top].min() + 1.0  # places every re-ranked model above every other one
    out[top] = (reranked[top] + lift).to(out.dtype)
    return out


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
