"""The result of a selection: ranked Hub model ids that load straight into Transformers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, overload

from .hub import resolve_model_path


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
        return from_pretrained(auto, resolve_model_path(self.model_id), model_id=self.model_id, revision=self.revision,
                               trust_remote_code=trust_remote_code, **kwargs)


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

    def to_markdown(self) -> str:
        """A Markdown table: rank, model, revision, score."""
        rows = ["| rank | model | revision | score |", "|---:|---|---|---:|"]
        for m in self.models:
            star = " (re-ranked)" if m.reranked else ""
            rows.append(f"| {m.rank} | {m.model_id}{star} | {(m.revision or 'unpinned')[:12]} | {m.score:.4f} |")
        return "\n".join(rows)

    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per model."""
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in asdict(m).items() if k != "label_names"} for m in self.models])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by ``hf-spider rank --json``)."""
        return {
            "selector": self.selector,
            "selector_revision": self.selector_revision,
            "dataset": self.dataset,
            "seconds": round(self.seconds, 4),
            "notes": list(self.notes),
            "models": [{k: v for k, v in asdict(m).items() if k != "label_names"} for m in self.models],
        }

    def __str__(self) -> str:
        width = max([len(m.model_id) for m in self.models] + [5])
        lines = [f"Ranking of {len(self)} models for {self.dataset} by {self.selector} ({self.seconds:.2f} s)",
                 f"{'rank':>4}  {'model':<{width}}  {'revision':<12}  {'score':>8}"]
        for m in self.models:
            flag = "  re-ranked" if m.reranked else ""
            revision = (m.revision or "unpinned")[:12]
            lines.append(f"{m.rank:>4}  {m.model_id:<{width}}  {revision:<12}  {m.score:>8.4f}{flag}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Ranking(dataset={self.dataset!r}, selector={self.selector!r}, models={len(self)})"
