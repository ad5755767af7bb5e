"""Forward passes of any Transformers model (image or text) into one feature vector per input.

Images go through ``AutoImageProcessor`` + ``AutoModel`` and are pooled with the model's pooler when it has one,
else by averaging the last hidden state over tokens / spatial positions (timm models load through Transformers'
``TimmWrapper``). Texts go through ``AutoTokenizer`` + ``AutoModel`` with mean pooling over the attention mask,
which is what sentence encoders such as all-MiniLM-L6-v2 were trained with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from .data import Modality
from .errors import InvalidInputError
from .hub import resolve_model_path

logger = logging.getLogger(__name__)


class FeatureExtractor:
    """A frozen model that turns inputs into pooled features, batched and without gradients.

    Args:
        model_id: Hub model id or local folder of a Transformers model.
        modality: ``"image"`` or ``"text"``.
        revision: Hub revision (branch, tag or commit sha) to load.
        batch_size: Inputs per forward pass.
        max_length: Token limit for text inputs.
        device: Torch device (default: CPU).
        trust_remote_code: Passed to Transformers; ``False`` unless you ask for it.

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
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        if modality not in ("image", "text"):
            raise InvalidInputError(f"modality must be 'image' or 'text', got {modality!r}.")
        self.model_id, self.revision, self.modality = model_id, revision, modality
        self.batch_size, self.max_length, self.device = batch_size, max_length, torch.device(device)
        path = resolve_model_path(model_id)
        kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if modality == "image":
            self.processor = AutoImageProcessor.from_pretrained(path, **kwargs)
        else:
            self.processor = AutoTokenizer.from_pretrained(path, **kwargs)
        self.model = AutoModel.from_pretrained(path, **kwargs).to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, inputs: Sequence[Any], *, verbose: bool = True) -> torch.Tensor:
        """Return ``(N, D)`` float32 features of ``inputs`` (PIL images or strings)."""
        from tqdm.auto import tqdm

        if len(inputs) == 0:
            raise InvalidInputError("No inputs to encode: the sample is empty.")
        batches = range(0, len(inputs), self.batch_size)
        out = []
        for start in tqdm(batches, desc=f"Encoding with {self.model_id}", disable=not verbose, leave=False):
            chunk = list(inputs[start : start + self.batch_size])
            out.append(self._encode_batch(chunk).float().cpu())
        return torch.cat(out)

    def _encode_batch(self, chunk: list[Any]) -> torch.Tensor:
        if self.modality == "image":
            pixels = self.processor(images=[_to_rgb(x) for x in chunk], return_tensors="pt")
            outputs = self.model(**{k: v.to(self.device) for k, v in pixels.items()})
            return pool_image_outputs(outputs)
        enc = self.processor(chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        outputs = self.model(**enc)
        return mean_pool(outputs.last_hidden_state, enc["attention_mask"])


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token states over the attention mask. ``(B, T, D), (B, T) -> (B, D)``."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def pool_image_outputs(outputs: Any) -> torch.Tensor:
    """One vector per image: the pooler output when present, else the mean of the last hidden state.

    The last hidden state is ``(B, T, D)`` for transformers (averaged over tokens) and ``(B, C, H, W)`` for
    convolutional models (averaged over positions).
    """
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is not None:
        return pooled.flatten(1)  # ResNet-style poolers are (B, D, 1, 1)
    hidden = outputs.last_hidden_state
    if hidden.dim() == 4:
        return hidden.mean(dim=(2, 3))  # (B, C, H, W) -> (B, C)
    return hidden.mean(dim=1)  # (B, T, D) -> (B, D)


def _to_rgb(image: Any) -> Any:
    convert = getattr(image, "convert", None)
    return convert("RGB") if convert is not None and getattr(image, "mode", "RGB") != "RGB" else image
