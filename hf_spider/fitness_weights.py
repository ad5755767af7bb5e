"""Loading a selector's fitness network from ``model.safetensors`` it did not write: checked before it is trusted.

The order matters: the file is read under a size cap (``limits.read_bounded``); its header is parsed and every
tensor's name, dtype and shape compared with what ``config.json`` implies (taken from the network built on the
``meta`` device, which allocates nothing); only then are the values decoded, and refused when any is NaN or inf (they
would turn every score into NaN).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch
from safetensors.torch import load as st_load

from .errors import ArtifactError
from .fitness import FitnessConfig, FitnessNetwork
from .limits import MAX_WEIGHTS_BYTES, read_bounded

_MAX_HEADER_BYTES = 16 << 20  # safetensors' own reader refuses headers above 100 MB; ours hold a few KB


def expected_shapes(config: FitnessConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor ``FitnessNetwork(config)`` saves, computed without allocating memory."""
    with torch.device("meta"):
        network = FitnessNetwork(config)
    return {name: tuple(t.shape) for name, t in network.state_dict().items()}


def read_header(data: bytes, *, source: str) -> dict[str, dict]:
    """The tensor entries of a safetensors header (``__metadata__`` dropped), after checking its framing.

    Raises:
        ArtifactError: truncated file, header not JSON, or data offsets outside the file.
    """
    if len(data) < 8:
        raise ArtifactError(f"{source} is {len(data)} bytes: truncated. Re-download or re-save the selector.")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise ArtifactError(f"{source}: header length {length:,} runs past the file ({len(data):,} bytes); the file "
                            "is truncated or not safetensors. Re-download or re-save the selector.")
    try:
        header = json.loads(data[8 : 8 + length])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{source}: the header is not JSON ({err}); re-download or re-save the selector.") from err
    if not isinstance(header, dict):
        raise ArtifactError(f"{source}: the header is not a JSON object; re-download or re-save the selector.")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("shape"), list)
                and all(isinstance(n, int) and n >= 0 for n in entry["shape"])):
            raise ArtifactError(f"{source}: tensor {name!r} has a malformed header entry {str(entry)[:80]}.")
    return header


def load_fitness(path: Path, config: FitnessConfig, *, source: str,
                 extra_prefix: str | None = None) -> tuple[FitnessNetwork, dict[str, torch.Tensor]]:
    """The fitness network of ``config`` with the weights of ``path``, every check passed, and the F32 tensors named
    ``extra_prefix...`` that the file holds beside it (the selector's task inputs; their owner checks their shapes).

    Raises:
        FileNotFoundError: no ``model.safetensors``.
        ArtifactError: not a regular file, too large, malformed, tensors that do not match ``config.json`` (missing,
            extra, wrong shape or dtype), or NaN/inf values.
    """
    data = read_bounded(path, limit=MAX_WEIGHTS_BYTES, what=source)
    header = read_header(data, source=source)
    expected = expected_shapes(config)
    side = {name for name in header if extra_prefix and name.startswith(extra_prefix)}
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected) - side)
    if missing or extra:
        raise ArtifactError(f"{source} does not match config.json: missing tensors {missing[:5]}, unexpected "
                            f"{extra[:5]}. Re-save the selector, or fix config.json's `fitness` sizes.")
    for name, shape in expected.items():
        entry = header[name]
        if tuple(entry["shape"]) != shape or entry.get("dtype") != "F32":
            raise ArtifactError(
                f"{source}: tensor {name!r} is {entry.get('dtype')} {tuple(entry['shape'])}, config.json implies F32 "
                f"{shape}. The weights and config.json come from different selectors; re-save or re-download it."
            )
    for name in side:
        if header[name].get("dtype") != "F32":
            raise ArtifactError(f"{source}: tensor {name!r} is {header[name].get('dtype')}, not F32; re-save the "
                                "selector.")
    shapes = [*expected.values(), *(tuple(header[name]["shape"]) for name in side)]
    expected_bytes = 4 * sum(math.prod(shape) for shape in shapes)
    if len(data) - 8 - struct.unpack("<Q", data[:8])[0] != expected_bytes:
        raise ArtifactError(f"{source} holds {len(data):,} bytes, not what its tensors need; it is truncated or "
                            "padded. Re-download or re-save the selector.")
    try:
        state = st_load(data)
    except Exception as err:  # safetensors raises several types for malformed input
        raise ArtifactError(f"{source} is not a valid safetensors file ({err}); re-download or re-save it.") from err
    bad = [name for name, tensor in state.items() if not torch.isfinite(tensor).all()]
    if bad:
        raise ArtifactError(f"{source}: tensor(s) {bad[:5]} hold NaN or inf, which would make every score NaN. The "
                            "weights are corrupt (or training diverged); re-download the selector or retrain it.")
    extra_state = {name: state.pop(name) for name in side}
    network = FitnessNetwork(config)
    network.load_state_dict(state)
    return network, extra_state
