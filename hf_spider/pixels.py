"""A weight-free image task encoder: grey ``side × side`` area means, standardised per image (``hf-spider/pixels-N``).

For zoos of small, mostly grey images (glyphs, digits, silhouettes: SpiderBench's), what tells tasks apart is shape,
which coarse pixels keep; a network pass adds little there and costs about one zoo model's forward pass, the whole
budget of a selector that must run in 1/M of the zoo's time. It is the wrong encoder for photos: selectors for
natural images use a learned one (``hf-spider/efficientnet-lite0``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import InvalidInputError

_ID = re.compile(r"hf-spider/pixels-(\d+)")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L" mode
MAX_SIDE = 64


def pixel_side(model_id: str) -> int | None:
    """``N`` of ``hf-spider/pixels-N`` (1 ≤ N ≤ 64); ``None`` for any other id."""
    match = _ID.fullmatch(model_id)
    if match is None:
        return None
    side = int(match.group(1))
    if not 1 <= side <= MAX_SIDE:
        raise InvalidInputError(f"{model_id}: the pixel encoder's side must be 1–{MAX_SIDE}, got {side}.")
    return side


def pixel_features(images: np.ndarray | torch.Tensor, side: int) -> torch.Tensor:
    """``(N, side²)`` float32 of ``(N, H, W, 3)`` RGB arrays (0–255): grey level, area means, each row standardised
    (zero mean, unit variance; a blank image gives zeros) so brightness and contrast drop out. The means are exact
    when ``side`` divides the image size."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)) @ torch.tensor(LUMA)  # (N, H, W); a writable copy
    flat = torch.nn.functional.adaptive_avg_pool2d(x.unsqueeze(1), side).flatten(1)
    centred = flat - flat.mean(1, keepdim=True)
    return centred / flat.std(1, correction=0, keepdim=True).clamp_min(1e-6)


class PixelEncoder:
    """The ``FeatureExtractor`` interface for ``hf-spider/pixels-N``: PIL images in, ``(N, N²)`` features out."""

    modality = "image"

    def __init__(self, model_id: str):
        side = pixel_side(model_id)
        if side is None:
            raise InvalidInputError(f"{model_id!r} is not a pixel encoder id (hf-spider/pixels-N).")
        self.model_id, self.side = model_id, side

    def __call__(self, inputs: Sequence[Any], *, verbose: bool = True) -> torch.Tensor:
        if len(inputs) == 0:
            raise InvalidInputError("No inputs to encode: the sample is empty.")
        # images of different sizes are pooled one by one; a uniform batch (the usual case) in one call
        arrays = [np.asarray(img.convert("RGB")) for img in inputs]
        if len({a.shape for a in arrays}) == 1:
            return pixel_features(np.stack(arrays), self.side)
        return torch.cat([pixel_features(a[None], self.side) for a in arrays])
