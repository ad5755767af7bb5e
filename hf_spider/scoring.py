"""Score models on a dataset with transferability estimators: the baselines table and Model Spider's training data.

[`score_models`] samples the task once, extracts each model's features (cache-aware, see [`extract_features`]),
applies every estimator and records where the time went: loading, forward passes, each estimator.
[`approximate_performance`] aggregates several estimators' rankings into the one "approximated performance" per
model that Model Spider trains on when fine-tuning accuracies are unknown.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import DEFAULT_SHOTS_PER_CLASS, TaskSample, sample_task
from .errors import InvalidInputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreTable:
    """Every model's score under every estimator on one task, and the seconds each step took.

    Attributes:
        model_ids: The M models, in the order given.
        revisions: Commit sha each model's features came from (``None`` for a local folder).
        estimators: The K estimator names, in the order given.
        scores: estimator → ``(M,)`` scores (higher is better; NaN where the estimator could not apply, e.g. LEEP on a
            model without a classification head).
        estimator_seconds: estimator → ``(M,)`` seconds spent in that estimator per model.
        forward_seconds: ``(M,)`` seconds of preprocessing + forward passes (0 for features read from the cache).
        load_seconds: ``(M,)`` seconds loading each model (0 on a cache hit).
        from_cache: ``(M,)`` whether each model's features came from the cache.
        num_samples: N, rows in the task sample.
        num_classes: C, classes in the task sample.
    """

    model_ids: list[str]
    revisions: list[str | None]
    estimators: list[str]
    scores: dict[str, np.ndarray]
    estimator_seconds: dict[str, np.ndarray]
    forward_seconds: np.ndarray
    load_seconds: np.ndarray
    from_cache: np.ndarray
    num_samples: int
    num_classes: int

    def aggregate(self, *, method: str = "mean_rank") -> np.ndarray:
        """One score per model aggregated over the estimators' rankings (``aggregate_rankings``). ``(M,)``.

        Raises:
            InvalidInputError: an estimator has NaN scores (drop it, or give every model a classification head).
        """
        from .estimators import aggregate_rankings

        return aggregate_rankings(self.scores, method=method)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: task size, estimators and one record per model (NaN scores become ``None``)."""
        models = [
            {
                "model_id": m,
                "revision": self.revisions[i],
                "scores": {e: _finite_or_none(self.scores[e][i]) for e in self.estimators},
                "estimator_seconds": {e: float(self.estimator_seconds[e][i]) for e in self.estimators},
                "forward_seconds": float(self.forward_seconds[i]),
                "load_seconds": float(self.load_seconds[i]),
                "from_cache": bool(self.from_cache[i]),
            }
            for i, m in enumerate(self.model_ids)
        ]
        return {"num_samples": self.num_samples, "num_classes": self.num_classes, "estimators": list(self.estimators),
                "models": models}

    def to_pandas(self):
        """A DataFrame indexed by model id: ``revision``, one column per estimator, ``forward_s``, ``load_s``,
        ``<estimator>_s`` per estimator and ``cached``."""
        import pandas as pd

        columns: dict[str, Any] = {"revision": self.revisions}
        columns.update({e: self.scores[e] for e in self.estimators})
        columns.update({"forward_s": self.forward_seconds, "load_s": self.load_seconds})
        columns.update({f"{e}_s": self.estimator_seconds[e] for e in self.estimators})
        columns["cached"] = self.from_cache
        return pd.DataFrame(columns, index=pd.Index(self.model_ids, name="model_id"))

    def to_markdown(self) -> str:
        """A Markdown table: one row per model, scores then seconds (forward passes, then each estimator)."""
        head = ["model", *self.estimators, "forward s", "load s", *(f"{e} s" for e in self.estimators), "cached"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + [":-:"]) + "|"]
        for i, model in enumerate(self.model_ids):
            row = [model.replace("|", "\\|")]
            row += [_fmt(self.scores[e][i]) for e in self.estimators]
            row += [f"{self.forward_seconds[i]:.3f}", f"{self.load_seconds[i]:.3f}"]
            row += [f"{self.estimator_seconds[e][i]:.3f}" for e in self.estimators]
            row.append("yes" if self.from_cache[i] else "no")
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{len(self.model_ids)} models on {self.num_samples} samples, {self.num_classes} classes\n" + (
            self.to_markdown()
        )


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def score_models(
    model_ids: Sequence[str],
    dataset: Any,
    *,
    estimators: Sequence[str] = ("logme",),
    split: str | None = None,
    input_column: str | None = None,
    label_column: str | None = None,
    shots_per_class: int = DEFAULT_SHOTS_PER_CLASS,
    seed: int = 0,
    revision: str | Mapping[str, str] | None = None,
    cache_dir: str | Path | bool | None = None,
    batch_size: int = 32,
    verbose: bool = True,
) -> ScoreTable:
    """Score every model in ``model_ids`` on one class-balanced sample of ``dataset`` with each estimator.

    Args:
        model_ids: Hub model ids or local folders.
        dataset: A ``datasets`` Dataset/DatasetDict, Hub dataset id or folder, or an already drawn [`TaskSample`]
            (then ``split``, the columns, ``shots_per_class`` and ``seed`` are ignored).
        estimators: Names in ``hf_spider.estimators.ESTIMATORS``, e.g. ``("logme", "leep")``.
        split: Dataset split (default: ``"train"``).
        input_column: Image or text column (default: inferred).
        label_column: Class column (default: inferred).
        shots_per_class: Rows drawn per class.
        seed: Seed of the draw.
        revision: One revision for every model, or a mapping model id → revision (missing ids: default branch).
        cache_dir: Feature cache folder; ``None`` for the default, ``False`` to disable (see [`extract_features`]).
        batch_size: Inputs per forward pass.
        verbose: Progress bars.

    Returns:
        A [`ScoreTable`].

    Raises:
        InvalidInputError: no models, an unknown estimator, or an unusable dataset.

    Example:
        ```python
        >>> table = score_models(["google/vit-base-patch16-224", "microsoft/resnet-50"], "beans",
        ...                      estimators=["logme", "leep"], shots_per_class=16)
        >>> print(table.to_markdown())
        ```
    """
    from .estimators import get_estimator, needs_source_probs
    from .features import extract_features

    model_ids = list(model_ids)
    if not model_ids:
        raise InvalidInputError("score_models needs at least one model id (`model_ids=`).")
    if len(set(model_ids)) != len(model_ids):
        raise InvalidInputError(f"Model ids are repeated in {model_ids}; name each model once.")
    functions = {name: get_estimator(name) for name in estimators}
    if not functions:
        raise InvalidInputError("Name at least one estimator (`estimators=`), e.g. ('logme',).")
    with_probs = any(needs_source_probs(name) for name in functions)
    sample = dataset if isinstance(dataset, TaskSample) else sample_task(
        dataset, split=split, input_column=input_column, label_column=label_column,
        shots_per_class=shots_per_class, seed=seed)
    M = len(model_ids)
    scores = {name: np.full(M, np.nan) for name in functions}
    seconds = {name: np.zeros(M) for name in functions}
    forward, load, cached, revisions = np.zeros(M), np.zeros(M), np.zeros(M, dtype=bool), []
    for i, model_id in enumerate(model_ids):
        rev = revision.get(model_id) if isinstance(revision, Mapping) else revision
        out = extract_features(model_id, sample, revision=rev, with_source_probs=with_probs, cache_dir=cache_dir,
                               batch_size=batch_size, verbose=verbose)
        forward[i], load[i], cached[i] = out.forward_seconds, out.load_seconds, out.from_cache
        revisions.append(out.revision)
        for name, function in functions.items():
            if needs_source_probs(name) and out.source_probs is None:
                logger.warning("%s has no classification head: %s needs source-class probabilities, so its score is "
                               "NaN (try 'nleep', which needs features only).", model_id, name)
                continue
            start = time.perf_counter()
            scores[name][i] = function(out.features, sample.labels, source_probs=out.source_probs)
            seconds[name][i] = time.perf_counter() - start
    return ScoreTable(model_ids, revisions, list(functions), scores, seconds, forward, load, cached,
                      num_samples=len(sample.labels), num_classes=sample.num_classes)


def approximate_performance(
    model_ids: Sequence[str],
    dataset: Any,
    *,
    estimators: Sequence[str] = ("logme", "nleep", "hscore"),
    method: str = "mean_rank",
    **kwargs: Any,
) -> np.ndarray:
    """The zoo's approximated performance on one task: several estimators' rankings aggregated into one score.

    Model Spider trains on the zoo's performance on many tasks; where fine-tuning accuracies are unknown, the
    aggregate rank of cheap transferability estimators stands in for them. Only the order matters to the listwise
    loss, so the aggregate can go straight into ``TrainingTask.performance``.

    Args:
        model_ids: The zoo, in zoo order.
        dataset: As in [`score_models`] (a [`TaskSample`] reuses one draw across calls).
        estimators: Estimators to aggregate; the default needs features only, so models without a head work.
        method: ``"mean_rank"`` (in ``[1, M]``) or ``"borda"`` (see ``aggregate_rankings``).
        **kwargs: Passed to [`score_models`] (``split``, columns, ``shots_per_class``, ``cache_dir``, ...).

    Returns:
        ``(M,)`` float64, higher = expected to transfer better, in the order of ``model_ids``.

    Raises:
        InvalidInputError: as [`score_models`]; also when an estimator gives NaN (e.g. LEEP on a headless model).
    """
    return score_models(model_ids, dataset, estimators=estimators, **kwargs).aggregate(method=method)


# --- CLI: `hf-spider score` -----------------------------------------------------------------------------------


def add_score_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``hf-spider score`` on an ``argparse`` subparsers object and return its parser."""

    score = subparsers.add_parser(
        "score", help="score models on a dataset with transferability estimators",
        description="Score each model on a class-balanced sample of a dataset with transferability estimators, "
                    "with the seconds spent in forward passes and in each estimator. Features are cached.")
    score.add_argument("--models", nargs="+", required=True, help="Hub model ids or local folders")
    score.add_argument("--dataset", required=True, help="Hub dataset id, local folder, or bundled:<name>")
    score.add_argument("--estimator", action="append", choices=estimator_names(), dest="estimators",
                       help="estimator to apply; repeat for several (default: logme)")
    score.add_argument("--split", help="dataset split (default: train)")
    score.add_argument("--input-column", help="image or text column (default: inferred)")
    score.add_argument("--label-column", help="class column (default: inferred)")
    score.add_argument("--shots-per-class", type=int, default=DEFAULT_SHOTS_PER_CLASS,
                       help=f"rows sampled per class (default: {DEFAULT_SHOTS_PER_CLASS})")
    score.add_argument("--cache-dir", help="feature cache folder (default: $HF_HOME/hf_spider/features)")
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(func=cmd_score)
    return score


def estimator_names() -> list[str]:
    """The registered estimators' names, without importing them (scipy.stats alone takes seconds, and ``--help``
    must be fast): one module per estimator in ``hf_spider/estimators``, each registered under its module name (a
    test checks that ``ESTIMATORS`` has exactly these keys)."""
    import importlib.util
    import pkgutil

    folders = importlib.util.find_spec(f"{__package__}.estimators").submodule_search_locations  # not imported
    return sorted(m.name for m in pkgutil.iter_modules(folders)
                  if not m.name.startswith("_") and m.name != "aggregate")


def cmd_score(args: argparse.Namespace) -> int:
    """Handler of ``hf-spider score``: parse, call [`score_models`], print the table."""
    import json

    from .bundled import resolve_dataset_ref

    table = score_models(args.models, resolve_dataset_ref(args.dataset), estimators=args.estimators or ["logme"],
                         split=args.split, input_column=args.input_column, label_column=args.label_column,
                         shots_per_class=args.shots_per_class, cache_dir=args.cache_dir, verbose=not args.json)
    print(json.dumps(table.to_dict(), indent=2) if args.json else str(table))
    return 0
