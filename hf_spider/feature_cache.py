"""Content-addressed on-disk cache of extracted features, one safetensors file per (model, sample, pooling).

The key is the sha256 of: the model (Hub id + resolved commit sha, or a local folder's absolute path + the size and
mtime of its files), the sample's dataset fingerprint and row indices, and the pooling settings. Equal keys mean
equal features, so an entry is never invalidated, only orphaned; delete the folder to reclaim space.

Files live under ``$HF_HOME/hf_spider/features/<key[:2]>/<key>.safetensors`` (override with ``cache_dir=`` or the
``HF_SPIDER_FEATURES_CACHE`` environment variable) and are written atomically (temp file + ``os.replace``), so
concurrent writers of one key are harmless and readers never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .files import atomic_write_bytes

logger = logging.getLogger(__name__)

FEATURES_FORMAT_VERSION = 1  # bump when pooling or the file layout changes: old entries are then never read
CACHE_ENV = "HF_SPIDER_FEATURES_CACHE"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")  # what from_pretrained reads


def default_cache_dir() -> Path:
    """``$HF_SPIDER_FEATURES_CACHE`` if set, else ``$HF_HOME/hf_spider/features``."""
    from huggingface_hub import constants

    return Path(os.environ.get(CACHE_ENV) or Path(constants.HF_HOME) / "hf_spider" / "features")


def model_identity(model_path: str, model_id: str, revision: str | None) -> str | None:
    """A string that changes whenever the model's weights may have changed, or ``None`` if it cannot be known yet.

    * a local folder: its absolute path plus the name, size and mtime of every file ``from_pretrained`` reads;
    * a Hub id: the commit sha, taken from ``revision`` when it is one, else resolved from the local Hub cache
      (no network). ``None`` when the model is not in the cache yet: load it, then ask again.
    """
    folder = Path(model_path)
    if folder.is_dir():
        stats = sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.iterdir()
            if p.is_file() and p.name.endswith(_MODEL_FILE_SUFFIXES)
        )
        return json.dumps({"id": model_id, "folder": str(folder.resolve()), "files": stats})
    if revision is not None and _SHA_RE.match(revision):
        return f"hub:{model_id}@{revision}"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=revision or "main")
    if not isinstance(cached, str):  # None (not cached) or the "cached as missing" sentinel
        return None
    return f"hub:{model_id}@{Path(cached).parent.name}"  # .../snapshots/<sha>/config.json


def commit_of(identity: str) -> str | None:
    """The commit sha inside a Hub identity from [`model_identity`], ``None`` for a local folder."""
    return identity.rsplit("@", 1)[1] if identity.startswith("hub:") else None


def cache_key(*, identity: str, fingerprint: str, indices: np.ndarray, settings: Mapping[str, Any]) -> str:
    """sha256 (hex) of the model identity, the sample's fingerprint and row indices, and the pooling settings."""
    head = json.dumps(
        {"format": FEATURES_FORMAT_VERSION, "model": identity, "sample": fingerprint, "settings": dict(settings)},
        sort_keys=True,
    )
    return hashlib.sha256(head.encode() + np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def entry_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.safetensors"


def read_entry(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(features, source_probs or None)`` stored at ``path``; ``None`` when absent or unreadable (logged)."""
    try:
        tensors = st_load(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, SafetensorError) as err:
        logger.warning("Ignoring unreadable feature cache entry %s (%s); it will be recomputed.", path, err)
        return None
    if "features" not in tensors:
        logger.warning("Ignoring feature cache entry %s without a `features` tensor.", path)
        return None
    probs = tensors.get("source_probs")
    return tensors["features"].numpy(), None if probs is None else probs.numpy()


def write_entry(
    path: Path, features: np.ndarray, source_probs: np.ndarray | None, metadata: Mapping[str, str]
) -> None:
    """Store one entry atomically. Failures to write (read-only disk, full disk) are logged, not raised."""
    tensors = {"features": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))}
    if source_probs is not None:
        tensors["source_probs"] = torch.from_numpy(np.ascontiguousarray(source_probs, dtype=np.float32))
    meta = {"format_version": str(FEATURES_FORMAT_VERSION), **{k: str(v) for k, v in metadata.items()}}
    try:
        atomic_write_bytes(path, st_save(tensors, metadata=meta))
    except OSError as err:
        logger.warning("Could not write the feature cache entry %s (%s); features were not cached.", path, err)
