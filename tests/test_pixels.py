"""The weight-free task encoder ``hf-spider/pixels-N``: ids, features, and the same features on both paths the
SpiderBench selector sees (trained on the benchmark's cache, served by ``SpiderSelector.rank``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hf_spider.errors import InvalidInputError
from hf_spider.pixels import PixelEncoder, pixel_features, pixel_side
from hf_spider.tokens import TaskEncoder


def test_ids_parse_and_bad_sides_are_refused():
    assert pixel_side("hf-spider/pixels-16") == 16
    assert pixel_side("hf-spider/efficientnet-lite0") is None and pixel_side("pixels-16") is None
    with pytest.raises(InvalidInputError, match="1–64"):
        pixel_side("hf-spider/pixels-0")
    with pytest.raises(InvalidInputError, match="not a pixel encoder"):
        PixelEncoder("hf-spider/efficientnet-lite0")


def test_features_are_standardised_area_means_of_the_grey_level():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    out = pixel_features(images, 4)
    grey = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    means = grey.reshape(3, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(3, 16)  # exact 2×2 cells
    expected = (means - means.mean(1, keepdims=True)) / means.std(1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(pixel_features(images * 0 + 7, 4).numpy(), 0.0)  # a blank image: zeros, not NaN
    brighter = np.clip(images.astype(np.int64) // 2 + 40, 0, 255)
    np.testing.assert_allclose(pixel_features(brighter, 1).numpy(), 0.0)  # one cell: nothing left after centring


def test_task_encoder_uses_it_without_loading_anything_and_handles_mixed_sizes():
    encoder = TaskEncoder("hf-spider/pixels-4", modality="image")
    assert isinstance(encoder.extractor, PixelEncoder)
    rng = np.random.default_rng(1)
    small, big = (rng.integers(0, 256, (n, n, 3)).astype(np.uint8) for n in (8, 16))
    grey = Image.fromarray(small).convert("L")  # any PIL mode is read as RGB
    out = encoder.extractor([Image.fromarray(small), Image.fromarray(big), grey], verbose=False)
    assert out.shape == (3, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out[1], pixel_features(big[None], 4)[0])
    with pytest.raises(InvalidInputError, match="empty"):
        encoder.extractor([], verbose=False)


def test_the_benchmark_trains_on_the_features_the_library_serves():
    from benchmarks.spiderbench.v2 import encoders

    images = np.random.default_rng(2).integers(0, 256, (5, 64, 64, 3)).astype(np.uint8)
    served = TaskEncoder("hf-spider/pixels-16", modality="image").extractor(
        [Image.fromarray(i) for i in images], verbose=False)
    np.testing.assert_array_equal(encoders.VARIANTS["pixels-16"].load()(images), served.numpy())


def test_convolutional_models_run_channels_last_with_the_same_features(tmp_path):
    """``features.CHANNELS_LAST``: a ResNet's features are those of the plain (channels-first) forward."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    from hf_spider.features import FeatureExtractor

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3)
    ResNetForImageClassification(config).eval().save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    extractor = FeatureExtractor(str(tmp_path), modality="image")
    assert extractor._channels_last
    images = [Image.fromarray(a) for a in np.random.default_rng(5).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)]
    feats, probs = extractor.encode(images, verbose=False)
    pixels = extractor.processor(images=images, return_tensors="pt")["pixel_values"]
    plain = ResNetForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        out = plain(pixel_values=pixels)
        pooled = plain.resnet(pixel_values=pixels).pooler_output.flatten(1)
    torch.testing.assert_close(feats, pooled, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs, out.logits.softmax(-1), atol=1e-5, rtol=1e-4)
