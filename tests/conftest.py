"""Shared fixtures: tiny real Transformers models on disk and small labelled datasets (all offline)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# A test run never reads or writes the user's HF cache: models converted on first use and the feature cache live
# in temporary folders.
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-spider-hf-home-"))
os.environ.setdefault("HF_SPIDER_FEATURES_CACHE", tempfile.mkdtemp(prefix="hf-spider-features-"))
sys.path.insert(0, str(Path(__file__).parent))  # the shared `synthetic` helpers

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
HUB_IMAGE_ZOO = ["google/vit-base-patch16-224", "microsoft/resnet-50", "facebook/convnext-tiny-224"]


def make_label_selector(folder: Path, *, modality: str = "image", zoo: list[str] = HUB_IMAGE_ZOO) -> Path:
    """A small label-name selector over real Hub ids, saved to ``folder`` (planted tokens: only the plumbing is
    under test; nothing is downloaded)."""
    from synthetic import planted_tasks

    from hf_spider import FitnessConfig, SelectorConfig, SpiderSelector, TrainingConfig

    config = SelectorConfig(name=f"test/hub-{modality}", modality=modality, task_encoder=MINILM,
                            task_token_kind="label_names", label_prompt="a photo of {}.",
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    selector = SpiderSelector.train(planted_tasks(12, num_models=len(zoo), task_dim=384), config=config, zoo=zoo,
                                    training=TrainingConfig(epochs=2), verbose=False)
    selector.save_pretrained(folder)
    return folder


def make_tiny_text_model(path: Path, seed: int) -> Path:
    """A tiny random BERT classifier with the MiniLM tokenizer, saved like a Hub repo (config, weights, card)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_spider.hub import resolve_model_path

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_model_path(MINILM)).save_pretrained(path)
    (path / "README.md").write_text(f"---\nlicense: apache-2.0\n---\n# tiny-{seed}\n\nA tiny test model.\n")
    return path


def make_tiny_image_model(path: Path, seed: int) -> Path:
    """A tiny random ViT classifier with its image processor, saved like a Hub repo."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=2)
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(path)
    return path


def text_dataset(n_per_class: int = 6):
    import datasets

    topics = {"sport": "the team won the match", "politics": "the minister passed the law",
              "tech": "the new phone has a fast chip"}
    texts, labels = [], []
    for k, phrase in enumerate(topics.values()):
        texts += [f"{phrase} number {i}" for i in range(n_per_class)]
        labels += [k] * n_per_class
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(topics))})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


def image_dataset(n_per_class: int = 4):
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images, labels = [], []
    for k in range(3):
        for _ in range(n_per_class):
            arr = (rng.random((16, 16, 3)) * 80 + 80 * k).astype("uint8")
            images.append(Image.fromarray(arr))
            labels.append(k)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


@pytest.fixture(scope="session")
def text_zoo(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("text_zoo")
    return [make_tiny_text_model(root / f"tiny-text-{i}", seed=i) for i in range(4)]
