"""SpiderSelector: a trained Model Spider ranker that lives on the Hub like any model.

A selector repo holds ``config.json`` (sizes, task encoder), ``model.safetensors`` (the fitness network),
``zoo.json`` (model id → revision, task type, token sha256) and ``tokens/`` (its mirror copy of every model token),
plus a generated ``README.md``. Loading, saving and pushing follow huggingface_hub's ``ModelHubMixin``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelHubMixin

from . import hub
from .accuracy import AccuracyModel, ranked_fields
from .config import SelectorConfig
from .data import Modality, TaskSample, dataset_label_names, dataset_modality, readable_label, sample_task
from .errors import InvalidInputError
from .fitness import FitnessNetwork, merge_rerank
from .ids import check_model_id, check_selector_name
from .persistence import SelectorIOMixin
from .ranking import RankedModel, Ranking, select_models
from .rerank_stage import RerankMixin
from .task_inputs import TaskInputs
from .tokens import TaskEncoder, TaskToken, token_sha256
from .training import TrainingConfig, TrainingTask, train_spider
from .zoo import ZooMixin

logger = logging.getLogger(__name__)

RERANK_TOLERANCE = 0.005  # validation tau a deeper default re-rank must gain (~ the spread between training seeds)


class SpiderSelector(
    ZooMixin,
    RerankMixin,
    SelectorIOMixin,  # before ModelHubMixin: its save_pretrained / from_pretrained wrap the mixin's
    ModelHubMixin,
    library_name="hf-spider",
    tags=["hf-spider", "model-selection", "model-spider"],
    paper_url="https://arxiv.org/abs/2306.03900",
):
    """Rank the models of a zoo for a new dataset, from learned model tokens and a task token.

    Args:
        config: The selector's [`SelectorConfig`].
        fitness: The trained fitness network (default: freshly initialised from ``config.fitness``).
        zoo: The zoo's entries, in token order.
        model_tokens: ``(M, token_dim)`` tokens, row ``i`` for ``zoo[i]``.
        revision: Commit sha of the selector repo this was loaded from (``None`` for a folder or a new selector).
        accuracy: Maps rankings to predicted accuracies (``accuracy.json``); ``None``: rankings carry none.
        task_inputs: The model prior and task-input terms added to the fitness score (``hf_spider.task_inputs``);
            ``None``: the fitness network alone.

    Example:
        ```python
        >>> from hf_spider import SpiderSelector
        >>> selector = SpiderSelector.from_pretrained("org/spider-vision")
        >>> ranking = selector.rank("org/my-dataset", split="train", top_k=5)
        >>> model = ranking[0].load()
        ```
    """

    def __init__(
        self,
        config: SelectorConfig,
        fitness: FitnessNetwork | None = None,
        zoo: list[hub.ZooEntry] | None = None,
        model_tokens: torch.Tensor | None = None,
        *,
        revision: str | None = None,
        accuracy: AccuracyModel | None = None,
        task_inputs: TaskInputs | None = None,
    ) -> None:
        self.config = config
        self.accuracy = accuracy
        self.fitness = (fitness or FitnessNetwork(config.fitness)).eval()
        self.zoo = list(zoo or [])
        self.model_tokens = model_tokens if model_tokens is not None else torch.zeros(0, config.fitness.token_dim)
        self.revision = revision
        if self.model_tokens.shape != (len(self.zoo), config.fitness.token_dim):
            raise InvalidInputError(
                f"model_tokens has shape {tuple(self.model_tokens.shape)}; expected ({len(self.zoo)}, "
                f"{config.fitness.token_dim}) for a zoo of {len(self.zoo)} models."
            )
        if not torch.isfinite(self.model_tokens).all():  # NaN/inf tokens make every score NaN
            bad = [self.zoo[i].model_id for i in torch.nonzero(~torch.isfinite(self.model_tokens).all(1)).flatten()]
            raise InvalidInputError(f"The model tokens of {bad[:5]} hold NaN or inf; re-learn them (training "
                                    "diverged?) or reload the selector.")
        if task_inputs is not None and task_inputs.num_models != len(self.zoo):
            raise InvalidInputError(f"task_inputs describe {task_inputs.num_models} models; the zoo has "
                                    f"{len(self.zoo)}.")
        self.task_inputs = task_inputs
        self._encoder: TaskEncoder | None = None
        check_selector_name(config.name)  # it is written into cards, code snippets and shell lines
        for entry in self.zoo:  # a zoo built in Python may name local folders; none may hold control characters
            check_model_id(entry.model_id, where="zoo", local_ok=True)

    # --- building ------------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        tasks: list[TrainingTask],
        *,
        config: SelectorConfig,
        zoo: list[str],
        revisions: dict[str, str] | None = None,
        training: TrainingConfig | None = None,
        val_tasks: list[TrainingTask] | None = None,
        verbose: bool = True,
    ) -> SpiderSelector:
        """Train a selector on tasks whose zoo performance is known.

        Args:
            tasks: Training tasks; ``performance[i]`` belongs to ``zoo[i]``.
            config: The selector's configuration (task encoder, sizes).
            zoo: Model ids (Hub ids or folders), in the order of the tasks' performance vectors.
            revisions: Optional commit sha of each Hub model, recorded in ``zoo.json``.
            training: Optimisation settings.
            val_tasks: Validation tasks for early stopping (default: a split of ``tasks``).
            verbose: Show progress.
        """
        if len(set(zoo)) != len(zoo):
            raise InvalidInputError("The zoo lists a model twice; model ids must be unique.")
        result = train_spider(tasks, num_models=len(zoo), fitness_config=config.fitness, config=training,
                              val_tasks=val_tasks, verbose=verbose)
        config.training = {
            "training tasks": len(result.train_tasks),
            "validation tasks": len(result.val_tasks),
            "best epoch": result.best_epoch,
            "validation weighted tau": round(result.best_val_tau, 4),
            **{k: v for k, v in asdict(training or TrainingConfig()).items()},
        }
        if result.rerank_val_tau:
            config.rerank_k = result.best_rerank_k(RERANK_TOLERANCE)
            config.training["validation weighted tau by rerank k"] = result.rerank_val_tau
        task_type = f"{config.modality}-classification"
        revisions = revisions or {}
        entries = [
            hub.ZooEntry(model_id=m, revision=revisions.get(m), task_type=task_type,
                         token_sha256=token_sha256(tok), mirror=hub.mirror_name(m))
            for m, tok in zip(zoo, result.model_tokens)
        ]
        return cls(config, result.fitness, entries, result.model_tokens)

    # --- ranking -------------------------------------------------------------------------------------------

    @property
    def task_encoder(self) -> TaskEncoder:
        """The frozen task encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = TaskEncoder(self.config.task_encoder, modality=self._encoder_modality(),
                                        revision=self.config.task_encoder_revision)
        return self._encoder

    def _encoder_modality(self) -> Modality:
        return "text" if self.config.task_token_kind == "label_names" else self.config.modality

    def task_token(
        self,
        dataset: Any,
        *,
        split: str | None = None,
        input_column: str | None = None,
        label_column: str | None = None,
        seed: int = 0,
        revision: str | None = None,
        verbose: bool = True,
    ) -> TaskToken:
        """Summarise a dataset as the task token this selector reads (class prototypes).

        Selectors with ``task_token_kind="label_names"`` read only the class names (from the dataset's metadata when
        it has a ``ClassLabel`` column), so a Hub dataset is ranked without downloading its data.
        """
        if self.config.task_token_kind == "label_names":  # no sample is drawn, so check the modality here
            self.check_modality(dataset_modality(dataset, input_column=input_column, revision=revision),
                                dataset_name=_describe(dataset, split))
            names = dataset_label_names(dataset, split=split, label_column=label_column, revision=revision)
            return self.label_name_token(names)
        sample = self._sample(dataset, split=split, input_column=input_column, label_column=label_column, seed=seed,
                              revision=revision)
        return self._sample_token(sample, verbose=verbose)

    def check_modality(self, modality: str | None, *, dataset_name: str = "the dataset") -> None:
        """Refuse a dataset whose inputs are not what this selector's zoo reads (``None``: unknown, not checked).

        Raises:
            InvalidInputError: naming both modalities and the fix.
        """
        if modality is not None and modality != self.config.modality:
            raise InvalidInputError(
                f"The selector {self.config.name!r} ranks {self.config.modality} models, but {dataset_name} holds "
                f"{modality} inputs. Use {'an' if modality == 'image' else 'a'} {modality} selector (e.g. --selector "
                f"bundled:hubzoo-{modality}), or pass "
                "the right input column."
            )

    def label_name_token(self, label_names: list[str]) -> TaskToken:
        """A task token from class names alone (for selectors with ``task_token_kind="label_names"``)."""
        prompts = [self.config.label_prompt.format(readable_label(n)) for n in label_names]
        return TaskToken(self.task_encoder.encode_texts(prompts), list(label_names), self.config.task_encoder)

    @torch.no_grad()
    def score(self, task: TaskToken) -> np.ndarray:
        """Fitness score of every zoo model for ``task``, in zoo order, in one batched call. ``(M,)``."""
        if task.prototypes.shape[1] != self.config.fitness.task_dim:
            raise InvalidInputError(
                f"Task prototypes have width {task.prototypes.shape[1]}, this selector expects "
                f"{self.config.fitness.task_dim} (from {self.config.task_encoder})."
            )
        if self.task_inputs is not None and not self.task_inputs.config.network_weight:
            fitness = torch.zeros(len(self.zoo))  # the network is not part of this selector's score
        else:
            fitness = self.fitness(self.model_tokens, task.prototypes.unsqueeze(0))[0]  # (M,)
        return self._combine(fitness, task).numpy().astype(np.float64)

    def _combine(self, fitness: torch.Tensor, task: TaskToken) -> torch.Tensor:
        """The fitness scores plus the prior and task-input terms, when this selector has them. ``(M,)``."""
        return fitness if self.task_inputs is None else self.task_inputs.score(fitness, task.prototypes)

    def rank(
        self,
        dataset: Any,
        *,
        split: str | None = None,
        input_column: str | None = None,
        label_column: str | None = None,
        top_k: int | None = None,
        rerank: int | None = None,
        seed: int = 0,
        revision: str | None = None,
        verbose: bool = True,
        max_parameters: int | None = None,
        estimator: str | None = None,
    ) -> Ranking:
        """Rank the zoo for a dataset, best first.

        Args:
            dataset: A ``datasets.Dataset``/``DatasetDict``, a Hub dataset id or a local folder.
            split: Split to read (default ``"train"``).
            input_column: Image or text column (default: inferred).
            label_column: Class column (default: inferred).
            top_k: Keep only the best ``top_k`` models (default: all).
            rerank: Re-rank the top ``rerank`` models with prototypes from their own features: ``rerank``
                forward passes over the class-balanced sample (default: ``config.rerank_k``, chosen on
                validation tasks; 0 = tokens only, no forward pass of any zoo model).
            seed: Seed of the class-balanced sample.
            revision: Dataset revision, for a Hub id.
            verbose: Show progress bars.
            max_parameters: Show only models with at most this many parameters (models of unknown size are left
                out; a note says how many).
            estimator: Re-rank with a transferability estimator instead (e.g. ``"logme"``, see
                ``hf_spider.estimators.ESTIMATORS``): the top ``rerank`` models by token score run on the sample
                (``rerank`` forward passes; default ``config.cascade``'s learned depth), and are re-ordered by their
                token score fused with the estimator's, with the weight the selector learned for that estimator (0.5
                and a note when it learned none). Needs no PTM projections. A selector with a learned cascade and no
                PTM projections re-ranks with its cascade's estimator whenever ``rerank`` > 0.

        Returns:
            A [`Ranking`] (mirrors of one model shown once, with their ``aliases``); ``ranking[0].load()`` gives
            the best model ready for fine-tuning.

        Raises:
            InvalidInputError: unusable dataset or arguments (the message says how to fix it).
        """
        if top_k is not None and top_k < 1:
            raise InvalidInputError(f"top_k must be ≥ 1 or None, got {top_k}.")
        start = time.perf_counter()
        name = _describe(dataset, split)
        if estimator is None and rerank and not len(self.fitness.ptm_proj) and self.config.cascade:
            estimator = self.config.cascade["estimator"]  # this selector re-ranks with its learned cascade
        if estimator is not None:
            return self._rank_cascade(dataset, estimator, rerank, top_k=top_k, dataset_name=name, start=start,
                                      max_parameters=max_parameters, verbose=verbose, split=split,
                                      input_column=input_column, label_column=label_column, seed=seed,
                                      revision=revision)
        k = self.config.rerank_k if rerank is None else rerank
        if k < 0:
            raise InvalidInputError(f"rerank must be ≥ 0, got {k}.")
        if k and not len(self.fitness.ptm_proj):
            raise InvalidInputError(
                "This selector was trained without the re-ranking stage (no PTM projections); call rank(rerank=0), "
                "or train it with TrainingConfig(rerank_prob > 0) on tasks with ptm_prototypes."
            )
        if not k:
            task = self.task_token(dataset, split=split, input_column=input_column, label_column=label_column,
                                   seed=seed, revision=revision, verbose=verbose)
            return self.rank_task(task, top_k=top_k, dataset_name=name, start=start, max_parameters=max_parameters)
        sample = self._sample(dataset, split=split, input_column=input_column, label_column=label_column, seed=seed,
                              revision=revision)
        task = self._sample_token(sample, verbose=verbose)
        base = torch.as_tensor(self.score(task))
        top = torch.argsort(base, descending=True)[: min(k, len(base))]
        ptm = {int(i): self._ptm_prototypes(int(i), sample, verbose=verbose) for i in top}  # k forward passes
        protos = task.prototypes.unsqueeze(0)  # (1, C, d)
        with torch.no_grad():
            extra, mask = self.fitness.ptm_tokens([ptm], len(self.zoo), protos.shape[1])
            rescored = self._combine(self.fitness(self.model_tokens, protos, None, extra, mask)[0], task)
        final = merge_rerank(base, rescored, top).numpy().astype(np.float64)
        return self._ranking(final, task, top_k=top_k, dataset_name=name, start=start,
                             reranked={int(i) for i in top}, max_parameters=max_parameters)

    def _sample(self, dataset: Any, **kwargs: Any) -> TaskSample:
        sample = sample_task(dataset, shots_per_class=self.config.shots_per_class, **kwargs)
        self.check_modality(sample.modality, dataset_name="the dataset's input column")
        return sample

    def _sample_token(self, sample: TaskSample, *, verbose: bool) -> TaskToken:
        """The task token of an already-drawn sample. Label-name selectors use the *sample's* classes, so the token
        lines up class by class with anything else computed from the same sample (PTM prototypes, estimators)."""
        if self.config.task_token_kind == "label_names":
            return self.label_name_token(sample.label_names)
        return self.task_encoder.encode(sample, verbose=verbose)

    def rank_task(
        self, task: TaskToken, *, top_k: int | None = None, dataset_name: str = "task", start: float | None = None,
        max_parameters: int | None = None,
    ) -> Ranking:
        """Rank the zoo for an already-computed task token (token-only stage)."""
        start = time.perf_counter() if start is None else start
        return self._ranking(self.score(task), task, top_k=top_k, dataset_name=dataset_name, start=start,
                             max_parameters=max_parameters)

    def _ranking(self, scores: np.ndarray, task: TaskToken, *, top_k: int | None, dataset_name: str, start: float,
                 reranked: set[int] = frozenset(), max_parameters: int | None = None, notes: list[str] = (),
                 estimator_scores: dict[int, float] | None = None) -> Ranking:
        order = np.argsort(-scores, kind="stable")  # every model: mirrors and the size budget are applied below
        extra = ranked_fields(self.accuracy, [self.zoo[i] for i in order], task.prototypes, task.label_names,
                              num_models=len(scores))  # size, licence; predicted accuracy + evidence if calibrated
        labels = tuple(task.label_names)  # one tuple shared by every entry
        models = [
            RankedModel(rank=r + 1, model_id=self.zoo[i].model_id, revision=self.zoo[i].revision,
                        score=float(scores[i]), task_type=self.zoo[i].task_type, reranked=int(i) in reranked,
                        estimator_score=(estimator_scores or {}).get(int(i)), label_names=labels, **fields)
            for r, (i, fields) in enumerate(zip(order, extra))
        ]
        models, shown = select_models(models, top_k=top_k, max_parameters=max_parameters)
        notes = [*notes, *shown]
        if self.config.task_token_kind == "label_names":
            notes = ["ranked from class names only", *notes]
        return Ranking(models, selector=self.config.name, selector_revision=self.revision, dataset=dataset_name,
                       seconds=time.perf_counter() - start, notes=notes)

    def __repr__(self) -> str:
        return (f"SpiderSelector(name={self.config.name!r}, modality={self.config.modality!r}, "
                f"zoo={len(self.zoo)} models, encoder={self.config.task_encoder!r})")


def _describe(dataset: Any, split: str | None) -> str:
    if isinstance(dataset, str):
        name = dataset
    else:
        info = getattr(dataset, "info", None)
        name = getattr(info, "dataset_name", None) or type(dataset).__name__
    return f"{name}[{split}]" if split else name
