"""Training tasks, the listwise (Plackett-Luce) ranking loss, and the trainer of model tokens + fitness network.

A training task is a task token plus the zoo's known performance on it (measured fine-tuning accuracy, or an
aggregate of cheap transferability estimators). Only the *order* of the performances matters to the loss.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InvalidInputError
from .evaluation import weighted_tau
from .fitness import FitnessConfig, FitnessNetwork, merge_rerank, pad_prototypes

logger = logging.getLogger(__name__)

_NEG = -1e30  # a finite "minus infinity": exp() gives 0 and gradients stay finite


def listmle_loss(
    scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None, *, reduction: str = "mean"
) -> torch.Tensor:
    """ListMLE: the negative Plackett-Luce log-likelihood of the true ranking, with ties.

    For one list with scores ``s`` and targets ``y`` (higher = better) over the valid items ``V``:

        L = 1/|V| * Σ_{i ∈ V} [ log Σ_{j ∈ V, y_j ≤ y_i} exp(s_j) − s_i ]

    i.e. every item is "placed" against a softmax over the items not placed strictly before it. Tied items share
    one denominator that contains all of them (Breslow's treatment of ties), so the loss does not depend on how
    ties happen to be ordered; without ties it is exactly ListMLE (Xia et al., ICML 2008). Items whose target is
    NaN or whose ``mask`` is False are left out; lists with fewer than two valid items do not contribute.

    Shape:
        scores, targets, mask: (B, M) or (M,). Returns a scalar: mean over contributing lists
        (``reduction="none"``: the ``(B,)`` per-list losses, NaN for lists with fewer than two valid items).
    """
    if scores.dim() == 1:
        scores, targets = scores.unsqueeze(0), targets.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if scores.shape != targets.shape:
        raise InvalidInputError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ in shape.")
    valid = torch.isfinite(targets) if mask is None else (mask & torch.isfinite(targets))
    B, M = scores.shape
    y = targets.masked_fill(~valid, float("-inf"))
    order = torch.argsort(y, dim=1, descending=True, stable=True)  # best first, invalid last
    y_sorted = y.gather(1, order)
    s_sorted = scores.gather(1, order).masked_fill(~valid.gather(1, order), _NEG)  # (B, M)
    tail = torch.logcumsumexp(s_sorted.flip(1), dim=1).flip(1)  # tail[p] = log Σ_{q ≥ p} exp(s_q)
    new_group = torch.ones_like(valid)
    new_group[:, 1:] = y_sorted[:, 1:] != y_sorted[:, :-1]
    positions = torch.arange(M, device=scores.device).expand(B, M)
    group_start = torch.where(new_group, positions, torch.zeros_like(positions)).cummax(dim=1).values
    terms = tail.gather(1, group_start) - s_sorted  # (B, M)
    n_valid = valid.sum(1)
    terms = terms.masked_fill(~valid.gather(1, order), 0.0)
    per_list = terms.sum(1) / n_valid.clamp_min(1)
    used = n_valid >= 2
    if reduction == "none":
        return per_list.masked_fill(~used, float("nan"))
    if not used.any():
        return scores.sum() * 0.0  # keeps the graph; nothing to learn from this batch
    return per_list[used].mean()


@dataclass
class TrainingTask:
    """One training task: a task token and the zoo's known performance on it.

    Attributes:
        name: Readable id of the task (e.g. ``"cifar100"`` or ``"fmnist-classes-0-3-7"``).
        prototypes: ``(C, task_dim)`` class prototypes from the selector's task encoder.
        performance: ``(M,)`` performance of each zoo model, in zoo order; NaN where unknown.
        ptm_prototypes: Optional, for training the re-ranking stage: zoo index → ``(C, width)`` class prototypes
            of this task computed from that model's own features.
    """

    name: str
    prototypes: torch.Tensor
    performance: torch.Tensor
    ptm_prototypes: dict[int, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prototypes = torch.as_tensor(self.prototypes, dtype=torch.float32)
        self.performance = torch.as_tensor(self.performance, dtype=torch.float32)
        if self.prototypes.dim() != 2:
            raise InvalidInputError(
                f"Task {self.name!r}: prototypes must be (C, d), got {tuple(self.prototypes.shape)}."
            )
        if self.performance.dim() != 1:
            raise InvalidInputError(
                f"Task {self.name!r}: performance must be (M,), got {tuple(self.performance.shape)}."
            )


@dataclass
class TrainingConfig:
    """How the selector is trained."""

    epochs: int = 300  # upper bound; early stopping usually ends sooner
    batch_size: int = 16  # tasks per step
    lr: float = 2e-3  # AdamW learning rate (network and model tokens)
    weight_decay: float = 1e-4
    val_fraction: float = 0.2  # share of tasks held out for early stopping when no val_tasks are given
    patience: int = 30  # epochs without a better validation weighted tau before stopping
    seed: int = 0
    rerank_prob: float = 0.0  # share of batches trained with PTM-specific tokens (needs tasks' ptm_prototypes)
    rerank_max_k: int = 5  # a batch re-ranked with PTM tokens uses a random k in [1, rerank_max_k] per task


@dataclass
class TrainingResult:
    """What the trainer learned, and how it got there."""

    fitness: FitnessNetwork
    model_tokens: torch.Tensor  # (M, token_dim)
    best_epoch: int
    best_val_tau: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_tasks: list[str] = field(default_factory=list)
    val_tasks: list[str] = field(default_factory=list)
    rerank_val_tau: list[float] = field(default_factory=list)  # validation tau at k = 0, 1, ... (re-ranking trained)

    def best_rerank_k(self, tolerance: float = 0.0) -> int:
        """The smallest re-ranking depth whose validation tau is within ``tolerance`` of the best one: each k costs
        k forward passes of zoo models, so a depth must earn its cost."""
        if not self.rerank_val_tau:
            return 0
        taus = np.asarray(self.rerank_val_tau)
        return int(np.flatnonzero(taus >= taus.max() - tolerance)[0])


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module, *, frozen: bool = False):
    """Run ``module`` in eval mode (and with its parameters frozen if asked), restoring both afterwards."""
    was_training, grads = module.training, [p.requires_grad for p in module.parameters()]
    module.eval()
    if frozen:
        module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, g in zip(module.parameters(), grads):
            p.requires_grad_(g)
        module.train(was_training)


def evaluate(
    fitness: FitnessNetwork, model_tokens: torch.Tensor, tasks: list[TrainingTask], *, rerank_k: int = 0
) -> float:
    """Mean weighted Kendall tau of the network's scores against the tasks' known performance.

    With ``rerank_k > 0`` the two-stage inference is evaluated: the top ``rerank_k`` models by token-only score
    that have PTM prototypes are re-scored with them and stay on top (see [`merge_rerank`]).
    """
    if not tasks:
        return float("nan")
    scores = score_tasks(fitness, model_tokens, [t.prototypes for t in tasks])
    if rerank_k > 0:
        scores = torch.stack([rerank_task(fitness, model_tokens, t, s, rerank_k)  # a loop over tasks, k ≪ M
                              for t, s in zip(tasks, scores)])
    taus = [weighted_tau(t.performance.numpy(), s) for t, s in zip(tasks, scores.numpy())]
    return float(np.nanmean(taus))


@torch.no_grad()
def rerank_task(
    fitness: FitnessNetwork, model_tokens: torch.Tensor, task: TrainingTask, base: torch.Tensor, k: int
) -> torch.Tensor:
    """Second stage for one task: re-score the top-``k`` models (that have PTM prototypes) and merge. ``(M,)``."""
    order = torch.argsort(base, descending=True)
    top = torch.tensor([int(m) for m in order if int(m) in task.ptm_prototypes][:k], dtype=torch.long)
    if len(top) == 0:
        return base
    protos = task.prototypes.unsqueeze(0)
    with eval_mode(fitness):
        extra, mask = fitness.ptm_tokens([{int(m): task.ptm_prototypes[int(m)] for m in top}], len(base),
                                         protos.shape[1])
        rescored = fitness(model_tokens, protos, None, extra, mask)[0]
    return merge_rerank(base, rescored, top)


@torch.no_grad()
def score_tasks(fitness: FitnessNetwork, model_tokens: torch.Tensor, prototypes: list[torch.Tensor]) -> torch.Tensor:
    """Scores ``(T, M)`` of every model on every task, token-only, in eval mode, one batched call."""
    batch, mask = pad_prototypes(prototypes)
    with eval_mode(fitness):
        return fitness(model_tokens, batch, mask)


def split_tasks(tasks: list[TrainingTask], val_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded split of tasks into (train, validation)."""
    perm = np.random.default_rng(seed).permutation(len(tasks))
    n_val = max(1, int(round(val_fraction * len(tasks)))) if len(tasks) > 1 else 0
    return [tasks[i] for i in sorted(perm[n_val:])], [tasks[i] for i in sorted(perm[:n_val])]


def train_spider(
    tasks: list[TrainingTask],
    *,
    num_models: int,
    fitness_config: FitnessConfig,
    config: TrainingConfig | None = None,
    val_tasks: list[TrainingTask] | None = None,
    verbose: bool = True,
) -> TrainingResult:
    """Learn model tokens and the fitness network with ListMLE, early-stopped on validation weighted tau.

    Deterministic on CPU for a given seed; the global torch RNG is left untouched.

    Args:
        tasks: Training tasks; each ``performance`` has ``num_models`` entries in zoo order.
        num_models: Size of the zoo ``M``.
        fitness_config: Sizes of the fitness network.
        config: Optimisation settings (default [`TrainingConfig`]).
        val_tasks: Validation tasks; default: a seeded ``config.val_fraction`` of ``tasks``.
        verbose: Show a progress bar.

    Returns:
        A [`TrainingResult`] holding the best (by validation) network and tokens.
    """
    from tqdm.auto import tqdm

    config = config or TrainingConfig()
    _check_tasks(tasks + (val_tasks or []), num_models, fitness_config.task_dim)
    if val_tasks is None:
        tasks, val_tasks = split_tasks(tasks, config.val_fraction, config.seed)
    if not tasks:
        raise InvalidInputError("No training tasks left after the validation split; add tasks or lower val_fraction.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        fitness = FitnessNetwork(fitness_config)
        tokens = torch.nn.Parameter(0.02 * torch.randn(num_models, fitness_config.token_dim))
        opt = torch.optim.AdamW([*fitness.parameters(), tokens], lr=config.lr, weight_decay=config.weight_decay)
        gen = torch.Generator().manual_seed(config.seed)
        targets = torch.stack([t.performance for t in tasks])  # (T, M)
        best = (-float("inf"), -1, None)
        history: list[dict[str, float]] = []
        bar = tqdm(range(config.epochs), desc="Training selector", disable=not verbose)
        for epoch in bar:
            fitness.train()
            losses = []
            for idx in torch.randperm(len(tasks), generator=gen).split(config.batch_size):
                batch, mask = pad_prototypes([tasks[i].prototypes for i in idx])
                extra = extra_mask = None
                if config.rerank_prob > 0 and torch.rand(1, generator=gen).item() < config.rerank_prob:
                    ptm = _sample_ptm([tasks[i] for i in idx], config.rerank_max_k, gen)
                    extra, extra_mask = fitness.ptm_tokens(ptm, num_models, batch.shape[1])
                loss = listmle_loss(fitness(tokens, batch, mask, extra, extra_mask), targets[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            val_tau = _validation_score(fitness, tokens.detach(), val_tasks, config) if val_tasks else (
                -float(np.mean(losses))
            )
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_weighted_tau": val_tau})
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_tau=f"{val_tau:.3f}")
            if val_tau > best[0]:
                best = (val_tau, epoch, (copy.deepcopy(fitness.state_dict()), tokens.detach().clone()))
            elif epoch - best[1] >= config.patience:
                logger.info("Early stop at epoch %d (best %d, val tau %.4f)", epoch, best[1], best[0])
                break
    fitness.load_state_dict(best[2][0])
    fitness.eval()
    sweep = []
    if config.rerank_prob > 0 and val_tasks:
        # the default depth is chosen here, on validation tasks, never on the tasks a benchmark reports
        sweep = [round(evaluate(fitness, best[2][1], val_tasks, rerank_k=k), 4) for k in range(num_models + 1)]
    return TrainingResult(
        fitness=fitness,
        model_tokens=best[2][1],
        best_epoch=best[1],
        best_val_tau=best[0],
        history=history,
        train_tasks=[t.name for t in tasks],
        val_tasks=[t.name for t in val_tasks],
        rerank_val_tau=sweep,
    )


def _sample_ptm(tasks: list[TrainingTask], max_k: int, gen: torch.Generator) -> list[dict[int, torch.Tensor]]:
    """The paper's re-ranking curriculum: one random k per batch, then k random models with PTM prototypes."""
    k = int(torch.randint(1, max_k + 1, (1,), generator=gen))
    out = []
    for task in tasks:
        available = sorted(task.ptm_prototypes)
        pick = torch.randperm(len(available), generator=gen)[:k].tolist()
        out.append({available[i]: task.ptm_prototypes[available[i]] for i in pick})
    return out


def _validation_score(fitness, tokens, val_tasks, config: TrainingConfig) -> float:
    """Token-only validation tau, averaged with the re-ranked one when the re-ranking stage is trained too."""
    tau = evaluate(fitness, tokens, val_tasks)
    if config.rerank_prob > 0:
        tau = 0.5 * (tau + evaluate(fitness, tokens, val_tasks, rerank_k=config.rerank_max_k))
    return tau


def fit_model_token(
    fitness: FitnessNetwork,
    model_tokens: torch.Tensor,
    probe_tasks: list[TrainingTask],
    *,
    steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """Learn one new model's token with the fitness network and every other token frozen.

    The probe tasks rank the zoo *plus* the new model (``performance`` has ``M + 1`` entries, the new model last),
    e.g. from measured accuracies or aggregated transferability estimates; ListMLE over those lists places the
    new token where its ranking behaviour fits. Nothing else changes, so existing rankings are untouched.

    The problem is non-convex (the network was trained on M tokens only), so ``M + 1`` candidates start at every
    zoo token and at their mean and are optimised together in one batch: a pair's score does not depend on the
    other models, so the zoo's scores are computed once and each candidate is slotted into its own copy of the
    lists. The candidate with the lowest final loss wins.

    Shape:
        model_tokens: (M, D). Returns (D,).
    """
    M, D = model_tokens.shape
    _check_tasks(probe_tasks, M + 1, fitness.config.task_dim)
    batch, mask = pad_prototypes([t.prototypes for t in probe_tasks])
    targets = torch.stack([t.performance for t in probe_tasks])  # (T, M + 1)
    frozen = model_tokens.detach()
    with eval_mode(fitness, frozen=True):
        zoo_scores = fitness(frozen, batch, mask)  # (T, M), constant
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            starts = torch.cat([frozen, frozen.mean(0, keepdim=True)])  # (K, D), K = M + 1
            candidates = torch.nn.Parameter(starts + 0.02 * torch.randn_like(starts))
            opt = torch.optim.Adam([candidates], lr=lr)
            for step in range(steps + 1):  # full batch: probe sets are small
                losses = _candidate_losses(fitness(candidates, batch, mask), zoo_scores, targets)  # (K,)
                if step == steps:
                    break
                opt.zero_grad()
                losses.sum().backward()
                opt.step()
    return candidates[losses.argmin()].detach().clone()


def _candidate_losses(cand_scores: torch.Tensor, zoo_scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ListMLE of each candidate slotted in as model ``M``. ``(T, K), (T, M), (T, M + 1) -> (K,)``."""
    T, K = cand_scores.shape
    lists = torch.cat([zoo_scores.unsqueeze(0).expand(K, T, -1), cand_scores.T.unsqueeze(-1)], dim=2)  # (K, T, M+1)
    flat = listmle_loss(lists.reshape(K * T, -1), targets.repeat(K, 1), reduction="none")  # (K*T,)
    return flat.reshape(K, T).nanmean(1)


def _check_tasks(tasks: list[TrainingTask], num_models: int, task_dim: int) -> None:
    if not tasks:
        raise InvalidInputError("No training tasks given.")
    for t in tasks:
        if t.performance.shape[0] != num_models:
            raise InvalidInputError(
                f"Task {t.name!r} has performance for {t.performance.shape[0]} models; the zoo has {num_models}."
            )
        if t.prototypes.shape[1] != task_dim:
            raise InvalidInputError(
                f"Task {t.name!r} has prototypes of width {t.prototypes.shape[1]}; the task encoder gives {task_dim}."
            )
        if not torch.isfinite(t.prototypes).all():
            raise InvalidInputError(f"Task {t.name!r} has NaN or inf prototypes.")
