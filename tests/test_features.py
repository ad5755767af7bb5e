"""Feature extraction: pooling, source-class probabilities, the on-disk cache, and multi-process parity."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import image_dataset, make_tiny_image_model, make_tiny_text_model, text_dataset

from hf_spider import feature_cache
from hf_spider import features as features_module
from hf_spider.data import sample_task
from hf_spider.errors import InvalidInputError
from hf_spider.features import FeatureExtractor, extract_features, mean_pool, pool_image_outputs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny text/image models with a classification head, and headless ones (AutoModel only)."""
    from transformers import AutoTokenizer, BertConfig, BertModel, ViTConfig, ViTImageProcessor, ViTModel

    root = tmp_path_factory.mktemp("tiny")
    models = {"text": make_tiny_text_model(root / "text", seed=0), "image": make_tiny_image_model(root / "image", 0)}
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64)).save_pretrained(root / "text-headless")
    AutoTokenizer.from_pretrained(models["text"]).save_pretrained(root / "text-headless")
    ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16)).save_pretrained(root / "image-headless")
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(root / "image-headless")
    models.update({"text-headless": root / "text-headless", "image-headless": root / "image-headless"})
    return {k: str(v) for k, v in models.items()}


@pytest.fixture(scope="module")
def samples():
    return {"text": sample_task(text_dataset(), shots_per_class=4), "image": sample_task(image_dataset(),
                                                                                         shots_per_class=3)}


@pytest.fixture
def count_forwards(monkeypatch) -> list[int]:
    """Counts forward passes (one entry per batch) and model loads (FeatureExtractor constructions)."""
    calls = {"forward": 0, "load": 0}
    real_forward, real_init = FeatureExtractor._forward_batch, FeatureExtractor.__init__

    def forward(self, chunk):
        calls["forward"] += 1
        return real_forward(self, chunk)

    def init(self, *args, **kwargs):
        calls["load"] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(FeatureExtractor, "_forward_batch", forward)
    monkeypatch.setattr(FeatureExtractor, "__init__", init)
    return calls


def test_mean_pool_ignores_padding():
    hidden = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)  # (B, T, D)
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(pooled, hidden[:, :2].mean(1))


def test_pool_image_outputs_shapes():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    conv = BaseModelOutputWithPooling(last_hidden_state=torch.randn(2, 5, 3, 3), pooler_output=torch.randn(2, 5, 1, 1))
    assert pool_image_outputs(conv).shape == (2, 5)
    assert pool_image_outputs(conv, use_pooler=False).shape == (2, 5)
    vit = BaseModelOutputWithPooling(last_hidden_state=torch.randn(2, 7, 4), pooler_output=None)
    torch.testing.assert_close(pool_image_outputs(vit), vit.last_hidden_state.mean(1))


@pytest.mark.parametrize("name, width, has_head", [("text", 16, True), ("image", 16, True),
                                                   ("text-headless", 8, False), ("image-headless", 8, False)])
def test_extractor_shapes_and_source_probs(tiny, samples, name, width, has_head):
    sample = samples[name.split("-")[0]]
    extractor = FeatureExtractor(tiny[name], modality=sample.modality, batch_size=5)
    feats, probs = extractor.encode(sample.inputs, verbose=False)
    assert extractor.has_head is has_head
    assert feats.shape == (len(sample.inputs), width) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    if has_head:
        assert probs.shape == (len(sample.inputs), 2)
        torch.testing.assert_close(probs.sum(1), torch.ones(len(sample.inputs)), atol=1e-5, rtol=0)
        assert (probs >= 0).all()
    else:
        assert probs is None
    torch.testing.assert_close(extractor(sample.inputs, verbose=False), feats)  # __call__ = features only


def test_headed_image_model_features_are_reproducible(tiny, samples):
    """A ViT saved with its head has no pooler weights: features must not come from a freshly random pooler."""
    a = extract_features(tiny["image"], samples["image"], cache_dir=False, verbose=False)
    b = extract_features(tiny["image"], samples["image"], cache_dir=False, verbose=False)
    np.testing.assert_array_equal(a.features, b.features)


def test_extract_features_source_probs(tiny, samples, tmp_path):
    out = extract_features(tiny["text"], samples["text"], with_source_probs=True, cache_dir=tmp_path, verbose=False)
    assert out.features.shape == (12, 16) and out.features.dtype == np.float32
    np.testing.assert_allclose(out.source_probs.sum(1), 1.0, atol=1e-5)
    assert extract_features(tiny["text"], samples["text"], cache_dir=tmp_path, verbose=False).source_probs is None
    headless = extract_features(tiny["text-headless"], samples["text"], with_source_probs=True, cache_dir=False,
                                verbose=False)
    assert headless.source_probs is None


def test_cache_hit_runs_no_forward_pass(tiny, samples, tmp_path, count_forwards):
    first = extract_features(tiny["text"], samples["text"], with_source_probs=True, cache_dir=tmp_path,
                             batch_size=4, verbose=False)
    assert count_forwards == {"forward": 3, "load": 1} and not first.from_cache and first.forward_seconds > 0
    assert first.cache_path.is_file() and first.cache_path.parent.parent == tmp_path
    assert not list(tmp_path.rglob("*.tmp"))  # the atomic write left no temp file
    second = extract_features(tiny["text"], samples["text"], with_source_probs=True, cache_dir=tmp_path,
                              verbose=False)
    assert count_forwards == {"forward": 3, "load": 1}  # no forward pass, not even a model load
    assert second.from_cache and second.forward_seconds == 0 and second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.source_probs, first.source_probs)


def test_cache_disabled_and_default_location(tiny, samples, tmp_path, monkeypatch, count_forwards):
    monkeypatch.setenv(feature_cache.CACHE_ENV, str(tmp_path / "env"))
    assert feature_cache.default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv(feature_cache.CACHE_ENV)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    assert feature_cache.default_cache_dir() == tmp_path / "hf" / "hf_spider" / "features"
    out = extract_features(tiny["image"], samples["image"], verbose=False)  # cache_dir=None: the default
    assert out.cache_path.is_relative_to(tmp_path / "hf" / "hf_spider" / "features")
    for _ in range(2):
        assert extract_features(tiny["image"], samples["image"], cache_dir=False, verbose=False).cache_path is None
    assert count_forwards["load"] == 3


def test_cache_key_changes_with_indices_revision_and_settings():
    base = dict(identity="hub:org/m@" + "a" * 40, fingerprint="f", indices=np.arange(4), settings={"pooling": "x"})
    key = feature_cache.cache_key(**base)
    assert key == feature_cache.cache_key(**base)
    changed = [
        {**base, "indices": np.array([0, 1, 2, 5])},
        {**base, "indices": np.arange(5)},
        {**base, "identity": "hub:org/m@" + "b" * 40},
        {**base, "fingerprint": "g"},
        {**base, "settings": {"pooling": "x", "max_length": 128}},
    ]
    assert len({feature_cache.cache_key(**c) for c in changed} | {key}) == len(changed) + 1


def test_model_identity(tiny, tmp_path, monkeypatch):
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert feature_cache.model_identity("org/model", "org/model", sha) == f"hub:org/model@{sha}"
    assert feature_cache.commit_of(f"hub:org/model@{sha}") == sha
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty Hub cache: the commit of `main` is unknown
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert feature_cache.model_identity("org/model", "org/model", "main") is None
    snapshot = tmp_path / "models--org--model" / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--model" / "refs").mkdir()
    (tmp_path / "models--org--model" / "refs" / "main").write_text(sha)
    assert feature_cache.model_identity("org/model", "org/model", None) == f"hub:org/model@{sha}"
    # A local folder's identity follows its files: re-saving a model in place changes the key.
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = feature_cache.model_identity(str(folder), str(folder), None)
    (folder / "model.safetensors").write_bytes(b"new weights")
    assert feature_cache.model_identity(str(folder), str(folder), None) != before
    assert feature_cache.commit_of(before) is None


def test_cache_misses_on_new_indices_and_recovers_from_corruption(tiny, tmp_path, count_forwards, caplog):
    a = sample_task(text_dataset(), shots_per_class=2, seed=0)
    b = sample_task(text_dataset(), shots_per_class=2, seed=1)
    assert not np.array_equal(a.indices, b.indices)
    first = extract_features(tiny["text"], a, cache_dir=tmp_path, verbose=False)
    assert not extract_features(tiny["text"], b, cache_dir=tmp_path, verbose=False).from_cache
    assert count_forwards["load"] == 2
    first.cache_path.write_bytes(b"not a safetensors file")
    again = extract_features(tiny["text"], a, cache_dir=tmp_path, verbose=False)
    assert not again.from_cache and "unreadable feature cache entry" in caplog.text
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)
    assert extract_features(tiny["text"], a, cache_dir=tmp_path, verbose=False).from_cache  # rewritten


def test_empty_sample_is_refused(tiny, samples):
    from dataclasses import replace

    with pytest.raises(InvalidInputError, match="empty"):
        extract_features(tiny["text"], replace(samples["text"], inputs=[]), cache_dir=False)


def test_single_process_path_starts_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert features_module._distributed_state() is None
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_two_processes(tiny, tmp_path, modalities):
    worker = Path(__file__).with_name("accelerate_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(Path.cwd())}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(worker), str(tmp_path / "cache"), str(tmp_path),
           *(f"{m}={tiny[m]}" for m in modalities)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    for modality in modalities:
        sample = sample_task(text_dataset() if modality == "text" else image_dataset(), shots_per_class=3, seed=1)
        single = extract_features(tiny[modality], sample, with_source_probs=True, cache_dir=False, verbose=False)
        for rank in (0, 1):
            got = np.load(tmp_path / f"{modality}-rank{rank}.npz")
            assert got["features"].shape == single.features.shape == (9, 16)
            np.testing.assert_allclose(got["features"], single.features, atol=1e-5, rtol=0)
            np.testing.assert_allclose(got["probs"], single.source_probs, atol=1e-5, rtol=0)
            assert not got["first_cached"] and got["second_cached"]
            np.testing.assert_array_equal(got["cached_features"], got["features"])
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == len(modalities)  # written once per model


def test_two_process_extraction_matches_single_process(tiny, tmp_path):
    """Two CPU processes (torchrun + accelerate's gloo group) give the single-process features, and share the cache.

    About 25 s on 2 cores (two interpreters import torch + transformers), under the 30 s bar for `slow`."""
    _check_two_processes(tiny, tmp_path, ["text", "image"])
