"""Forward passes of any Transformers model (image or text) into one feature vector per input, cached on disk.

Images go through ``AutoImageProcessor`` and are pooled with the model's pooler when it has a trained one, else by
averaging the last hidden state over tokens / spatial positions (timm models load through Transformers'
``TimmWrapper``). Texts go through ``AutoTokenizer`` with mean pooling over the attention mask, which is what
sentence encoders such as all-MiniLM-L6-v2 were trained with.

A checkpoint saved with a classification head (``*ForImageClassification`` / ``*ForSequenceClassification``) is
loaded with it: one forward pass gives both the backbone's pooled features (captured by a hook on the base model)
and the head's logits, whose softmax are the source-class probabilities LEEP and NCE read.

[`extract_features`] adds the content-addressed cache (``feature_cache.py``) and splits the work across processes
when run under ``accelerate launch`` / ``torchrun`` (contiguous shards, gathered in order).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import feature_cache, weights
from .data import Modality, TaskSample
from .errors import InvalidInputError
from .hub import resolve_model_path

logger = logging.getLogger(__name__)

_HEAD_SUFFIXES = {"image": "ForImageClassification", "text": "ForSequenceClassification"}
# Convolutional families run channels-last: oneDNN's depthwise convolutions are ~3x faster that way on CPU (Lite0,
# 64 images at 32 px: 0.14 s -> 0.04 s; features equal to 1e-5). Listed, not assumed: a model whose code calls
# .view() on a conv output would fail on a channels-last tensor.
CHANNELS_LAST = frozenset({"efficientnet", "resnet"})


class FeatureExtractor:
    """A frozen model that turns inputs into pooled features (and source-class probabilities), batched.

    Args:
        model_id: Hub model id or local folder of a Transformers model.
        modality: ``"image"`` or ``"text"``.
        revision: Hub revision (branch, tag or commit sha) to load.
        batch_size: Inputs per forward pass.
        max_length: Token limit for text inputs.
        device: Torch device (default: CPU).
        trust_remote_code: Passed to Transformers; ``False`` unless you ask for it.

    Attributes:
        has_head: Whether the checkpoint's classification head was loaded (then [`encode`] returns probabilities).

    Example:
        ```python
        >>> extractor = FeatureExtractor("sentence-transformers/all-MiniLM-L6-v2", modality="text")
        >>> extractor(["a cat", "a dog"]).shape
        torch.Size([2, 384])
        ```
    """

    def __init__(
        self,
        model_id: str,
        *,
        modality: Modality,
        revision: str | None = None,
        batch_size: int = 32,
        max_length: int = 256,
        device: str | torch.device = "cpu",
        trust_remote_code: bool = False,
    ) -> None:
        if modality not in ("image", "text"):
            raise InvalidInputError(f"modality must be 'image' or 'text', got {modality!r}.")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be ≥ 1, got {batch_size}.")
        self.model_id, self.revision, self.modality = model_id, revision, modality
        self.batch_size, self.max_length, self.device = batch_size, max_length, torch.device(device)
        self.path = resolve_model_path(model_id)
        kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            self._load(kwargs)
        except OSError as err:  # Transformers' "can't load" errors neither name the model nor say "offline"
            from .hub import model_load_error

            raise model_load_error(model_id, revision, err) from err

    def _load(self, kwargs: dict[str, Any]) -> None:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

        if self.modality == "image":
            self.processor = AutoImageProcessor.from_pretrained(self.path, **kwargs)
        else:
            self.processor = AutoTokenizer.from_pretrained(self.path, **kwargs)
        config = AutoConfig.from_pretrained(self.path, **kwargs)
        self.model, self.has_head, self._use_pooler = None, False, True
        if any(a.endswith(_HEAD_SUFFIXES[self.modality]) for a in getattr(config, "architectures", None) or ()):
            self._load_with_head(config, kwargs)
        if self.model is None:
            self.model, info = weights.from_pretrained(AutoModel, self.path, model_id=self.model_id,
                                                       output_loading_info=True, **kwargs)
            # A checkpoint saved without its pooler (e.g. ViT*ForImageClassification) gets a *random* pooler from
            # AutoModel: pool the hidden states instead.
            self._use_pooler = not any(k.startswith("pooler.") for k in info.get("missing_keys", ()))
        self.model = self.model.to(self.device).eval()
        model_type = getattr(self.model.config, "model_type", None)
        self._channels_last = self.modality == "image" and model_type in CHANNELS_LAST
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _load_with_head(self, config: Any, kwargs: dict[str, Any]) -> None:
        from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification, PreTrainedModel

        auto = AutoModelForImageClassification if self.modality == "image" else AutoModelForSequenceClassification
        model = weights.from_pretrained(auto, self.path, model_id=self.model_id, **kwargs)
        base = model.base_model
        if base is model or not isinstance(base, PreTrainedModel):  # e.g. timm wrappers: no hookable backbone
            logger.info("%s: no separable backbone under its head; using AutoModel, without source probabilities.",
                        self.model_id)
            return
        self.model, self.has_head = model, True
        self._captured: list[Any] = []
        base.register_forward_hook(lambda module, args, output: self._captured.append(output))

    def __call__(self, inputs: Sequence[Any], *, verbose: bool = True) -> torch.Tensor:
        """Return ``(N, D)`` float32 features of ``inputs`` (PIL images or strings)."""
        return self.encode(inputs, verbose=verbose)[0]

    @torch.inference_mode()
    def encode(self, inputs: Sequence[Any], *, verbose: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N, D)`` float32 features and ``(N, Cs)`` float32 source-class probabilities (``None`` without a head)."""
        from tqdm.auto import tqdm

        if len(inputs) == 0:
            raise InvalidInputError("No inputs to encode: the sample is empty.")
        batches = range(0, len(inputs), self.batch_size)
        feats, probs = [], []
        for start in tqdm(batches, desc=f"Encoding with {self.model_id}", disable=not verbose, leave=False):
            pooled, logits = self._forward_batch(list(inputs[start : start + self.batch_size]))
            feats.append(pooled.float().cpu())
            if logits is not None:
                probs.append(torch.softmax(logits.float(), dim=-1).cpu())
        return torch.cat(feats), torch.cat(probs) if probs else None

    def _forward_batch(self, chunk: list[Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass: ``(B, D)`` pooled features and ``(B, Cs)`` logits (or ``None``)."""
        if self.modality == "image":
            enc = self.processor(images=[_to_rgb(x) for x in chunk], return_tensors="pt")
        else:
            enc = self.processor(chunk, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        if self._channels_last:
            enc["pixel_values"] = enc["pixel_values"].contiguous(memory_format=torch.channels_last)
        outputs = self.model(**enc)
        logits = None
        if self.has_head:
            logits, outputs = outputs.logits, self._captured.pop()
            self._captured.clear()
        if self.modality == "image":
            return pool_image_outputs(outputs, use_pooler=self._use_pooler), logits
        return mean_pool(outputs.last_hidden_state, enc["attention_mask"]), logits


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token states over the attention mask. ``(B, T, D), (B, T) -> (B, D)``."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def pool_image_outputs(outputs: Any, *, use_pooler: bool = True) -> torch.Tensor:
    """One vector per image: the pooler output when present, else the mean of the last hidden state.

    The last hidden state is ``(B, T, D)`` for transformers (averaged over tokens) and ``(B, C, H, W)`` for
    convolutional models (averaged over positions). ``use_pooler=False`` ignores an (untrained) pooler.
    """
    pooled = getattr(outputs, "pooler_output", None) if use_pooler else None
    if pooled is not None:
        return pooled.flatten(1)  # ResNet-style poolers are (B, D, 1, 1)
    hidden = outputs.last_hidden_state
    if hidden.dim() == 4:
        return hidden.mean(dim=(2, 3))  # (B, C, H, W) -> (B, C)
    return hidden.mean(dim=1)  # (B, T, D) -> (B, D)


def _to_rgb(image: Any) -> Any:
    convert = getattr(image, "convert", None)
    return convert("RGB") if convert is not None and getattr(image, "mode", "RGB") != "RGB" else image


# --- cached, accelerate-aware extraction --------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """The features of one model on one task sample.

    Attributes:
        features: ``(N, D)`` float32, row ``i`` for ``sample.inputs[i]``.
        source_probs: ``(N, Cs)`` float32 softmax of the classification head's logits (rows sum to 1), or ``None``
            when the model has no classification head.
        model_id: The model the features come from.
        revision: The commit sha used (``None`` for a local folder or an uncached Hub model).
        from_cache: Whether they were read from the cache (then no model was loaded and no forward pass ran).
        forward_seconds: Wall time of preprocessing + forward passes (0 on a cache hit).
        load_seconds: Wall time of loading the model (0 on a cache hit).
        cache_path: The cache entry read or written (``None`` with ``cache_dir=False``).
    """

    features: np.ndarray
    source_probs: np.ndarray | None
    model_id: str
    revision: str | None = None
    from_cache: bool = False
    forward_seconds: float = 0.0
    load_seconds: float = 0.0
    cache_path: Path | None = None


def extract_features(
    model_id: str,
    sample: TaskSample,
    *,
    revision: str | None = None,
    with_source_probs: bool = False,
    cache_dir: str | Path | bool | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    verbose: bool = True,
) -> Features:
    """Features (and source-class probabilities) of ``model_id`` on ``sample``, from the cache when possible.

    Under ``accelerate launch`` / ``torchrun`` (or after creating an ``Accelerator()``) with several processes, every
    process must call this with the same arguments: each encodes one contiguous shard of the sample, the shards are
    gathered in order and every process returns the full ``(N, D)`` result; the main process writes the cache. A
    single process takes the plain path (no process group, no gather).

    Args:
        model_id: Hub model id or local folder of a Transformers model.
        sample: The task sample from [`sample_task`]; its fingerprint and indices key the cache.
        revision: Hub revision. The cache is keyed by a commit sha: the given one, else the commit the branch or tag
            points to in the local Hub cache (no network); pass a commit sha to pin results exactly.
        with_source_probs: Return the head's softmax too. Models without a head return ``source_probs=None``.
        cache_dir: Cache folder; ``None`` for the default (``$HF_HOME/hf_spider/features``), ``False`` to disable.
        batch_size: Inputs per forward pass.
        max_length: Token limit for text inputs (part of the cache key).
        device: Torch device; default: the accelerate process's device, else CUDA when available, else CPU.
        trust_remote_code: Passed to Transformers.
        verbose: Show a progress bar (main process only).

    Returns:
        A [`Features`].

    Raises:
        InvalidInputError: an empty sample.

    Example:
        ```python
        >>> sample = sample_task("imdb", shots_per_class=8)
        >>> out = extract_features("distilbert-base-uncased-finetuned-sst-2-english", sample, with_source_probs=True)
        >>> out.features.shape, out.source_probs.shape
        ((16, 768), (16, 2))
        ```
    """
    if len(sample.inputs) == 0:
        raise InvalidInputError("The task sample is empty: nothing to encode.")
    state = _distributed_state()
    root = None if cache_dir is False else Path(cache_dir or feature_cache.default_cache_dir())
    settings = {"modality": sample.modality, "pooling": "mask-mean" if sample.modality == "text" else "pooler-or-mean"}
    if sample.modality == "text":
        settings["max_length"] = max_length
    path = resolve_model_path(model_id)

    def lookup(identity: str | None) -> tuple[Path | None, tuple | None]:
        if root is None or identity is None:
            return None, None
        key = feature_cache.cache_key(identity=identity, fingerprint=sample.fingerprint, indices=sample.indices,
                                      settings=settings)
        entry_path = feature_cache.entry_path(root, key)
        entry = feature_cache.read_entry(entry_path)
        if entry is not None and len(entry[0]) != len(sample.inputs):  # a foreign file under our key: recompute
            logger.warning("Feature cache entry %s has %d rows, expected %d; recomputing.", entry_path,
                           len(entry[0]), len(sample.inputs))
            entry = None
        return entry_path, entry

    identity = feature_cache.model_identity(path, model_id, revision) if root is not None else None
    entry_path, entry = lookup(identity)
    if _all_true(state, entry is not None):
        logger.info("Features of %s read from the cache (%s).", model_id, entry_path)
        return _result(entry, model_id, identity, with_source_probs, from_cache=True, cache_path=entry_path)

    if device is None:
        device = state.device if state is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    extractor = FeatureExtractor(model_id, modality=sample.modality, revision=revision, batch_size=batch_size,
                                 max_length=max_length, device=device, trust_remote_code=trust_remote_code)
    load_seconds = time.perf_counter() - start
    if root is not None and identity is None:  # a Hub model downloaded just now: its commit sha is known now
        identity = feature_cache.model_identity(path, model_id, revision)
        entry_path, entry = lookup(identity)
        if _all_true(state, entry is not None):
            return _result(entry, model_id, identity, with_source_probs, from_cache=True, cache_path=entry_path,
                           load_seconds=load_seconds)

    start = time.perf_counter()
    show = verbose and (state is None or state.is_main_process)
    if state is None:
        feats, probs = extractor.encode(sample.inputs, verbose=show)
    else:
        feats, probs = _encode_sharded(extractor, sample.inputs, state, verbose=show)
    forward_seconds = time.perf_counter() - start
    entry = (feats.numpy(), None if probs is None else probs.numpy())
    if entry_path is not None and (state is None or state.is_main_process):
        feature_cache.write_entry(entry_path, *entry, metadata={
            "model_id": model_id, "revision": revision or "", "sample": sample.fingerprint, **settings})
    if state is not None and entry_path is not None:
        state.wait_for_everyone()  # the entry is on disk before any process looks it up again
    return _result(entry, model_id, identity, with_source_probs, from_cache=False, cache_path=entry_path,
                   forward_seconds=forward_seconds, load_seconds=load_seconds)


def _result(entry: tuple, model_id: str, identity: str | None, with_source_probs: bool, **kwargs: Any) -> Features:
    features, probs = entry
    revision = feature_cache.commit_of(identity) if identity else None
    return Features(features, probs if with_source_probs else None, model_id, revision, **kwargs)


def _distributed_state():
    """accelerate's ``PartialState`` when this is one of several processes, else ``None`` (and nothing imported)."""
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not (dist.is_available() and dist.is_initialized()):
        return None
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo on CPU-only machines (torchrun / mpirun)
    return state if state.num_processes > 1 else None


def _all_true(state, flag: bool) -> bool:
    """``flag`` in a single process; whether every process has ``flag`` in a group (all hit, or all recompute)."""
    if state is None:
        return flag
    from accelerate.utils import gather_object

    return all(gather_object([flag]))


def _encode_sharded(extractor: FeatureExtractor, inputs: Sequence[Any], state, *, verbose: bool):
    """Encode contiguous shards (padded to equal length by repeating an input), gather in rank order, trim."""
    from accelerate.utils import gather

    n, rank = len(inputs), state.process_index
    per = math.ceil(n / state.num_processes)
    lo, hi = min(rank * per, n), min((rank + 1) * per, n)
    shard = list(inputs[lo:hi])
    shard += [inputs[hi - 1] if hi > lo else inputs[0]] * (per - len(shard))  # (per,): gather needs equal shapes
    feats, probs = extractor.encode(shard, verbose=verbose)
    # Shards are contiguous and only trailing ranks are short, so the first n gathered rows are the inputs in order.
    feats = gather(feats.to(state.device)).cpu()[:n]  # (W * per, D) -> (N, D)
    if probs is not None:
        probs = gather(probs.to(state.device)).cpu()[:n]  # (N, Cs)
    return feats, probs
