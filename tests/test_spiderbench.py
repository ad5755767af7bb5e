"""SpiderBench's zoos: the EfficientNet-Lite conversion on a tiny random network, the one zoo entry point for both
modalities, and the bundled selector.

Fast and offline: the conversion tests build a random Lite-shaped state_dict (no pip model package needed). Task and
split disjointness are v2's (``test_spiderbench_v2.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.spiderbench.convert import (
    SE_IDENTITY_BIAS,
    Stage,
    convert_state_dict,
    lite_config,
    lite_stages,
    reference_forward,
    tf_same_depthwise_padding,
)

# Transformers fixes the stem at 32 and the head at 1280 channels and rounds the rest to multiples of 8, as Lite does.
TINY = [Stage(32, 8, 3, 1, 1, 1), Stage(8, 16, 3, 2, 2, 2), Stage(16, 24, 5, 2, 2, 2), Stage(24, 32, 3, 2, 2, 1),
        Stage(32, 40, 5, 1, 2, 2), Stage(40, 48, 5, 2, 2, 1), Stage(48, 56, 3, 1, 2, 1)]
LITE1 = [Stage(32, 16, 3, 1, 1, 1), Stage(16, 24, 3, 2, 6, 3), Stage(24, 40, 5, 2, 6, 3), Stage(40, 80, 3, 2, 6, 4),
         Stage(80, 112, 5, 1, 6, 4), Stage(112, 192, 5, 2, 6, 5), Stage(192, 320, 3, 1, 6, 1)]


def _random_lite_state_dict(stages: list[Stage], head: int = 1280, classes: int = 5) -> dict[str, torch.Tensor]:
    """An efficientnet_pytorch-style Lite state_dict with random weights and BatchNorm statistics."""
    gen = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}

    def bn(name: str, n: int) -> None:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(n, generator=gen)
        sd[f"{name}.bias"] = 0.1 * torch.randn(n, generator=gen)
        sd[f"{name}.running_mean"] = 0.1 * torch.randn(n, generator=gen)
        sd[f"{name}.running_var"] = 0.5 + torch.rand(n, generator=gen)
        sd[f"{name}.num_batches_tracked"] = torch.tensor(0)

    sd["_conv_stem.weight"] = 0.3 * torch.randn(stages[0].in_channels, 3, 3, 3, generator=gen)
    bn("_bn0", stages[0].in_channels)
    b = 0
    for st in stages:
        for j in range(st.repeats):
            cin = st.in_channels if j == 0 else st.out_channels
            mid = cin * st.expand_ratio
            if st.expand_ratio != 1:
                sd[f"_blocks.{b}._expand_conv.weight"] = 0.3 * torch.randn(mid, cin, 1, 1, generator=gen)
                bn(f"_blocks.{b}._bn0", mid)
            sd[f"_blocks.{b}._depthwise_conv.weight"] = 0.3 * torch.randn(mid, 1, st.kernel_size, st.kernel_size,
                                                                            generator=gen)
            bn(f"_blocks.{b}._bn1", mid)
            sd[f"_blocks.{b}._project_conv.weight"] = 0.3 * torch.randn(st.out_channels, mid, 1, 1, generator=gen)
            bn(f"_blocks.{b}._bn2", st.out_channels)
            b += 1
    sd["_conv_head.weight"] = 0.1 * torch.randn(head, stages[-1].out_channels, 1, 1, generator=gen)
    bn("_bn1", head)
    sd["_fc.weight"] = 0.05 * torch.randn(classes, head, generator=gen)
    sd["_fc.bias"] = torch.zeros(classes)
    return sd


def test_stage_layout_is_read_back_from_the_state_dict():
    assert lite_stages(_random_lite_state_dict(TINY)) == TINY


def test_depthwise_padding_follows_tf_same():
    assert tf_same_depthwise_padding(LITE1, 224) == []  # every stride-2 input even
    assert tf_same_depthwise_padding(LITE1, 240) == [15]  # 15x15 input to the first block of stage 6: symmetric
    assert tf_same_depthwise_padding(LITE1, 64) == []
    with pytest.raises(ValueError):
        tf_same_depthwise_padding(LITE1, 65)


def test_se_gate_is_exactly_one_in_float32():
    assert torch.sigmoid(torch.tensor(SE_IDENTITY_BIAS, dtype=torch.float32)).item() == 1.0


@pytest.mark.parametrize("size", [64, 48])  # 48: an odd (3x3) input reaches a stride-2 block -> symmetric padding
def test_converted_transformers_model_matches_reference_forward(size):
    from transformers import EfficientNetForImageClassification

    sd = _random_lite_state_dict(TINY)
    config = lite_config(TINY, image_size=size, num_labels=5)
    model = EfficientNetForImageClassification(config).eval()
    missing, unexpected = model.load_state_dict(convert_state_dict(sd, TINY), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(pixel_values=x).logits
    torch.testing.assert_close(ours, reference_forward(sd, TINY, x), atol=1e-4, rtol=1e-4)


def test_build_zoo_builds_the_text_zoo_with_the_text_recipe(monkeypatch):
    from benchmarks.spiderbench import build_zoo
    from benchmarks.spiderbench.text import build_zoo as text_zoo

    built = []
    monkeypatch.setattr(build_zoo, "pin_threads", lambda: None)  # leave this process's torch threads alone
    monkeypatch.setattr(text_zoo, "build_zoo", lambda: built.append("text"))
    monkeypatch.setattr(build_zoo, "build_descendant", lambda *a: built.append("image"))
    build_zoo.main(["--modality", "text"])
    assert built == ["text"]
    with pytest.raises(SystemExit):  # the image build's worker split means nothing to the text zoo
        build_zoo.main(["--modality", "text", "--reverse"])
    assert built == ["text"]


def test_bundled_selector_ranks_the_spiderbench_zoo():
    """The shipped SpiderBench selector ranks a bundled dataset end to end, offline (its encoder is converted from
    the pip-installed Lite0 weights)."""
    from benchmarks.spiderbench.build_zoo import ZOO
    from hf_spider import SpiderSelector, bundled_selector
    from hf_spider.bundled import bundled_dataset
    from hf_spider.cascade import CascadeConfig
    from hf_spider.estimators import ESTIMATORS

    selector = SpiderSelector.from_pretrained(bundled_selector("spiderbench-image"), token_source="mirror")
    assert selector.model_ids == [f"spiderbench/{m}" for m in ZOO]
    # v2: the prior + the network, trained on measured fine-tuning, and a learned estimator cascade within M/3
    assert selector.task_inputs is not None and selector.task_inputs.prior.shape == (len(ZOO),)
    assert selector.config.training["labels"].startswith("measured fine-tuning")
    cascade = CascadeConfig.from_dict(selector.config.cascade)
    assert cascade.estimator in ESTIMATORS and 1 <= cascade.default_k <= len(ZOO) // 3
    ranking = selector.rank(bundled_dataset("fashion-mnist"), rerank=0, verbose=False)
    assert sorted(m.model_id for m in ranking) == sorted(selector.model_ids)
    assert all(np.isfinite(m.score) for m in ranking)
