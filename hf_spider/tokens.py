"""Task tokens (class prototypes of a dataset) and model tokens (``spider/token.safetensors``).

A model token file is plain safetensors: one tensor ``token`` of shape ``(d,)`` and string metadata
(``selector``, ``selector_revision``, ``dim``, ``format_version``, ``model_id``). Its sha256 is recorded in the
selector's ``zoo.json``, so a token is trusted only when its bytes match.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.torch import load as st_load

from .data import Modality, TaskSample
from .errors import InvalidInputError, TokenIntegrityError
from .files import atomic_write_bytes, atomic_write_text  # noqa: F401  (their old home; kept importable)

TOKEN_FORMAT_VERSION = 1
TOKEN_FILENAME = "spider/token.safetensors"
MAX_TOKEN_BYTES = 1 << 22  # a token is a few KB; refuse to parse anything absurdly large


@dataclass(frozen=True)
class TaskToken:
    """A dataset summarised as class prototypes.

    Attributes:
        prototypes: ``(C, d)`` float32, row ``k`` the mean encoder feature of class ``k``.
        label_names: ``C`` class names.
        encoder: Id of the encoder that produced the prototypes.
    """

    prototypes: torch.Tensor
    label_names: list[str]
    encoder: str

    def __post_init__(self) -> None:
        if self.prototypes.dim() != 2 or self.prototypes.shape[0] != len(self.label_names):
            raise InvalidInputError(
                f"prototypes must be (C, d) with C = {len(self.label_names)} label names, "
                f"got shape {tuple(self.prototypes.shape)}."
            )
        if not torch.isfinite(self.prototypes).all():
            raise InvalidInputError("Task prototypes contain NaN or inf: check the encoder's inputs and outputs.")


def class_prototypes(features: torch.Tensor, labels: torch.Tensor | np.ndarray, num_classes: int) -> torch.Tensor:
    """Mean feature of each class, in one scatter-add.

    Shape:
        features: (N, d); labels: (N,) ints in [0, C). Returns (C, d).
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise InvalidInputError(f"features (N, d) and labels (N,) expected, got {tuple(features.shape)} and "
                                f"{tuple(labels.shape)}.")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InvalidInputError(f"labels must be class ids in [0, {num_classes}), got values in "
                                f"[{int(labels.min())}, {int(labels.max())}]; remap them with np.unique.")
    counts = torch.bincount(labels, minlength=num_classes).unsqueeze(1)  # (C, 1)
    if (counts == 0).any():
        empty = torch.nonzero(counts[:, 0] == 0).flatten().tolist()
        raise InvalidInputError(
            f"Class id(s) {empty[:10]} have no samples, so they have no prototype. Drop those classes (remap the "
            "labels to the classes present) or sample more rows per class."
        )
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype).index_add_(0, labels, features)
    return sums / counts


def standardized_prototypes(features: torch.Tensor, labels: torch.Tensor | np.ndarray, num_classes: int
                            ) -> torch.Tensor:
    """Class means of features z-scored over the task sample: the re-ranking stage's input from one zoo model.

    Plain means lose how far apart the classes are *relative to* the spread of that model's features; z-scoring per
    dimension first keeps that ratio (a Fisher-style separability cue), comparable across models and widths.
    """
    features = torch.as_tensor(features, dtype=torch.float32)
    z = (features - features.mean(0)) / features.std(0, correction=0).clamp_min(1e-6)
    return class_prototypes(z, labels, num_classes)


class TaskEncoder:
    """The frozen generic encoder that turns a task sample into a [`TaskToken`].

    Args:
        model_id: Transformers model (Hub id or folder) used for every task of a selector, or
            ``hf-spider/pixels-N``: weight-free grey ``N × N`` pixels (`hf_spider.pixels`).
        modality: ``"image"`` or ``"text"``.
        revision: Pinned revision of ``model_id``.
        batch_size: Inputs per forward pass.
    """

    def __init__(self, model_id: str, *, modality: Modality, revision: str | None = None, batch_size: int = 32):
        from .features import FeatureExtractor
        from .pixels import PixelEncoder, pixel_side

        self.model_id = model_id
        if modality == "image" and pixel_side(model_id) is not None:  # weight-free: nothing to load
            self.extractor = PixelEncoder(model_id)
        else:
            self.extractor = FeatureExtractor(model_id, modality=modality, revision=revision, batch_size=batch_size)

    def encode(self, sample: TaskSample, *, verbose: bool = True) -> TaskToken:
        """Class prototypes of ``sample`` under this encoder."""
        if sample.modality != self.extractor.modality:
            raise InvalidInputError(
                f"This selector's task encoder reads {self.extractor.modality} inputs, but the dataset's input "
                f"column holds {sample.modality}s; use a selector trained for {sample.modality} tasks."
            )
        features = self.extractor(sample.inputs, verbose=verbose)  # (N, d)
        return TaskToken(class_prototypes(features, sample.labels, sample.num_classes), sample.label_names,
                         self.model_id)

    def encode_texts(self, texts: list[str], *, verbose: bool = False) -> torch.Tensor:
        """Encode free texts (e.g. label-name prompts) into ``(len(texts), d)`` features."""
        return self.extractor(texts, verbose=verbose)


# --- model token files --------------------------------------------------------------------------------------


def token_bytes(
    token: torch.Tensor, *, model_id: str, selector: str, selector_revision: str | None = None
) -> bytes:
    """Serialise one model token to safetensors bytes (its identity is ``token_sha256`` of the values).

    The header is written here with sorted keys (the safetensors writer orders metadata arbitrarily), so the same
    token always gives the same bytes: re-saving a selector changes no file in git.
    """
    token = token.detach().to(torch.float32).contiguous().cpu()
    if token.dim() != 1:
        raise InvalidInputError(f"A model token is a vector (d,), got shape {tuple(token.shape)}.")
    metadata = {
        "format_version": str(TOKEN_FORMAT_VERSION),
        "dim": str(token.shape[0]),
        "model_id": model_id,
        "selector": selector,
        "selector_revision": selector_revision or "",
    }
    data = token.numpy().astype("<f4").tobytes()
    header = {"__metadata__": metadata, "token": {"dtype": "F32", "shape": [token.shape[0]],
                                                  "data_offsets": [0, len(data)]}}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + data


def token_sha256(token: torch.Tensor) -> str:
    """sha256 of a token's float32 little-endian values: what ``zoo.json`` records and every reader checks.

    The values, not the file, are hashed so that a token re-written with fresh metadata (e.g. the selector's
    revision once it is pushed) keeps its identity, while any change to the vector itself is caught.
    """
    values = token.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4")
    return hashlib.sha256(values.tobytes()).hexdigest()


def parse_token(data: bytes, *, expected_sha256: str | None = None, expected_dim: int | None = None,
                source: str = "token") -> tuple[torch.Tensor, dict[str, str]]:
    """Check and parse model-token bytes; returns ``(token (d,), metadata)``.

    Only safetensors is parsed (no pickle); the size is bounded before parsing.

    Raises:
        TokenIntegrityError: malformed or truncated file, wrong tensor name/shape/dtype, dimension or sha256.
    """
    if len(data) > MAX_TOKEN_BYTES:  # (a bounded reader stops one byte past the limit)
        raise TokenIntegrityError(f"{source}: at least {len(data):,} bytes, over hf-spider's limit of "
                                  f"{MAX_TOKEN_BYTES:,} for a model token file; re-download or re-save it.")
    if len(data) < 8:
        raise TokenIntegrityError(f"{source}: {len(data)} bytes is not a model token file.")
    try:
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_len])
        tensors = st_load(data)
    except Exception as err:  # safetensors raises several types for malformed input
        raise TokenIntegrityError(f"{source}: not a valid safetensors file ({err}); re-download it.") from err
    metadata = header.get("__metadata__") or {} if isinstance(header, dict) else {}
    token = tensors.get("token")
    if set(tensors) != {"token"} or token is None or token.dim() != 1 or token.dtype != torch.float32:
        raise TokenIntegrityError(f"{source}: expected one float32 vector named 'token', found {list(tensors)}.")
    if expected_dim is not None and token.shape[0] != expected_dim:
        raise TokenIntegrityError(
            f"{source}: token has dim {token.shape[0]}, the selector expects {expected_dim}. It belongs to another "
            "selector: use the selector named in its metadata, or re-tokenize the model."
        )
    if expected_sha256 is not None and token_sha256(token) != expected_sha256:
        raise TokenIntegrityError(
            f"{source}: token sha256 {token_sha256(token)[:12]}… does not match zoo.json ({expected_sha256[:12]}…). "
            "The token was modified; re-download it (force_download=True) or re-run `hf-spider tokenize`."
        )
    if not torch.isfinite(token).all():
        raise TokenIntegrityError(f"{source}: token contains NaN or inf.")
    return token, {str(k): str(v) for k, v in metadata.items()}
