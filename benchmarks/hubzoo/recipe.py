"""The Hub-zoo selector recipe: the average-rank prior + task inputs + the fitness network, chosen by nested LOTO.

``score_m = s * prior_m + w @ x_m(task) + lambda * g_m(task)`` (``hf_spider.task_inputs``), where ``prior_m`` is
model ``m``'s mean rank over the training targets, ``x`` the explicit task inputs and ``g`` the fitness network
(metadata model tokens, label-name task token) trained on the deviation from ``s * prior + w @ x``.

Inside one outer fold (training targets ``targets``, the held-out target is never passed in):

1. Every training target's prior is computed *without* that target (leave-one-out), so ``s`` and ``w`` learn how far
   the prior carries to a target it has not seen; the prior used to rank the held-out target is the mean over all
   of ``targets``.
2. Inputs: forward selection over ``GROUPS`` by an inner leave-one-target-out over ``targets``; an input is kept
   only if it raises the inner mean Kendall tau by at least ``tolerance`` (none kept: ``w @ x`` is dropped and the
   score is the prior's).
3. Network epochs and its weight ``lambda`` (the shrinkage of the network's deviation; 0 = no network) by inner
   held-out targets (a seeded subset); ``lambda = 0`` is kept unless another choice beats it by ``tolerance`` on the
   inner mean and on every inner held-out target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from hf_spider.evaluation import kendall_tau
from hf_spider.fitness import FitnessConfig
from hf_spider.hubzoo import label_text_prompts, model_source_labels
from hf_spider.model_meta import MetaTrainingConfig, train_meta_spider
from hf_spider.task_inputs import GROUPS, fit_linear, mean_direction, raw_features

from .common import SideData, encode_texts, training_tasks


@dataclass
class Recipe:
    """Everything the nested LOTO chooses from, and the fixed settings."""

    fitness: FitnessConfig = field(default_factory=lambda: FitnessConfig(token_dim=32, num_heads=4, num_layers=1))
    training: MetaTrainingConfig = field(default_factory=lambda: MetaTrainingConfig(
        lr=3e-3, models_per_step=128, max_classes=32, residual=True))
    groups: tuple[str, ...] = GROUPS
    epoch_grid: tuple[int, ...] = (0, 10, 20)  # 0 = no fitness network
    shrinkage_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)  # network weight lambda
    net_folds: int = 4  # inner held-out targets for the network / shrinkage choice
    seeds: tuple[int, ...] = (0, 1)  # network ensemble (mean of the seeds' scores)
    tolerance: float = 0.005  # inner mean-tau gain a non-prior choice must show
    l2: float = 1e-2  # penalty on the input weights


def model_side(data: SideData) -> dict[str, torch.Tensor]:
    """The model-side tensors the task inputs read (what a bundled selector stores): unit label and description
    embeddings (zero rows where unknown) and standardised log10 parameter counts (0 where unknown)."""
    meta = data.records.model_meta
    side = data.records.side
    labels = []
    for _, row in meta.iterrows():
        names = model_source_labels(row)
        labels.append(mean_direction(encode_texts(label_text_prompts(names, side))) if names else None)
    dim = next(e.shape[0] for e in labels if e is not None)
    label = torch.stack([e if e is not None else torch.zeros(dim) for e in labels])
    descriptions = [_description(m, meta.loc[m, "source_dataset"]) for m in data.records.models]
    description = torch.nn.functional.normalize(encode_texts(descriptions).float(), dim=-1)
    logp = np.log10(meta["num_parameters"].astype(float).to_numpy())
    known = np.isfinite(logp)
    logp = np.where(known, (logp - logp[known].mean()) / (logp[known].std() + 1e-8), 0.0)
    return {"label_embedding": label, "description_embedding": description,
            "log_parameters": torch.tensor(logp, dtype=torch.float32)}


def _description(model_id: str, source: object) -> str:
    words = model_id.split("/")[-1].replace("-", " ").replace("_", " ")
    return f"{words} ({source})" if isinstance(source, str) and source else words


def ranks(data: SideData, seen: np.ndarray | None) -> np.ndarray:
    """``(T, M)`` rank-normalised accuracies in (0, 1]; NaN where no run or model unseen."""
    from .run import rank_normalise

    acc = data.accuracy if seen is None else np.where(seen[None, :], data.accuracy, np.nan)
    return np.stack([rank_normalise(a) for a in acc])


_PRIORS: dict[tuple, np.ndarray] = {}


def prior(data: SideData, targets: list[str], seen: np.ndarray | None) -> np.ndarray:
    """``(M,)`` mean rank over ``targets``; models without a run there: the zoo_mean ridge from metadata."""
    from .run import zoo_mean

    # memoised: the nested folds ask for the same target subsets many times (the ridge solve dominates)
    rows = data.accuracy[[data.records.targets.index(t) for t in sorted(targets)]]
    key = (data.records.side, tuple(sorted(targets)), None if seen is None else seen.tobytes(), rows.tobytes())
    if key not in _PRIORS:
        _PRIORS[key] = zoo_mean(data, targets, seen) / 4 + 0.5  # zoo_mean is 4 * (mean rank - 0.5)
    return _PRIORS[key].copy()


def loo_priors(data: SideData, targets: list[str], seen: np.ndarray | None) -> torch.Tensor:
    """``(T', M)``: each training target's prior computed from the *other* training targets only."""
    return torch.tensor(np.stack([prior(data, [u for u in targets if u != t], seen) for t in targets]),
                        dtype=torch.float32)


@dataclass
class Linear:
    """The prior + task-input part fitted on some targets."""

    groups: list[str]
    scale: float
    weights: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    prior: torch.Tensor  # (M,) over all the fit's targets

    def x(self, side: dict, prototypes: torch.Tensor) -> torch.Tensor:
        return (raw_features(self.groups, prototypes, side) - self.mean) / self.std

    def deviation(self, side: dict, prototypes: torch.Tensor) -> torch.Tensor:
        return self.x(side, prototypes) @ self.weights


def fit_linear_part(data: SideData, side: dict, targets: list[str], seen: np.ndarray | None, groups: list[str],
                    l2: float) -> Linear:
    """Fit ``s`` and ``w`` on ``targets`` with leave-one-out priors (ListMLE)."""
    raw = torch.stack([raw_features(groups, data.prototypes[t], side) for t in targets])  # (T', M, K)
    if groups:
        mean, std = raw.mean((0, 1)), raw.std((0, 1)).clamp_min(1e-6)
    else:
        mean, std = torch.zeros(0), torch.ones(0)
    performance = torch.tensor(np.stack([ranks(data, seen)[data.records.targets.index(t)] for t in targets]),
                               dtype=torch.float32)
    scale, weights = fit_linear(loo_priors(data, targets, seen), (raw - mean) / std, performance, l2=l2)
    full = torch.tensor(prior(data, targets, seen), dtype=torch.float32)
    return Linear(list(groups), scale, weights, mean, std, full)


def _truth(data: SideData, target: str) -> np.ndarray:
    return data.accuracy[data.records.targets.index(target)]


def select_groups(data: SideData, side: dict, targets: list[str], seen: np.ndarray | None,
                  recipe: Recipe) -> dict:
    """Forward selection of task inputs by inner leave-one-target-out over ``targets`` (mean Kendall tau)."""
    def inner_tau(groups: list[str]) -> float:
        taus = []
        for held in targets:
            rest = [t for t in targets if t != held]
            fit = fit_linear_part(data, side, rest, seen, groups, recipe.l2)
            score = fit.scale * fit.prior + fit.deviation(side, data.prototypes[held])
            taus.append(kendall_tau(_truth(data, held), score.numpy()))
        return float(np.nanmean(taus))

    chosen: list[str] = []
    best = base = inner_tau([])
    alone = {g: round(inner_tau([g]) - base, 4) for g in recipe.groups}  # each input's own inner effect
    while True:
        trials = {g: (alone[g] + base if not chosen else inner_tau([*chosen, g]))
                  for g in recipe.groups if g not in chosen}
        if not trials:
            break
        group = max(trials, key=trials.get)
        if trials[group] < best + recipe.tolerance:
            break
        chosen.append(group)
        best = trials[group]
    return {"groups": chosen, "inner_tau_prior": round(base, 4), "inner_tau_chosen": round(best, 4),
            "inner_gain_alone": alone}


def _net_config(recipe: Recipe, epochs: int, seed: int, probe: tuple[int, ...] = ()) -> MetaTrainingConfig:
    return MetaTrainingConfig(**{**asdict(recipe.training), "epochs": epochs, "seed": seed, "probe_epochs": probe})


def _offsets(data: SideData, side: dict, targets: list[str], seen: np.ndarray | None, fit: Linear) -> np.ndarray:
    """``(T', M)`` what the network's deviation is added to, on each training target (leave-one-out prior)."""
    loo = loo_priors(data, targets, seen)
    dev = torch.stack([fit.deviation(side, data.prototypes[t]) for t in targets])
    return (fit.scale * loo + dev).numpy()


def choose_network(data: SideData, side: dict, targets: list[str], seen: np.ndarray | None, groups: list[str],
                   recipe: Recipe) -> dict:
    """Network epochs and weight (0 = no network) by inner held-out targets; no network unless it wins."""
    rng = np.random.default_rng(len(targets) * 7919 + sum(map(ord, "".join(targets))))
    inner = [targets[i] for i in sorted(rng.choice(len(targets), min(recipe.net_folds, len(targets)), False))]
    trained = [e for e in recipe.epoch_grid if e > 0]
    taus: dict[tuple[int, float], list[float]] = {}
    for held in inner:
        rest = [t for t in targets if t != held]
        fit = fit_linear_part(data, side, rest, seen, groups, recipe.l2)
        protos = data.prototypes[held]
        devs = {0: fit.deviation(side, protos).numpy()}
        if trained:
            result = train_meta_spider(training_tasks(data, rest, seen), data.features, fitness_config=recipe.fitness,
                                       config=_net_config(recipe, max(trained), 0, tuple(trained)), seen=seen,
                                       probe=[protos], offsets=_offsets(data, side, rest, seen, fit))
            devs.update({e: devs[0] + s[0] for e, s in result.probe_scores.items()})
        for epochs, dev in devs.items():
            for lam in sorted({0.0, *recipe.shrinkage_grid}):  # lambda = 0: the prior alone, always a candidate
                score = fit.scale * fit.prior.numpy() + devs[0] + lam * (dev - devs[0])
                taus.setdefault((epochs, lam), []).append(kendall_tau(_truth(data, held), score))
    mean = {k: float(np.nanmean(v)) for k, v in taus.items()}
    base = taus[(0, 0.0)]
    # A choice other than the prior alone must gain `tolerance` on the inner mean AND beat the prior on every inner
    # held-out target: with a handful of inner targets one lucky fold must not carry a network into the score.
    accepted = [k for k in mean if k == (0, 0.0) or (
        mean[k] >= mean[(0, 0.0)] + recipe.tolerance and all(a > b for a, b in zip(taus[k], base)))]
    best = max(accepted, key=lambda k: (mean[k], -k[1], -k[0]))
    return {"epochs": best[0], "network_weight": best[1], "net_inner_targets": inner,
            "inner_tau": {f"{e}/{lam}": round(v, 4) for (e, lam), v in sorted(mean.items())}}


@dataclass
class FoldModel:
    """A fitted selector of one fold (or of all targets, for the bundled selectors)."""

    linear: Linear
    network_weight: float  # lambda
    nets: list  # MetaTrainingResult per seed (empty: no network)
    side: dict
    choice: dict

    def score(self, prototypes: torch.Tensor, *, task_free: bool = False) -> np.ndarray:
        """``(M,)`` scores; ``task_free`` keeps only what does not read the task (prior + model-only inputs)."""
        lin = self.linear
        if task_free:
            keep = torch.tensor([g == "model_size" for g in lin.groups], dtype=torch.float32)
            dev = lin.x(self.side, prototypes) @ (lin.weights * keep)
            return (lin.scale * lin.prior + dev).numpy().astype(float)
        dev = lin.deviation(self.side, prototypes) + self.network_weight * self.network(prototypes)
        return (lin.scale * lin.prior + dev).numpy().astype(float)

    @torch.no_grad()
    def network(self, prototypes: torch.Tensor) -> torch.Tensor:
        if not self.nets:
            return torch.zeros(self.linear.prior.shape[0])
        return torch.stack([r.fitness(r.model_tokens, prototypes.unsqueeze(0))[0] for r in self.nets]).mean(0)


def fit(data: SideData, side: dict, targets: list[str], seen: np.ndarray | None, recipe: Recipe) -> FoldModel:
    """The whole nested choice on ``targets``, then the final fit on all of them."""
    selection = select_groups(data, side, targets, seen, recipe)
    network = choose_network(data, side, targets, seen, selection["groups"], recipe)
    linear = fit_linear_part(data, side, targets, seen, selection["groups"], recipe.l2)
    nets = []
    if network["epochs"] and network["network_weight"]:
        offsets = _offsets(data, side, targets, seen, linear)
        nets = [train_meta_spider(training_tasks(data, targets, seen), data.features, fitness_config=recipe.fitness,
                                  config=_net_config(recipe, network["epochs"], seed), seen=seen, offsets=offsets)
                for seed in recipe.seeds]
    choice = {**selection, **network, "prior_scale": round(linear.scale, 4),
              "weights": {g: round(float(w), 4) for g, w in zip(linear.groups, linear.weights)}}
    return FoldModel(linear, network["network_weight"] if nets else 0.0, nets, side, choice)
