"""Inductive model tokens: a model's token computed from its Hub metadata instead of being a free vector.

A model added to the Hub tomorrow has no fine-tuning results, but its card and config say what it is: the
architecture, what it was trained on (its label names), its size and its own accuracy. ``model_features`` turns that
into a fixed-width vector and ``MetaTokenEncoder`` maps it to a model token, learned jointly with the fitness network
by ``train_meta_spider`` (ListMLE, as ``train_spider``). Tokens of seen models may add a free, L2-penalised residual
(``MetaTrainingConfig.residual``); an unseen model gets the metadata part alone.

Scoring code only: the text encoder is passed in as a function, nothing here reads disk or network.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import InvalidInputError
from .fitness import FitnessConfig, FitnessNetwork, pad_prototypes
from .training import TrainingTask, listmle_loss

logger = logging.getLogger(__name__)

_NUMERIC = ("num_parameters", "memory_bytes", "num_source_labels", "input_size", "feature_dim")


def model_features(
    meta: pd.DataFrame,
    *,
    source_labels: Sequence[Sequence[str]],
    encode_texts: Callable[[list[str]], torch.Tensor],
    vocabulary: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Fixed-width features of each model from its metadata (no accuracy on any target is used).

    Columns: one-hot architecture (over ``vocabulary``; unknown architectures are all-zero), ``log10`` of the
    numeric columns present (standardised over the given models, missing -> 0 plus a missing flag), the model's own
    source accuracy (missing -> mean, plus a flag), and the L2-normalised mean text embedding of its source label
    names (``encode_texts(names)``; zeros when it has none).

    Args:
        meta: One row per model with ``architecture`` and any of ``num_parameters``, ``memory_bytes``,
            ``num_source_labels``, ``input_size``, ``feature_dim``, ``source_accuracy``.
        source_labels: Per model (row order), the class names it was trained on (may be empty).
        encode_texts: Texts -> ``(N, d)`` embeddings (e.g. ``TaskEncoder.encode_texts``).
        vocabulary: Architectures to one-hot; default: those in ``meta``.

    Returns:
        ``(features (M, F) float32, vocabulary)``.

    Raises:
        InvalidInputError: ``source_labels`` does not have one entry per row of ``meta``.
    """
    if len(source_labels) != len(meta):
        raise InvalidInputError(f"source_labels has {len(source_labels)} entries for {len(meta)} models.")
    vocabulary = list(vocabulary) if vocabulary is not None else sorted(meta["architecture"].astype(str).unique())
    arch = meta["architecture"].astype(str).to_numpy()
    one_hot = (arch[:, None] == np.asarray(vocabulary)[None, :]).astype(np.float32)  # (M, A)
    columns = [one_hot]
    for name in [c for c in _NUMERIC if c in meta and meta[c].notna().any()]:
        x = np.log10(meta[name].astype(float).to_numpy().clip(min=1.0))
        known = np.isfinite(x)
        z = (x - x[known].mean()) / (x[known].std() + 1e-6)
        columns += [np.where(known, z, 0.0)[:, None], (~known).astype(np.float32)[:, None]]
    if "source_accuracy" in meta:
        acc = meta["source_accuracy"].astype(float).to_numpy()
        known = np.isfinite(acc)
        fill = acc[known].mean() if known.any() else 0.0
        columns += [np.where(known, acc, fill)[:, None], (~known).astype(np.float32)[:, None]]
    embeddings = []
    for names in source_labels:
        if len(names):
            e = encode_texts(list(names)).mean(0)
            embeddings.append((e / e.norm().clamp_min(1e-8)).numpy())
        else:
            embeddings.append(None)
    width = next((e.shape[0] for e in embeddings if e is not None), 0)
    columns.append(np.stack([e if e is not None else np.zeros(width, np.float32) for e in embeddings]))
    return np.concatenate(columns, axis=1).astype(np.float32), vocabulary


class MetaTokenEncoder(nn.Module):
    """Model token = MLP(metadata features) [+ a free residual per seen model].

    Shape:
        features: (M, F). residual: (M, D) parameter (zeros for unseen models). Returns (M, D).
    """

    def __init__(self, num_features: int, token_dim: int, *, hidden: int = 64, num_models: int = 0,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, hidden), nn.GELU(),
                                 nn.Linear(hidden, token_dim))
        self.residual = nn.Parameter(torch.zeros(num_models, token_dim))

    def forward(self, features: torch.Tensor, seen: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of the models ``rows`` (default: all) of ``features``; ``seen`` masks the residual."""
        if rows is not None:
            features = features[rows]
        tokens = self.mlp(features)  # (m, D)
        if self.residual.shape[0]:
            residual = self.residual if rows is None else self.residual[rows]
            if seen is not None:
                residual = residual * (seen if rows is None else seen[rows]).unsqueeze(1).to(tokens.dtype)
            tokens = tokens + residual
        return tokens


@dataclass
class MetaTrainingConfig:
    """How ``train_meta_spider`` trains. No early stopping: choose ``epochs`` by an inner leave-one-out (``probe``)."""

    epochs: int = 150  # full passes; one step per epoch sees every training task
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 1e-3
    residual: bool = True  # free per-model residual on top of the metadata token (seen models only)
    residual_l2: float = 1e-2  # penalty on the residual's mean squared norm
    hidden: int = 64  # width of the metadata MLP
    dropout: float = 0.1  # dropout on the metadata features (training only)
    max_classes: int = 16  # class-subset augmentation: each step keeps a random subset of <= this many classes
    models_per_step: int = 0  # > 0: each step ranks a random subset of this many seen models (speed, augmentation)
    probe_epochs: tuple[int, ...] = field(default_factory=tuple)  # epochs at which probe tasks are scored
    seed: int = 0


@dataclass
class MetaTrainingResult:
    """Weights after the last epoch, every model's token, and the probe tasks' scores along the way."""

    fitness: FitnessNetwork
    encoder: MetaTokenEncoder
    model_tokens: torch.Tensor  # (M, D): tokens of every model (metadata part only for unseen ones)
    probe_scores: dict[int, np.ndarray]  # epoch -> (P, M) scores of the probe tasks
    losses: list[float]


def train_meta_spider(
    tasks: list[TrainingTask],
    features: np.ndarray,
    *,
    fitness_config: FitnessConfig,
    config: MetaTrainingConfig | None = None,
    seen: np.ndarray | None = None,
    probe: Sequence[torch.Tensor] = (),
    offsets: np.ndarray | None = None,
) -> MetaTrainingResult:
    """Learn the metadata token encoder and the fitness network jointly with ListMLE.

    Every step scores all training tasks at once, each reduced to a random subset of at most ``max_classes``
    classes (the same zoo ranking is the target: an augmentation of the task token, not new labels).

    Args:
        tasks: Training tasks; NaN performance is ignored by the loss.
        features: ``(M, F)`` from ``model_features``.
        fitness_config: Sizes of the fitness network.
        config: Optimisation settings.
        seen: ``(M,)`` bool, models allowed a free residual (default: all). Unseen models' performance must be
            NaN in ``tasks``: their token comes from metadata alone.
        probe: Prototype sets ``(C, d)`` scored at ``config.probe_epochs`` (e.g. an inner held-out target).
        offsets: ``(T, M)`` fixed scores added to the network's in the loss (e.g. the prior and task-input terms
            of ``hf_spider.task_inputs``): the network then learns the deviation from them. Probe scores and the
            returned network are the deviation alone.

    Returns:
        A [`MetaTrainingResult`] with the weights after the last epoch.
    """
    config = config or MetaTrainingConfig()
    x = torch.as_tensor(features, dtype=torch.float32)
    M = x.shape[0]
    seen_t = torch.ones(M, dtype=torch.bool) if seen is None else torch.as_tensor(seen, dtype=torch.bool)
    targets = torch.stack([t.performance for t in tasks])  # (T, M)
    if targets.shape[1] != M:
        raise InvalidInputError(f"Tasks rank {targets.shape[1]} models; features describe {M}.")
    if torch.isfinite(targets[:, ~seen_t]).any():
        raise InvalidInputError("A model marked unseen has a known performance in a training task.")
    seen_idx = torch.nonzero(seen_t).squeeze(1)
    offset = torch.zeros_like(targets) if offsets is None else torch.as_tensor(offsets, dtype=torch.float32)
    if offset.shape != targets.shape:
        raise InvalidInputError(f"offsets has shape {tuple(offset.shape)}; expected {tuple(targets.shape)}.")
    probe_scores: dict[int, np.ndarray] = {}
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        fitness = FitnessNetwork(fitness_config)
        encoder = MetaTokenEncoder(x.shape[1], fitness_config.token_dim, hidden=config.hidden,
                                   num_models=M if config.residual else 0, dropout=config.dropout)
        opt = torch.optim.AdamW([*fitness.parameters(), *encoder.parameters()], lr=config.lr,
                                weight_decay=config.weight_decay)
        gen = torch.Generator().manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            fitness.train()
            encoder.train()
            protos = []
            for t in tasks:
                C = t.prototypes.shape[0]
                keep = min(C, config.max_classes)
                k = int(torch.randint(min(2, keep), keep + 1, (1,), generator=gen)) if C > 2 else C
                protos.append(t.prototypes[torch.randperm(C, generator=gen)[:k]])
            batch, mask = pad_prototypes(protos)
            rows = seen_idx
            if 0 < config.models_per_step < len(seen_idx):
                rows = seen_idx[torch.randperm(len(seen_idx), generator=gen)[: config.models_per_step]]
            tokens = encoder(x, seen_t, rows)  # (m, D)
            loss = listmle_loss(fitness(tokens, batch, mask) + offset[:, rows], targets[:, rows])
            if config.residual:
                loss = loss + config.residual_l2 * encoder.residual.pow(2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if epoch in config.probe_epochs and len(probe):
                probe_scores[epoch] = _score(fitness, encoder, x, seen_t, list(probe))
        fitness.eval()
        encoder.eval()
        with torch.no_grad():
            tokens = encoder(x, seen_t)
    return MetaTrainingResult(copy.deepcopy(fitness), encoder, tokens, probe_scores, losses)


@torch.no_grad()
def _score(fitness: FitnessNetwork, encoder: MetaTokenEncoder, x: torch.Tensor, seen: torch.Tensor,
           prototypes: list[torch.Tensor]) -> np.ndarray:
    fitness.eval()
    encoder.eval()
    batch, mask = pad_prototypes(prototypes)
    scores = fitness(encoder(x, seen), batch, mask).numpy()  # (P, M)
    fitness.train()
    encoder.train()
    return scores
