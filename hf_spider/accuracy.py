"""Predicted fine-tuning accuracy, its 80 % interval, and the evidence behind each ranked model.

A selector trained on measured accuracies may ship ``accuracy.json`` (and ``accuracy.safetensors``: the label
embeddings of its training tasks) beside its network. For a new task, a model ranked at percentile ``p`` (0 = first,
1 = last) is predicted to reach

    task level + rank offset(p)

* **task level**: the median measured accuracy of the training tasks, weighted by ``softmax(similarity / T)``; the
  similarity is the cosine between mean label embeddings (the selector's own task prototypes), averaged over a
  few fixed ``T`` (nothing is tuned on the targets);
* **rank offset**: a non-increasing curve of "accuracy minus the task's median" against the rank percentile under
  the selector's leave-one-target-out scores. A weak ranker gets a flat curve, a sharp one a steep curve.

The offset depends on the rank alone, so predicted accuracy never increases down a ranking. The interval adds the
leave-one-target-out residual quantiles of the model's rank band (quartiles: the last ranks hold the diverged runs,
whose spread would otherwise widen every interval). ``hf_spider.accuracy_fit`` fits the model and measures its
coverage; ``benchmarks/hubzoo/calibrate.py`` writes the bundled selectors' files. Only JSON and safetensors are read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data import readable_label
from .errors import ArtifactError

ACCURACY_JSON, ACCURACY_TENSORS = "accuracy.json", "accuracy.safetensors"
FORMAT_VERSION = 1
MAX_BYTES = 16 * 1024 * 1024  # a calibration is a few hundred KB; anything far larger is not one
NUM_EVIDENCE_TASKS = 2


@dataclass(frozen=True)
class ModelRecord:
    """What the calibration data says about one zoo model.

    Attributes:
        accuracy: Measured fine-tuning accuracy on each training task where it was run.
        source_labels: Normalised class names the model was fine-tuned on (empty when unknown).
    """

    accuracy: dict[str, float] = field(default_factory=dict)
    source_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccuracyModel:
    """Maps a ranking to predicted accuracies with an interval, and explains each model (see the module docstring).

    Attributes:
        task_encoder: The selector's task encoder the target embeddings come from.
        targets: Training task names, in ``target_embeddings`` order.
        target_embeddings: ``(T, d)`` unit mean label embedding of each training task.
        target_levels: ``(T,)`` median measured accuracy of each training task.
        temperatures: Softmax temperatures of the task-level weights, averaged (``None``: uniform weights).
        curve_percentiles: ``(K,)`` increasing knots from 0 to 1.
        curve_offsets: ``(K,)`` non-increasing accuracy offset at each knot.
        interval: ``(B, 2)`` residual quantiles ``(low, high)``, ``low <= 0 <= high``, for ``B`` equal rank bands
            (band ``b`` holds percentiles ``[b/B, (b+1)/B)``, the last one includes 1).
        level: Nominal coverage of the interval (0.8).
        models: Model id → [`ModelRecord`].
        calibration: How it was fitted and what was measured (JSON; shown in the selector card).
    """

    task_encoder: str
    targets: tuple[str, ...]
    target_embeddings: np.ndarray
    target_levels: np.ndarray
    temperatures: tuple[float | None, ...]
    curve_percentiles: np.ndarray
    curve_offsets: np.ndarray
    interval: np.ndarray
    level: float = 0.8
    models: dict[str, ModelRecord] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    # --- prediction ----------------------------------------------------------------------------------------

    def similarities(self, prototypes: Any) -> np.ndarray:
        """Cosine similarity ``(T,)`` of a task (its ``(C, d)`` prototypes) to every training task."""
        return self.target_embeddings @ task_embedding(prototypes)

    def task_level(self, similarities: np.ndarray) -> float:
        """The task-level accuracy estimate: similarity-weighted median accuracy of the training tasks."""
        return float(task_levels(similarities[None, :], self.target_levels, self.temperatures)[0])

    def predict(self, similarities: np.ndarray, percentiles: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(accuracy, low, high)``, each ``(N,)``, for models at rank ``percentiles`` (0 = first) of one task.

        Clipped to [0, 1]; the interval always contains the prediction.
        """
        offsets = np.interp(percentiles, self.curve_percentiles, self.curve_offsets)
        accuracy = np.clip(self.task_level(similarities) + offsets, 0.0, 1.0)
        return (accuracy, *interval_bounds(accuracy, percentiles, self.interval))

    def evidence(self, similarities: np.ndarray, model_id: str, label_names: Sequence[str]) -> dict[str, Any]:
        """The training tasks most like this one with the model's measured accuracy there (``None``: not run),
        and whether the model was fine-tuned on this label set (``None``: its labels are unknown)."""
        return self._evidence(similarities, model_id, frozenset(normalise_label(n) for n in label_names))

    def _evidence(self, similarities: np.ndarray, model_id: str, label_set: frozenset[str]) -> dict[str, Any]:
        record = self.models.get(model_id, ModelRecord())
        nearest = np.argsort(-similarities, kind="stable")[:NUM_EVIDENCE_TASKS]  # T ~ 10
        tasks = [{"task": self.targets[j], "similarity": round(float(similarities[j]), 3),
                  "accuracy": record.accuracy.get(self.targets[j])} for j in nearest]
        same = set(record.source_labels) == label_set if record.source_labels else None
        return {"similar_tasks": tasks, "same_label_set": same}

    def restricted_to(self, model_ids: Sequence[str]) -> AccuracyModel:
        """A copy whose per-model records cover only ``model_ids`` (what a saved zoo still holds)."""
        keep = set(model_ids)
        return replace(self, models={m: r for m, r in self.models.items() if m in keep})

    # --- files ---------------------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        """Write ``accuracy.json`` and ``accuracy.safetensors`` into ``folder`` (atomically, keyed by name)."""
        from safetensors.numpy import save as np_save

        from .tokens import atomic_write_bytes, atomic_write_text

        folder = Path(folder)
        tensors = {t: np.ascontiguousarray(e, dtype=np.float32) for t, e in zip(self.targets, self.target_embeddings)}
        atomic_write_bytes(folder / ACCURACY_TENSORS, np_save(tensors, metadata={"format": "np"}))
        atomic_write_text(folder / ACCURACY_JSON, json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n")

    def to_json(self) -> dict[str, Any]:
        """The ``accuracy.json`` content (the embeddings go to ``accuracy.safetensors``)."""
        return {
            "format_version": FORMAT_VERSION,
            "task_encoder": self.task_encoder,
            "level": self.level,
            "temperatures": list(self.temperatures),
            "targets": {t: {"median_accuracy": round(float(v), 6)} for t, v in zip(self.targets, self.target_levels)},
            "rank_curve": {"percentile": [round(float(p), 6) for p in self.curve_percentiles],
                           "offset": [round(float(o), 6) for o in self.curve_offsets]},
            "interval": [[round(float(lo), 6), round(float(hi), 6)] for lo, hi in self.interval],
            "models": {m: {"accuracy": {t: round(a, 6) for t, a in r.accuracy.items()},
                           "source_labels": list(r.source_labels)} for m, r in sorted(self.models.items())},
            "calibration": self.calibration,
        }

    def card_section(self) -> str:
        """Markdown for the selector card: what the predicted accuracy is and how well it was calibrated."""
        c = self.calibration
        lines = [
            f"`rank()` fills `predicted_accuracy` and an {self.level:.0%} `predicted_accuracy_interval` for every "
            "model: the median accuracy of the most similar training tasks (label-name embeddings) plus an "
            "offset that falls with the model's rank percentile; the interval adds the "
            f"{(1 - self.level) / 2:.0%}/{(1 + self.level) / 2:.0%} quantiles of leave-one-target-out residuals in "
            f"the model's rank band ({len(self.interval)} bands, best first: "
            + ", ".join(f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in self.interval) + ").",
        ]
        if "coverage" in c and "mae" in c:
            lines.append(
                f"\nMeasured nested leave-one-target-out over {c.get('num_targets', '?')} targets (calibration "
                "fitted without the held-out target, counted on it): coverage of the "
                f"{self.level:.0%} interval **{c['coverage']:.1%}** (per target {c.get('coverage_min', 0):.0%}–"
                f"{c.get('coverage_max', 1):.0%}), mean absolute error **{c['mae']:.3f}** (task level alone: "
                f"{c.get('mae_task_level_only', float('nan')):.3f}; the training tasks' mean level alone: "
                f"{c.get('mae_mean_level_only', float('nan')):.3f}). Most of the error is the task level, which all "
                "models of a task share: on a given dataset the interval tends to hold for nearly every model, or "
                "for few."
            )
        if c.get("scores"):
            lines.append(f"\nRank percentiles of the calibration data: {c['scores']}.")
        if c.get("command"):
            lines.append(f"\nReproduce: `{c['command']}`.")
        return "\n".join(lines)


def task_levels(similarities: np.ndarray, levels: np.ndarray, temperatures: Sequence[float | None]) -> np.ndarray:
    """``(n,)`` task levels of ``n`` tasks from their similarities ``(n, T)`` to the training tasks: the mean over
    ``temperatures`` of the ``softmax(similarity / temperature)``-weighted ``levels`` (``None``: uniform weights)."""
    out = np.zeros(len(similarities))
    for tau in temperatures:  # a handful of temperatures
        shifted = similarities - similarities.max(axis=1, keepdims=True)
        weights = np.ones_like(similarities) if tau is None else np.exp(shifted / tau)
        out += weights @ levels / weights.sum(axis=1)
    return out / len(temperatures)


def interval_bounds(accuracy: np.ndarray, percentiles: np.ndarray, interval: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(low, high)`` around ``accuracy`` at rank ``percentiles``: each band's residual quantiles, clipped to [0, 1]
    and widened where needed to contain the prediction."""
    band = np.minimum((np.asarray(percentiles) * len(interval)).astype(int), len(interval) - 1)
    low = np.minimum(np.clip(accuracy + interval[band, 0], 0.0, 1.0), accuracy)
    high = np.maximum(np.clip(accuracy + interval[band, 1], 0.0, 1.0), accuracy)
    return low, high


def task_embedding(prototypes: Any) -> np.ndarray:
    """Unit mean of a task's unit-normalised class prototypes ``(C, d)`` → ``(d,)``."""
    p = np.asarray(prototypes, dtype=np.float64)
    p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    mean = p.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def normalise_label(name: str) -> str:
    """A class name compared across datasets: readable words, lower case, punctuation as spaces."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", readable_label(str(name)).lower()).split())


def ranked_fields(model: AccuracyModel | None, entries: Sequence[Any], prototypes: Any, label_names: Sequence[str],
                  num_models: int) -> list[dict[str, Any]]:
    """``RankedModel`` keyword arguments for the zoo ``entries`` ranked first..last of ``num_models``.

    Size, pipeline tag and licence come from the zoo entries; the prediction, interval and evidence from ``model``
    (all ``None`` without one).
    """
    fields = [{"num_parameters": e.num_parameters, "pipeline_tag": e.pipeline_tag, "license": e.license}
              for e in entries]
    if model is None or not entries:
        return fields
    sims = model.similarities(prototypes)
    percentiles = np.arange(len(entries)) / max(num_models - 1, 1)
    accuracy, low, high = model.predict(sims, percentiles)
    label_set = frozenset(normalise_label(n) for n in label_names)  # once per ranking, not per model
    for f, e, a, lo, hi in zip(fields, entries, accuracy, low, high):
        f.update(predicted_accuracy=round(float(a), 4), predicted_accuracy_interval=(round(float(lo), 4),
                 round(float(hi), 4)), evidence=model._evidence(sims, e.model_id, label_set))
    return fields


# --- reading (validated: the files come from a repo) -------------------------------------------------------


def load_accuracy_model(folder: str | Path, *, zoo_ids: Sequence[str], task_encoder: str,
                        task_dim: int) -> AccuracyModel | None:
    """Read ``accuracy.json`` (+ ``accuracy.safetensors``) from a selector folder; ``None`` when there is none.

    Raises:
        ArtifactError: a malformed file: not JSON, NaN or infinite numbers, unknown model ids, embeddings of the
            wrong shape, a curve that rises, another task encoder. The message names the problem.
    """
    folder = Path(folder)
    path = folder / ACCURACY_JSON
    if not path.is_file():
        return None

    def fail(problem: str) -> ArtifactError:
        return ArtifactError(f"{path}: {problem}. Re-run the calibration that wrote it (for the bundled selectors: "
                             "python -m benchmarks.hubzoo.calibrate), or delete accuracy.json to rank without "
                             "predicted accuracy.")

    if path.stat().st_size > MAX_BYTES:
        raise fail(f"{path.stat().st_size} bytes, more than the {MAX_BYTES} a calibration may hold")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise fail(f"not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise fail(f"format_version must be {FORMAT_VERSION}")
    if data.get("task_encoder") != task_encoder:
        raise fail(f"calibrated with task encoder {data.get('task_encoder')!r}, the selector uses {task_encoder!r}")
    targets_json = _mapping(data.get("targets"), "targets", fail)
    if not targets_json:
        raise fail("'targets' lists no training task")
    targets = tuple(targets_json)
    levels = np.array([_unit(_mapping(v, f"targets[{t!r}]", fail).get("median_accuracy"),
                             f"targets[{t!r}].median_accuracy", fail) for t, v in targets_json.items()])
    embeddings = _read_embeddings(folder / ACCURACY_TENSORS, targets, task_dim, fail)
    temperatures = data.get("temperatures")
    if not isinstance(temperatures, list) or not temperatures or not all(
            t is None or _number(t, "temperatures", fail) > 0 for t in temperatures):
        raise fail("temperatures must be a non-empty list of positive numbers or nulls")
    curve = _mapping(data.get("rank_curve"), "rank_curve", fail)
    percentiles = _vector(curve.get("percentile"), "rank_curve.percentile", fail)
    offsets = _vector(curve.get("offset"), "rank_curve.offset", fail)
    if len(percentiles) < 2 or len(offsets) != len(percentiles):
        raise fail("rank_curve needs as many offsets as percentiles, at least two")
    if percentiles[0] != 0 or percentiles[-1] != 1 or np.any(np.diff(percentiles) <= 0):
        raise fail("rank_curve.percentile must increase from 0 to 1")
    if np.any(np.diff(offsets) > 0) or np.any(np.abs(offsets) > 1):
        raise fail("rank_curve.offset must be non-increasing and within [-1, 1]")
    bands = data.get("interval")
    if not isinstance(bands, list) or not bands or not all(isinstance(b, list) for b in bands):
        raise fail("interval must be a non-empty list of [low, high] pairs, one per rank band")
    interval = np.array([_vector(b, "interval", fail) for b in bands if len(b) == 2])
    if len(interval) != len(bands) or np.any(interval[:, 0] > 0) or np.any(interval[:, 1] < 0) or np.any(
            np.abs(interval) > 1):
        raise fail("interval must hold [low, high] pairs with -1 <= low <= 0 <= high <= 1")
    level = _unit(data.get("level"), "level", fail)
    models = _read_models(_mapping(data.get("models", {}), "models", fail), set(zoo_ids), set(targets), fail)
    calibration = _mapping(data.get("calibration", {}), "calibration", fail)
    for key in _CALIBRATION_NUMBERS & set(calibration):  # the card prints these
        _unit(calibration[key], f"calibration.{key}", fail)
    for key in ("scores", "command"):
        if not isinstance(calibration.get(key, ""), str):
            raise fail(f"calibration.{key} must be a string")
    return AccuracyModel(task_encoder, targets, embeddings, levels, tuple(temperatures), percentiles, offsets,
                         interval, level, models, calibration)


_CALIBRATION_NUMBERS = {"coverage", "coverage_min", "coverage_max", "mae", "mae_task_level_only",
                        "mae_mean_level_only"}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a calibration may hold")


def _mapping(value: Any, where: str, fail) -> dict:
    if not isinstance(value, dict):
        raise fail(f"{where!r} must be an object")
    return value


def _number(value: Any, where: str, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _unit(value: Any, where: str, fail) -> float:
    number = _number(value, where, fail)
    if not 0 <= number <= 1:
        raise fail(f"{where} must lie in [0, 1], got {number}")
    return number


def _vector(value: Any, where: str, fail) -> np.ndarray:
    if not isinstance(value, list):
        raise fail(f"{where} must be a list of numbers")
    return np.array([_number(v, where, fail) for v in value], dtype=np.float64)


def _read_embeddings(path: Path, targets: tuple[str, ...], task_dim: int, fail) -> np.ndarray:
    from safetensors.numpy import load as np_load

    try:
        tensors = np_load(path.read_bytes())
    except FileNotFoundError as err:
        raise fail(f"{ACCURACY_TENSORS} is missing beside it") from err
    except Exception as err:  # the safetensors parser's errors have no common base class
        raise fail(f"{ACCURACY_TENSORS} is not a valid safetensors file ({err})") from err
    if set(tensors) != set(targets):
        raise fail(f"{ACCURACY_TENSORS} holds embeddings of {sorted(tensors)}, expected the targets {sorted(targets)}")
    bad = [t for t in targets if tensors[t].shape != (task_dim,) or not np.isfinite(tensors[t]).all()]
    if bad:
        raise fail(f"the embeddings of {bad} are not finite vectors of width {task_dim} (the selector's task width)")
    stacked = np.stack([tensors[t].astype(np.float64) for t in targets])
    return stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)


def _read_models(models: dict, zoo_ids: set[str], targets: set[str], fail) -> dict[str, ModelRecord]:
    unknown = sorted(set(models) - zoo_ids)
    if unknown:
        raise fail(f"{len(unknown)} model ids are not in this selector's zoo (e.g. {unknown[0]!r}); the file "
                   "belongs to another selector")
    records = {}
    for model_id, item in models.items():
        item = _mapping(item, f"models[{model_id!r}]", fail)
        accuracy = _mapping(item.get("accuracy", {}), f"models[{model_id!r}].accuracy", fail)
        if set(accuracy) - targets:
            raise fail(f"models[{model_id!r}].accuracy names unknown tasks {sorted(set(accuracy) - targets)}")
        labels = item.get("source_labels", [])
        if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
            raise fail(f"models[{model_id!r}].source_labels must be a list of strings")
        records[model_id] = ModelRecord(
            {t: _unit(a, f"models[{model_id!r}].accuracy[{t!r}]", fail) for t, a in accuracy.items()},
            tuple(labels))
    return records
