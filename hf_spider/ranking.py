"""The result of a selection: ranked Hub model ids that load straight into Transformers."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, overload

import numpy as np

from .errors import InvalidInputError
from .units import format_accuracy, format_parameter_count


@dataclass(frozen=True)
class RankedModel:
    """One model of a [`Ranking`].

    Attributes:
        rank: 1 for the model expected to fine-tune best.
        model_id: Hub model id (or local folder) of the model.
        revision: Commit sha the selector's token refers to (``None`` for a local folder).
        score: Fitness score; only the order is meaningful, and only within one ranking.
        task_type: ``"image-classification"`` or ``"text-classification"``.
        reranked: Whether the score came from the re-ranking stage (forward passes of this model).
        estimator_score: The transferability estimator's score of this model when the ranking ran an estimator
            cascade (``rank(..., estimator=...)``) and this model was a candidate; ``None`` otherwise.
        predicted_accuracy: Expected fine-tuning accuracy on the dataset (0-1), where the selector was trained on
            measured accuracies; ``None`` otherwise.
        predicted_accuracy_interval: ``(low, high)`` 80 % interval around ``predicted_accuracy``, or ``None``.
        num_parameters: The model's parameter count, when the selector knows it.
        pipeline_tag: The model's Hub pipeline tag, when known.
        license: The model's licence, when known.
        evidence: Why this model ranks here, e.g. its measured results on the most similar training tasks and
            whether it was fine-tuned on the same label set; ``None`` when the selector has none.
        aliases: Other model ids of the same weights (mirrors), shown once under this one.
    """

    rank: int
    model_id: str
    revision: str | None
    score: float
    task_type: str
    reranked: bool = False
    estimator_score: float | None = None
    predicted_accuracy: float | None = None
    predicted_accuracy_interval: tuple[float, float] | None = None
    num_parameters: int | None = None
    pipeline_tag: str | None = None
    license: str | None = None
    evidence: dict[str, Any] | None = field(default=None, compare=False)
    aliases: tuple[str, ...] = ()
    label_names: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def load(self, *, trust_remote_code: bool = False, **kwargs: Any):
        """Load the model for classification with ``num_labels``/``id2label``/``label2id`` set for the dataset.

        The classification head is new (``ignore_mismatched_sizes=True``): fine-tune it on your dataset.
        Extra keyword arguments go to ``from_pretrained``. Weights are read from safetensors only (a repo with only
        pickle weights raises ``ArtifactError``).
        """
        from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

        from .hub import model_load_error, resolve_model_path
        from .weights import from_pretrained

        auto = AutoModelForImageClassification if self.task_type == "image-classification" else (
            AutoModelForSequenceClassification
        )
        names = list(self.label_names) or None
        if names:
            kwargs.setdefault("num_labels", len(names))
            kwargs.setdefault("id2label", dict(enumerate(names)))
            kwargs.setdefault("label2id", {n: i for i, n in enumerate(names)})
        kwargs.setdefault("ignore_mismatched_sizes", True)
        try:
            return from_pretrained(auto, resolve_model_path(self.model_id), model_id=self.model_id,
                                   revision=self.revision, trust_remote_code=trust_remote_code, **kwargs)
        except OSError as err:  # Transformers' bare "can't load / not cached / offline" errors name no model
            raise model_load_error(self.model_id, self.revision, err) from err


NO_ACCURACY_NOTE = ("this selector does not predict accuracy (it ships no accuracy calibration, accuracy.json): "
                    "the fitness score only orders the models of this ranking.")
SCORE_HELP = "the selector's score: higher ranks first; only the order within one ranking means something"


class Ranking(Sequence[RankedModel]):
    """Models ranked for one dataset, best first, with what is needed to reproduce the result."""

    def __init__(
        self,
        models: list[RankedModel],
        *,
        selector: str,
        selector_revision: str | None,
        dataset: str,
        seconds: float,
        notes: Sequence[str] = (),
    ) -> None:
        self.models = models
        self.selector, self.selector_revision = selector, selector_revision
        self.dataset, self.seconds = dataset, seconds
        # What a reader must know to trust the numbers, e.g. "ranked from class names only".
        self.notes = tuple(notes)

    @overload
    def __getitem__(self, i: int) -> RankedModel: ...
    @overload
    def __getitem__(self, i: slice) -> list[RankedModel]: ...
    def __getitem__(self, i):
        return self.models[i]

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[RankedModel]:
        return iter(self.models)

    @property
    def predicts_accuracy(self) -> bool:
        """Whether the selector gave a predicted accuracy (for at least one model of this ranking)."""
        return any(m.predicted_accuracy is not None for m in self.models)

    def all_notes(self) -> list[str]:
        """``notes``, plus one line saying so when the selector cannot predict accuracy (shown by every output)."""
        return list(self.notes) + ([] if self.predicts_accuracy or not self.models else [NO_ACCURACY_NOTE])

    def _with(self, models: list[RankedModel], notes: Sequence[str] = ()) -> Ranking:
        return Ranking(models, selector=self.selector, selector_revision=self.selector_revision, dataset=self.dataset,
                       seconds=self.seconds, notes=(*self.notes, *notes))

    def pareto(self) -> Ranking:
        """The models no other model of this ranking beats on both predicted accuracy and size: the best choice at
        each parameter budget, best first (ranks unchanged).

        Accuracy is ``predicted_accuracy``, or the fitness score when the selector predicts none (then "beats"
        means "ranks above"). Models of unknown size cannot be compared on size and are left out (a note says so).
        """
        sized = [m for m in self.models if m.num_parameters is not None]
        left_out = len(self.models) - len(sized)
        notes = [f"{left_out} model(s) of unknown size left out of the Pareto front."] if left_out else []
        if not sized:
            return self._with([], notes)
        use_accuracy = all(m.predicted_accuracy is not None for m in sized)
        quality = np.array([m.predicted_accuracy if use_accuracy else m.score for m in sized], dtype=np.float64)
        size = np.array([m.num_parameters for m in sized], dtype=np.float64)
        at_least = (quality[None, :] >= quality[:, None]) & (size[None, :] <= size[:, None])  # (i, j): j as good as i
        strictly = (quality[None, :] > quality[:, None]) | (size[None, :] < size[:, None])
        dominated = (at_least & strictly).any(axis=1)
        return self._with([m for m, d in zip(sized, dominated) if not d], notes)

    def to_markdown(self) -> str:
        """A Markdown table: rank, model, predicted accuracy with its 80 % interval, parameters, score; then the
        notes."""
        estimated = any(m.estimator_score is not None for m in self.models)
        header = (f"| rank | model | predicted accuracy (80% interval) | parameters | score ({SCORE_HELP}) |"
                  + (" estimator score |" if estimated else ""))
        rows = [header, "|---:|---|---:|---:|---:|" + ("---:|" if estimated else "")]
        for m in self.models:
            name = m.model_id + (" (re-ranked)" if m.reranked else "")
            if m.aliases:
                name += f" (also published as {', '.join(m.aliases)})"
            if evidence_text(m.evidence):
                name += f"<br>why: {evidence_text(m.evidence)}"
            rows.append(f"| {m.rank} | {name} | {format_accuracy(m.predicted_accuracy, m.predicted_accuracy_interval)}"
                        f" | {format_parameter_count(m.num_parameters)} | {m.score:.4f} |"
                        + (f" {_estimator_text(m.estimator_score)} |" if estimated else ""))
        notes = self.all_notes()
        if notes:
            rows += ["", *(f"> **Note:** {note}" for note in notes)]
        return "\n".join(rows)

    def _records(self) -> list[dict[str, Any]]:
        records = []
        for m in self.models:
            # not asdict(m): it would deep-copy the dataset's label names once per model, only to drop them
            record = {f.name: copy.deepcopy(getattr(m, f.name)) for f in fields(m) if f.name != "label_names"}
            interval = record["predicted_accuracy_interval"]
            record["predicted_accuracy_interval"] = list(interval) if interval is not None else None
            record["aliases"] = list(m.aliases)
            records.append(record)
        return records

    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per model; the notes are in ``frame.attrs["notes"]``."""
        import pandas as pd

        frame = pd.DataFrame(self._records())
        frame.attrs["notes"] = self.all_notes()
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by ``hf-spider rank --json``): ``predicted_accuracy``,
        ``predicted_accuracy_interval`` ``[low, high]``, ``num_parameters`` and ``evidence`` are ``null`` where the
        selector does not know them (``notes`` then says so)."""
        return {
            "selector": self.selector,
            "selector_revision": self.selector_revision,
            "dataset": self.dataset,
            "seconds": round(self.seconds, 4),
            "notes": self.all_notes(),
            "models": self._records(),
        }

    def __str__(self) -> str:
        width = max([len(m.model_id) for m in self.models] + [5])
        pinned = any(m.revision for m in self.models)
        sized = any(m.num_parameters is not None for m in self.models)
        estimated = any(m.estimator_score is not None for m in self.models)
        acc_head = "predicted accuracy (80% interval)"
        head = (f"{'rank':>4}  {'model':<{width}}  " + (f"{'revision':<12}  " if pinned else "")
                + (f"{acc_head:>33}  " if self.predicts_accuracy else "") + (f"{'parameters':>10}  " if sized else "")
                + f"{'score':>8}" + (f"  {'estimator':>10}" if estimated else ""))
        lines = [f"Ranking of {len(self)} models for {self.dataset} by {self.selector} ({self.seconds:.2f} s)", head]
        for m in self.models:
            revision = f"{(m.revision or 'unpinned')[:12]:<12}  " if pinned else ""
            accuracy = format_accuracy(m.predicted_accuracy, m.predicted_accuracy_interval)
            accuracy = f"{accuracy:>33}  " if self.predicts_accuracy else ""
            size = f"{format_parameter_count(m.num_parameters):>10}  " if sized else ""
            flag = "  re-ranked" if m.reranked else ""
            estimate = f"  {_estimator_text(m.estimator_score):>10}" if estimated else ""
            lines.append(f"{m.rank:>4}  {m.model_id:<{width}}  {revision}{accuracy}{size}{m.score:>8.4f}{estimate}"
                         f"{flag}")
            if m.aliases:
                lines.append(f"{'':>4}  also published as {', '.join(m.aliases)}")
            why = evidence_text(m.evidence)
            if why and m.rank <= 3:
                lines.append(f"{'':>4}  why: {why}")
        lines.append(f"score: {SCORE_HELP}.")
        if estimated:
            lines.append("estimator: the transferability estimator's score of each re-ranked candidate (higher is "
                         "better; '-': not a candidate).")
        if not sized and self.models:
            lines.append("parameters: not recorded in this selector's zoo.")
        if not pinned and self.models:
            lines.append("revision: unpinned (the zoo records no commit; models load from their main branch).")
        lines += [f"note: {note}" for note in self.all_notes()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Ranking(dataset={self.dataset!r}, selector={self.selector!r}, models={len(self)})"


def _estimator_text(value: float | None) -> str:
    """An estimator score for a table cell; ``-`` for a model that was not a cascade candidate."""
    return "-" if value is None else f"{value:.4g}"


def evidence_text(evidence: dict[str, Any] | None) -> str:
    """One line from a model's ``evidence``: its ``"summary"`` when given, else ``key: value`` pairs."""
    if not evidence:
        return ""
    if isinstance(evidence.get("summary"), str):
        return evidence["summary"]
    parts = []
    tasks = evidence.get("similar_tasks")
    if isinstance(tasks, list) and tasks and all(isinstance(t, dict) for t in tasks):
        parts.append("measured " + ", ".join(_task_result(t) for t in tasks))
    same = evidence.get("same_label_set")
    if same is not None:
        parts.append("fine-tuned on this label set before" if same else "not fine-tuned on this label set")
    rest = {k: v for k, v in evidence.items() if k not in ("similar_tasks", "same_label_set")}
    parts += [f"{k}: {v}" for k, v in rest.items()]
    return "; ".join(parts)


def _task_result(task: dict[str, Any]) -> str:
    """``"77% on dtd (similarity 0.86)"`` from one ``evidence["similar_tasks"]`` entry."""
    accuracy, similarity = task.get("accuracy"), task.get("similarity")
    text = f"{accuracy:.0%}" if isinstance(accuracy, (int, float)) else "?"
    text += f" on {task.get('task', '?')}"
    return text + (f" (similarity {similarity:.2f})" if isinstance(similarity, (int, float)) else "")


def mirror_key(model_id: str) -> str | None:
    """The name two mirrors of one model share (the repo name without its namespace), or ``None`` for a local
    folder or a name without a namespace, which is never merged."""
    if "/" not in model_id or model_id.count("/") > 1 or model_id.startswith((".", "/", "~")):
        return None
    return model_id.split("/", 1)[1].lower()


def collapse_mirrors(models: Sequence[RankedModel]) -> list[RankedModel]:
    """Show mirrors once: of the models with the same repo name under different namespaces (e.g.
    ``nielsr/convnext-xlarge-224-22k`` and ``facebook/convnext-xlarge-224-22k``), keep the best-ranked one and list
    the others in its ``aliases``. Order is kept; ranks are renumbered 1..n. The zoo itself keeps every model."""
    kept: list[RankedModel] = []
    first: dict[str, int] = {}
    extra: dict[int, list[str]] = {}
    for m in models:
        key = mirror_key(m.model_id)
        if key is not None and key in first:
            extra.setdefault(first[key], []).extend([m.model_id, *m.aliases])
            continue
        if key is not None:
            first[key] = len(kept)
        kept.append(m)
    return [replace(m, rank=r + 1, aliases=(*m.aliases, *extra.get(r, ()))) for r, m in enumerate(kept)]


def select_models(
    models: Sequence[RankedModel], *, top_k: int | None = None, max_parameters: int | None = None
) -> tuple[list[RankedModel], list[str]]:
    """What a ranking shows, from every zoo model best first: mirrors collapsed, models above ``max_parameters``
    left out, then the best ``top_k``. Returns ``(models, notes)``.

    Raises:
        InvalidInputError: ``max_parameters`` is not positive, or no model of known size fits within it.
    """
    notes: list[str] = []
    models = collapse_mirrors(models)
    if max_parameters is not None:
        if max_parameters <= 0:
            raise InvalidInputError(f"max_parameters must be positive, got {max_parameters}.")
        unknown = sum(m.num_parameters is None for m in models)
        fits = [m for m in models if m.num_parameters is not None and m.num_parameters <= max_parameters]
        if not fits:
            raise InvalidInputError(
                f"No model of this zoo is known to have at most {format_parameter_count(max_parameters)} parameters"
                + (f" ({unknown} of unknown size)" if unknown else "") + "; raise the budget or drop it.")
        notes.append(f"only models with at most {format_parameter_count(max_parameters)} parameters ("
                     f"{len(fits)} of {len(models)}" + (f"; {unknown} of unknown size left out" if unknown else "")
                     + ").")
        models = [replace(m, rank=r + 1) for r, m in enumerate(fits)]
    return list(models[:top_k] if top_k else models), notes

