"""Class label names of the Hub-zoo target datasets, read from ``label_names.json`` next to this file.

Benchmark-side on purpose: the library (``hf_spider.hubzoo``) turns names into prompts but never reads this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LABEL_NAMES_PATH = Path(__file__).with_name("label_names.json")
_KEYS = {"task_type", "source", "names", "note"}


def load_label_names(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Load ``{dataset: {"task_type", "source", "names", "note"}}``, names in label-id order.

    Args:
        path (`Path`, *optional*): the JSON file; defaults to ``benchmarks/hubzoo/label_names.json``.

    Returns:
        `dict`: one entry per dataset as written in the ``finetuned_dataset`` column of the TransferGraph records.

    Raises:
        ValueError: an entry lacks a key, has a task_type other than image/text, or empty or repeated names.

    Example:
        >>> load_label_names()["glue/sst2"]["names"]
        ['negative', 'positive']
    """
    entries = json.loads((path or LABEL_NAMES_PATH).read_text(encoding="utf-8"))
    for dataset, entry in entries.items():
        if set(entry) != _KEYS:
            raise ValueError(f"{dataset}: keys {sorted(entry)}, expected {sorted(_KEYS)}.")
        if entry["task_type"] not in ("image", "text"):
            raise ValueError(f"{dataset}: task_type {entry['task_type']!r} is neither 'image' nor 'text'.")
        names = entry["names"]
        if not names or not all(isinstance(name, str) and name.strip() for name in names):
            raise ValueError(f"{dataset}: names must be a non-empty list of non-empty strings.")
        if len(set(names)) != len(names):
            raise ValueError(f"{dataset}: repeated label names.")
    return entries
