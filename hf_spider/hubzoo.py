"""Measured fine-tuning results of real Hub models (the TransferGraph study), cleaned into (target, model) matrices.

The study ("Model Selection with Model Zoo via Graph Learning", Li et al., ICDE 2024) fine-tuned 185 Hub image and
164 Hub text models and published accuracies, LogME and regularised H-scores. The files have no licence: they are
read from ``<repo>/../shared/data/transfergraph/`` (or ``$HF_SPIDER_TRANSFERGRAPH``), never copied.

Run cleaning, in this order (``HubZooRecords.cleaning`` counts the rows each rule touched):

1. *junk rows*: ``finetuned_dataset`` not in target_dataset_features.csv (``'0.1'``, ``'none'``, ``'lora'``: broken
   CSV lines of text/records.csv) are dropped.
2. *full fine-tuning only* (text): rows with a ``peft_method`` (``'lora'``, one truncated ``'lor'``) are dropped; then
   rows without ``eval_accuracy``.
3. *excluded targets*: ``food101`` (image): 110 of its 112 runs sit at exactly 1/101 while the same models reach 0.9
   elsewhere (the pipeline failed, not the models); it has no target_dataset_features.csv row and no LogME scores.
4. *unknown models*: runs of models missing from model_config_dataset.csv are dropped.
5. *diverged runs*: ``accuracy <= 1.1 / K`` (chance plus 10 %) on a target whose median run beats that bound by
   0.1 or more. **Kept by default** as real outcomes: a user fine-tuning that model with the published recipe gets
   that accuracy, and the study's evaluation (and its LogME anchor) includes them. ``diverged`` marks them;
   ``drop_diverged=True`` drops them before step 6. Majority-class collapses on imbalanced sets (CoLA at 0.6913)
   sit above 1.1 / K and are not flagged: the files lack the label distributions to tell.
6. *repeated runs* of a pair (text: 317 pairs, same seed and recipe) are averaged: the mean estimates one more run.

Scores: malformed rows (no model, unknown metric, NaN) are dropped, repeated (model, target, metric) rows averaged.
target_dataset_features.csv has three wrong rows, fixed by ``TARGET_META_FIXES``.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .data import readable_label
from .errors import HfSpiderError, InvalidInputError

logger = logging.getLogger(__name__)

Side = Literal["image", "text"]

ENV_VAR = "HF_SPIDER_TRANSFERGRAPH"
EXCLUDED_TARGETS: dict[str, tuple[str, ...]] = {"image": ("food101",), "text": ()}
TARGET_META_FIXES: dict[str, dict[str, int]] = {
    "caltech101": {"num_classes": 102},  # VTAB/TFDS Caltech101: 101 classes + background; size 3060 = 30 x 102
    "flowers": {"num_classes": 102},  # Oxford Flowers-102; size 1020 = 10 x 102 (TFDS train split)
    "tweet_eval/offensive": {"size": 14100, "num_classes": 2},  # the CSV row (24300, 18) is smallnorb's
}
DIVERGED_MARGIN = 1.1  # a run is diverged at accuracy <= DIVERGED_MARGIN / K ...
DIVERGED_MEDIAN_GAP = 0.1  # ... on a target whose median run beats that threshold by >= 0.1 accuracy
_METRICS = {"TransferabilityMethod.LOG_ME": "logme", "TransferabilityMethod.REG_H_SCORE": "reg_hscore"}
# model_config_dataset.csv column (image and text spellings) -> model_meta column
_META_COLUMNS = (
    {"architectures": "architecture", "model_type": "model_type", "dataset": "source_dataset"}
    | {"labels": "source_labels", "#labels": "num_source_labels", "number_of_labels": "num_source_labels"}
    | {"accuracy": "source_accuracy", "number_of_parameters": "num_parameters", "memory_consumption": "memory_bytes"}
    | {"input_shape": "input_size", "output_shape": "feature_dim"}
)
_GENERIC_LABEL = re.compile(r"(?i)(label_?)?\d+")  # 'LABEL_0', '0': names that say nothing about the classes


class TransferGraphNotFoundError(HfSpiderError, FileNotFoundError):
    """The TransferGraph result files are not where hf-spider looks for them."""


@dataclass(frozen=True)
class HubZooRecords:
    """Cleaned fine-tuning results and forward-pass scores of one side (image or text) of the Hub zoo.

    Attributes:
        side: ``"image"`` or ``"text"``.
        models: ``M`` Hub model ids, sorted: every model of model_config_dataset.csv (some have no run).
        targets: ``T`` target dataset names, sorted.
        accuracy: ``(T, M)`` mean test accuracy over the pair's kept runs; NaN where there is none.
        num_runs: ``(T, M)`` int, how many runs ``accuracy`` averages.
        diverged: ``(T, M)`` bool, True where at least one run of the pair diverged (module docstring, rule 5).
        logme, reg_hscore, logme_runtime, reg_hscore_runtime: ``(T, M)`` published scores and their cost in seconds
            (forward passes included); NaN where not measured.
        model_meta: indexed by model, in ``models`` order: architecture, model_type, source_dataset, source_labels
            (raw string), num_source_labels, source_accuracy, num_parameters, memory_bytes, input_size, feature_dim.
        target_meta: indexed by target, in ``targets`` order: size, num_classes (fixed), num_classes_csv.
        cleaning: rule -> number of CSV rows it dropped or merged, in the order applied.
    """

    side: Side
    models: list[str]
    targets: list[str]
    accuracy: np.ndarray
    num_runs: np.ndarray
    diverged: np.ndarray
    logme: np.ndarray
    reg_hscore: np.ndarray
    logme_runtime: np.ndarray
    reg_hscore_runtime: np.ndarray
    model_meta: pd.DataFrame
    target_meta: pd.DataFrame
    cleaning: dict[str, int]


def default_root() -> Path:
    """``$HF_SPIDER_TRANSFERGRAPH`` if set, else ``<repo>/../shared/data/transfergraph``."""
    repo = Path(__file__).resolve().parents[1]
    return Path(os.environ.get(ENV_VAR) or repo / ".." / "shared" / "data" / "transfergraph")


def _read_csv(root: Path, side: Side, name: str, **kwargs: Any) -> pd.DataFrame:
    path = root / side / name
    if not path.is_file():
        raise TransferGraphNotFoundError(
            f"{path} not found. Point ${ENV_VAR} (or `root=`) at the folder holding image/ and text/ of the "
            "TransferGraph results (resources/experiments of github.com/TransferGraph/transfergraph)."
        )
    return pd.read_csv(path, **kwargs)


def _architecture(value: Any) -> str:
    text = str(value)  # image: "['ViTForImageClassification']", text: "BertForSequenceClassification"
    return str(ast.literal_eval(text)[0]) if text.startswith("[") else text


def _model_meta(config: pd.DataFrame) -> pd.DataFrame:
    meta = config.rename(columns=_META_COLUMNS).set_index("model")
    meta = meta.reindex(columns=list(dict.fromkeys(_META_COLUMNS.values())))  # text has no input/feature size
    meta["architecture"] = meta["architecture"].map(_architecture)
    meta["source_labels"] = meta["source_labels"].astype(str)
    meta["source_accuracy"] = meta["source_accuracy"].astype(float)
    integers = ["num_source_labels", "num_parameters", "memory_bytes", "input_size", "feature_dim"]
    meta[integers] = meta[integers].astype("Int64")
    return meta.sort_index()


def _target_meta(features: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    meta = features.set_index("finetune_dataset").rename(columns={"number_of_classes": "num_classes_csv"})
    meta = meta.reindex(targets)
    meta["num_classes"] = meta["num_classes_csv"]
    for target, fixes in TARGET_META_FIXES.items():
        if target in meta.index:
            meta.loc[target, list(fixes)] = list(fixes.values())
    missing = meta.index[meta[["size", "num_classes"]].isna().any(axis=1)].tolist()
    if missing:
        raise InvalidInputError(f"target_dataset_features.csv has no size/class count for {missing}.")
    meta.index.name = "target"
    return meta[["size", "num_classes", "num_classes_csv"]].astype("int64")


def _drop(frame: pd.DataFrame, mask: pd.Series, rule: str, cleaning: dict[str, int]) -> pd.DataFrame:
    cleaning[rule] = int(mask.sum())
    return frame[~mask]


def load_transfergraph(side: Side, root: Path | None = None, *, drop_diverged: bool = False) -> HubZooRecords:
    """Load and clean one side of the TransferGraph results into ``(T, M)`` matrices.

    Args:
        side (`str`): ``"image"`` (185 models, 10 targets) or ``"text"`` (164 models, 10 targets).
        root (`Path`, *optional*): folder holding ``image/`` and ``text/``; defaults to ``default_root()``.
        drop_diverged (`bool`, defaults to `False`): drop diverged runs (NaN where a pair has no other run)
            instead of keeping them as real outcomes. See the module docstring for both choices.

    Returns:
        `HubZooRecords`: matrices aligned on ``targets`` x ``models``; ``cleaning`` counts each rule's rows.

    Raises:
        InvalidInputError: ``side`` is neither ``"image"`` nor ``"text"``.
        TransferGraphNotFoundError: a CSV file is missing under ``root``.

    Example:
        >>> zoo = load_transfergraph("image")  # doctest: +SKIP
        >>> zoo.accuracy.shape  # doctest: +SKIP
        (10, 185)
    """
    if side not in ("image", "text"):
        raise InvalidInputError(f"side must be 'image' or 'text', got {side!r}.")
    root = Path(root) if root is not None else default_root()
    model_meta = _model_meta(_read_csv(root, side, "model_config_dataset.csv"))
    models = model_meta.index.tolist()
    features = _read_csv(root, side, "target_dataset_features.csv")
    runs = _read_csv(root, side, "records.csv", index_col=0, dtype={"finetuned_dataset": str, "model": str})
    cleaning: dict[str, int] = {"rows_in": len(runs)}

    known = {*features["finetune_dataset"], *EXCLUDED_TARGETS[side]}
    runs = _drop(runs, ~runs["finetuned_dataset"].isin(known), "junk_dataset_rows", cleaning)
    runs = _drop(runs, runs.get("peft_method", pd.Series(np.nan, runs.index)).notna(), "peft_rows", cleaning)
    runs = _drop(runs, runs["eval_accuracy"].isna(), "missing_accuracy_rows", cleaning)
    runs = _drop(runs, runs["finetuned_dataset"].isin(EXCLUDED_TARGETS[side]), "excluded_target_rows", cleaning)
    runs = _drop(runs, ~runs["model"].isin(models), "unknown_model_rows", cleaning)
    runs = runs.rename(columns={"finetuned_dataset": "target", "eval_accuracy": "accuracy"})
    targets = sorted(runs["target"].unique())
    target_meta = _target_meta(features, targets)

    threshold = runs["target"].map(DIVERGED_MARGIN / target_meta["num_classes"])
    median = runs.groupby("target")["accuracy"].transform("median")
    runs["diverged"] = (runs["accuracy"] <= threshold) & (median >= threshold + DIVERGED_MEDIAN_GAP)
    cleaning["diverged_runs"] = int(runs["diverged"].sum())
    any_diverged = runs.groupby(["target", "model"])["diverged"].any()
    runs = _drop(runs, runs["diverged"] & drop_diverged, "diverged_runs_dropped", cleaning)
    merged = runs.groupby(["target", "model"]).agg(accuracy=("accuracy", "mean"), num_runs=("accuracy", "size"))
    cleaning["repeated_runs_merged"] = len(runs) - len(merged)
    merged = merged.reindex(any_diverged.index).assign(diverged=any_diverged.astype(float)).reset_index()

    scores = _read_csv(root, side, "transferability_score_records.csv", index_col=0)
    cleaning["score_rows_in"] = len(scores)
    malformed = ~scores["metric"].isin(list(_METRICS)) | scores[["model", "score", "runtime"]].isna().any(axis=1)
    scores = _drop(scores, malformed, "score_rows_malformed", cleaning)
    outside = ~scores["model"].isin(models) | ~scores["target_dataset"].isin(targets)
    scores = _drop(scores, outside, "score_rows_outside_zoo", cleaning)
    grouped = scores.rename(columns={"target_dataset": "target"}).groupby(["target", "model", "metric"])
    scores = grouped[["score", "runtime"]].mean().reset_index()
    cleaning["score_rows_merged"] = sum(grouped.size()) - len(scores)
    by_metric = {name: scores[scores["metric"] == metric] for metric, name in _METRICS.items()}
    logger.info("TransferGraph %s: %d targets x %d models; cleaning %s", side, len(targets), len(models), cleaning)

    def grid(frame: pd.DataFrame, column: str) -> np.ndarray:
        table = frame.pivot(index="target", columns="model", values=column)
        return table.reindex(index=targets, columns=models).to_numpy(dtype=float)  # (T, M)

    return HubZooRecords(
        side=side,
        models=models,
        targets=targets,
        accuracy=grid(merged, "accuracy"),
        num_runs=np.nan_to_num(grid(merged, "num_runs")).astype(np.int64),
        diverged=np.nan_to_num(grid(merged, "diverged")) > 0,
        logme=grid(by_metric["logme"], "score"),
        reg_hscore=grid(by_metric["reg_hscore"], "score"),
        logme_runtime=grid(by_metric["logme"], "runtime"),
        reg_hscore_runtime=grid(by_metric["reg_hscore"], "runtime"),
        model_meta=model_meta,
        target_meta=target_meta,
        cleaning=cleaning,
    )


def model_source_labels(meta_row: pd.Series | Mapping[str, Any]) -> list[str]:
    """The class names a model was trained on, from a ``HubZooRecords.model_meta`` row, for inductive model tokens.

    ``source_labels`` is a Python-list string (``"['corgi', 'samoyed']"``, parsed with ``ast.literal_eval``) or a
    dataset placeholder (``"imagenet"``, ``"cifar100"``), returned as ``[name]``. Generic names (``LABEL_0``, ``"3"``)
    say nothing about the classes: they are dropped, and if nothing is left the source dataset name is returned, or
    ``[]`` when that is unknown too.

    Raises:
        InvalidInputError: ``source_labels`` starts like a list but is not a valid Python literal.

    Example:
        >>> model_source_labels({"source_labels": "['LABEL_0', 'LABEL_1']", "source_dataset": "glue/sst2"})
        ['glue/sst2']
    """
    raw = str(meta_row.get("source_labels") or "").strip()
    dataset = meta_row.get("source_dataset")
    fallback = [dataset.strip()] if isinstance(dataset, str) and dataset.strip() else []
    if not raw or raw.lower() == "nan":
        return fallback
    if not raw.startswith("["):
        return [raw]
    try:
        parsed = list(ast.literal_eval(raw))
    except (ValueError, SyntaxError, TypeError) as err:
        raise InvalidInputError(f"source_labels {raw[:80]!r} is not a Python list literal.") from err
    names = [str(name).strip() for name in parsed]
    names = [name for name in names if name and not _GENERIC_LABEL.fullmatch(name)]
    return names or fallback


def label_text_prompts(names: Sequence[str], task_type: Side) -> list[str]:
    """Turn class names into the sentences the text encoder embeds into class prototypes.

    Names are made readable (``_`` -> space, a lone CamelCase word split, whitespace collapsed). Images get
    ``"a photo of {name}."``, which says the name is picture content and, without an article, also reads for bins
    ("a photo of no vehicle."). Text labels are words of the task's own vocabulary (``negative``, ``Sci/Tech``) and
    are used bare: a template ("a text about negative.") adds the same words to every prototype, blurring them.

    Raises:
        InvalidInputError: ``task_type`` is not ``"image"``/``"text"``, or a name is empty or not a string.

    Example:
        >>> label_text_prompts(["maple_tree", "EducationalInstitution"], "image")
        ['a photo of maple tree.', 'a photo of Educational Institution.']
    """
    if task_type not in ("image", "text"):
        raise InvalidInputError(f"task_type must be 'image' or 'text', got {task_type!r}.")
    readable = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"Label names must be non-empty strings, got {name!r}.")
        readable.append(readable_label(name))
    return [f"a photo of {name}." for name in readable] if task_type == "image" else readable
