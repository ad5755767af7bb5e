"""An independent functional forward of an EfficientNet-Lite state_dict, to verify ``hf_spider.lite``'s conversion.

The conversion itself lives in the library (``hf_spider/lite.py``): it is the default image task encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hf_spider.lite import (  # noqa: F401  (re-exported for the build scripts and tests)
    BN_EPS,
    LITE_STRIDES,
    SE_IDENTITY_BIAS,
    Stage,
    _tf_same_pad,
    convert_state_dict,
    lite_config,
    lite_stages,
    tf_same_depthwise_padding,
)


def _conv_same(x: torch.Tensor, w: torch.Tensor, stride: int, groups: int = 1) -> torch.Tensor:
    k = w.shape[-1]
    top, bottom = _tf_same_pad(x.shape[-2], k, stride)
    left, right = _tf_same_pad(x.shape[-1], k, stride)
    return F.conv2d(F.pad(x, (left, right, top, bottom)), w, stride=stride, groups=groups)


def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, eps=BN_EPS)


@torch.no_grad()
def reference_forward(sd: dict[str, torch.Tensor], stages: list[Stage], x: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, 1000)`` of the original state_dict, from the paper's block definition. ``x``: (B, 3, H, W)."""
    h = F.relu6(_bn(_conv_same(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    block = 0
    for st in stages:
        for j in range(st.repeats):
            p = f"_blocks.{block}"
            inp = h
            if f"{p}._expand_conv.weight" in sd:
                h = F.relu6(_bn(F.conv2d(h, sd[f"{p}._expand_conv.weight"]), sd, f"{p}._bn0"))
            stride = st.stride if j == 0 else 1
            h = F.relu6(_bn(_conv_same(h, sd[f"{p}._depthwise_conv.weight"], stride, groups=h.shape[1]), sd,
                            f"{p}._bn1"))
            h = _bn(F.conv2d(h, sd[f"{p}._project_conv.weight"]), sd, f"{p}._bn2")
            if stride == 1 and inp.shape == h.shape:
                h = h + inp
            block += 1
    h = F.relu6(_bn(F.conv2d(h, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(h.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"])  # (B, 1280) -> (B, 1000)
