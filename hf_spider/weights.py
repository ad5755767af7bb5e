"""Loading a Transformers model's weights from safetensors only.

A ``.bin`` / ``.pt`` checkpoint is a pickle: even with ``torch.load(weights_only=True)`` it is a parser of untrusted
input that hf-spider has no need to run, since the Hub converts models to safetensors. Every model hf-spider loads
(the task encoder, the zoo models it re-ranks or scores, ``RankedModel.load``) goes through [`from_pretrained`].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import ArtifactError

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_NO_SAFETENSORS = re.compile(r"(does not appear to have a file|no file) named \S*safetensors", re.IGNORECASE)


def _pickle_only(model_id: str) -> ArtifactError:
    return ArtifactError(
        f"{model_id} has no safetensors weights (only pickle files such as pytorch_model.bin). hf-spider loads "
        "safetensors only, because unpickling a repo's file can run code. Convert the checkpoint to safetensors "
        "(load it where you trust it and call save_pretrained, or use the Hub's conversion Space), or drop the model."
    )


def from_pretrained(auto: Any, path: str, *, model_id: str, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """``auto.from_pretrained(path, use_safetensors=True, **kwargs)``, with a clear error for a checkpoint that has
    only pickle weights. ``trust_remote_code`` is the caller's (default ``False``).

    Raises:
        ArtifactError: ``path`` holds no safetensors weights.
    """
    folder = Path(path)
    if folder.is_dir() and not any(folder.glob("*.safetensors")) and any(
            p.suffix in _PICKLE_SUFFIXES for p in folder.iterdir()):
        raise _pickle_only(model_id)
    kwargs["use_safetensors"] = True  # never a caller's choice: see the module docstring
    try:
        return auto.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    except OSError as err:
        if _NO_SAFETENSORS.search(str(err)):
            raise _pickle_only(model_id) from err
        raise
