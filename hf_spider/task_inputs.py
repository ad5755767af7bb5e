"""The model prior and explicit model-task inputs, added to the fitness network's score.

Version 2 of the scoring: ``score_m = prior_scale * prior_m + shrinkage * (weights @ x_m(task) + network_weight *
fitness_m(task))``. ``prior_m`` is model ``m``'s mean rank-normalised accuracy over the selector's training targets
(its typical rank); ``x_m(task)`` are explicit (model, task) inputs (``GROUPS``); the fitness network reads model
and task tokens as before. ``shrinkage = 0`` is exactly the average-rank prior: a selector whose task inputs did not
help on held-out training targets falls back to it instead of ranking below it.

Everything here is computed from class names and model metadata, so a Hub dataset is ranked without its data.
Stored in the selector repo as ``config.json["task_inputs"]`` (``TaskInputsConfig``) and ``task_inputs.*`` tensors
in ``model.safetensors``; a selector without them scores with the fitness network alone, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import ArtifactError, InvalidInputError
from .training import listmle_loss

# label_match: cosine between the task's mean class-name embedding and the model's own (source) label names.
# description_match: the same against the model's description (its id, read as words, and its source dataset).
# classes_x_size: log(class count) x standardised log10(parameters); model_size: standardised log10(parameters).
GROUPS = ("label_match", "description_match", "classes_x_size", "model_size")
PREFIX = "task_inputs."
_NEEDS = {"label_match": "label_embedding", "description_match": "description_embedding",
          "classes_x_size": "log_parameters", "model_size": "log_parameters"}


@dataclass
class TaskInputsConfig:
    """How the prior and the task inputs are combined (``config.json["task_inputs"]``)."""

    groups: list[str] = field(default_factory=list)  # kept inputs, in ``weights`` order (subset of GROUPS)
    prior_scale: float = 1.0  # weight of the prior (its unit: rank-normalised accuracy)
    shrinkage: float = 0.0  # lambda: 0 = prior only
    network_weight: float = 0.0  # 0 = the fitness network is not used
    feature_mean: list[float] = field(default_factory=list)  # standardisation of x, one per group
    feature_std: list[float] = field(default_factory=list)
    chosen_by: str = ""  # how the above were chosen (for the card)

    @classmethod
    def from_dict(cls, data: Any) -> TaskInputsConfig:
        """Validate ``config.json["task_inputs"]``.

        Raises:
            ArtifactError: unknown fields or groups, non-finite numbers, lengths that do not match ``groups``.
        """
        if not isinstance(data, Mapping):
            raise ArtifactError("config.json: task_inputs must be a JSON object.")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ArtifactError(f"config.json: task_inputs has unknown fields {sorted(unknown)}.")
        try:
            config = cls(**data)
            numbers = [float(config.prior_scale), float(config.shrinkage), float(config.network_weight),
                       *map(float, config.feature_mean), *map(float, config.feature_std)]
        except (TypeError, ValueError) as err:
            raise ArtifactError(f"config.json: task_inputs has wrong fields: {err}") from err
        if not all(np.isfinite(numbers)):
            raise ArtifactError("config.json: task_inputs holds a non-finite number.")
        bad = [g for g in config.groups if g not in GROUPS]
        if bad or len(set(config.groups)) != len(config.groups):
            raise ArtifactError(f"config.json: task_inputs.groups {config.groups} must be distinct names from "
                                f"{GROUPS}.")
        if not len(config.feature_mean) == len(config.feature_std) == len(config.groups):
            raise ArtifactError("config.json: task_inputs.feature_mean/feature_std need one entry per group.")
        return config


def mean_direction(embeddings: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of L2-normalised rows ``(N, d)`` -> ``(d,)``."""
    mean = torch.nn.functional.normalize(embeddings.float(), dim=-1).mean(0)
    return mean / mean.norm().clamp_min(1e-8)


def raw_features(groups: list[str], prototypes: torch.Tensor, model_side: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Unstandardised task inputs ``(M, K)`` of every model for one task.

    Args:
        groups: Names from ``GROUPS``, in column order.
        prototypes: ``(C, d)`` class-name embeddings of the task.
        model_side: ``label_embedding`` / ``description_embedding`` ``(M, d)`` (unit rows; zero rows = unknown),
            ``log_parameters`` ``(M,)`` (standardised; 0 = unknown), as each group needs.
    """
    task = mean_direction(prototypes)
    columns = []
    for group in groups:
        needed = model_side.get(_NEEDS[group])
        if needed is None:
            raise InvalidInputError(f"Task input {group!r} needs the model-side tensor {_NEEDS[group]!r}.")
        if group in ("label_match", "description_match"):
            columns.append(needed.float() @ task)
        elif group == "classes_x_size":
            columns.append(float(np.log(prototypes.shape[0])) * needed.float())
        else:
            columns.append(needed.float())
    if not columns:
        return torch.zeros(next(iter(model_side.values())).shape[0], 0)
    return torch.stack(columns, 1)


class TaskInputs:
    """The prior and task-input part of a selector's score. ``score(fitness, prototypes) -> (M,)``."""

    def __init__(self, config: TaskInputsConfig, prior: torch.Tensor, weights: torch.Tensor,
                 model_side: Mapping[str, torch.Tensor]) -> None:
        self.config = config
        self.prior = prior.float()
        self.weights = weights.float()
        self.model_side = {k: v.float() for k, v in model_side.items()}

    @property
    def num_models(self) -> int:
        return self.prior.shape[0]

    def features(self, prototypes: torch.Tensor) -> torch.Tensor:
        """Standardised task inputs ``(M, K)`` for one task's class prototypes ``(C, d)``."""
        if not self.config.groups:
            return torch.zeros(self.num_models, 0)
        x = raw_features(self.config.groups, prototypes, self.model_side)
        return (x - torch.tensor(self.config.feature_mean)) / torch.tensor(self.config.feature_std)

    def score(self, fitness: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """``prior_scale * prior + shrinkage * (features @ weights + network_weight * fitness)``, ``(M,)``."""
        c = self.config
        deviation = self.features(prototypes) @ self.weights
        if c.network_weight:
            deviation = deviation + c.network_weight * fitness.float()
        return c.prior_scale * self.prior + c.shrinkage * deviation

    def tensors(self) -> dict[str, torch.Tensor]:
        """What ``model.safetensors`` stores, keys prefixed with ``task_inputs.``."""
        out = {"prior": self.prior, "weights": self.weights, **self.model_side}
        return {PREFIX + k: v.contiguous() for k, v in out.items()}

    @classmethod
    def from_state(cls, config: Any, state: dict[str, torch.Tensor], num_models: int) -> TaskInputs:
        """Rebuild from ``config.json["task_inputs"]`` and the ``task_inputs.*`` tensors of ``model.safetensors``.

        Raises:
            ArtifactError: a tensor is missing, of the wrong shape or not finite.
        """
        config = config if isinstance(config, TaskInputsConfig) else TaskInputsConfig.from_dict(config)
        tensors = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
        needed = {"prior", "weights", *(_NEEDS[g] for g in config.groups)}
        missing = needed - set(tensors)
        if missing:
            raise ArtifactError(f"model.safetensors lacks {sorted(PREFIX + m for m in missing)} for its task inputs.")
        for name, value in tensors.items():
            rows = len(config.groups) if name == "weights" else num_models
            if value.dim() < 1 or value.shape[0] != rows or not torch.isfinite(value).all():
                raise ArtifactError(f"model.safetensors: {PREFIX}{name} has shape {tuple(value.shape)} (expected "
                                    f"{rows} finite rows).")
        side = {k: v for k, v in tensors.items() if k not in ("prior", "weights")}
        return cls(config, tensors["prior"], tensors["weights"], side)

    def extend(self, prior: float = 0.5) -> None:
        """Make room for one more model (``add_model``): ``prior`` and unknown metadata (zeros)."""
        self.prior = torch.cat([self.prior, torch.tensor([prior])])
        self.model_side = {k: torch.cat([v, torch.zeros(1, *v.shape[1:])]) for k, v in self.model_side.items()}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for cards and ``hf-spider info``."""
        return {**asdict(self.config), "weights": [round(float(w), 4) for w in self.weights]}


def fit_linear(prior: torch.Tensor, x: torch.Tensor, performance: torch.Tensor, *, l2: float = 1e-2,
               max_iter: int = 50) -> tuple[float, torch.Tensor]:
    """Fit ``prior_scale`` and the input weights by ListMLE over training tasks (full batch, L-BFGS).

    Args:
        prior: ``(T, M)`` each training task's prior, computed *without* that task (leave-one-out), so the
            weights learn how far the prior can be trusted on a task it has not seen.
        x: ``(T, M, K)`` standardised task inputs. performance: ``(T, M)``, NaN = unknown.
        l2: Penalty on the input weights (not on the prior's scale).
        max_iter: L-BFGS iterations (a handful of parameters: it converges in a few dozen).

    Returns:
        ``(prior_scale, weights (K,))``.
    """
    weights = torch.zeros(x.shape[2], requires_grad=True)
    scale = torch.tensor(4.0, requires_grad=True)
    opt = torch.optim.LBFGS([weights, scale], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = listmle_loss(scale * prior + x @ weights, performance) + l2 * weights.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(scale.detach()), weights.detach().clone()
