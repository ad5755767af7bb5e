"""Split a zoo model into a frozen trunk and a trainable top, and fine-tune the top on cached trunk outputs.

Every zoo model is a Transformers ``EfficientNetForImageClassification`` or ``ResNetForImageClassification``. Both the
zoo's descendants and the ground truth use the same protocol, *top fine-tuning*: the early layers (stride ≤ 16,
the bulk of the FLOPs at 64 px) stay frozen in eval mode and their outputs are computed once and cached; the last
stages, the head convolution and a new linear classifier are trained with AdamW (BatchNorm in train mode). For
EfficientNet-Lite that is the last two stages (~70% of the parameters); for the tiny ResNets the last two stages.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .data import to_pixels


def load(folder, **kwargs):
    from transformers import AutoModelForImageClassification

    return AutoModelForImageClassification.from_pretrained(folder, **kwargs).eval()


def _parts(model, top_stages: int = 1) -> tuple[list[nn.Module], list[nn.Module], str]:
    """(trunk modules, top modules, kind) with the last ``top_stages`` stages on top; the classifier is in neither."""
    if model.config.model_type == "efficientnet":
        blocks = list(model.efficientnet.encoder.blocks)
        split = sum(model.config.num_block_repeats[:-top_stages])  # first block of the top stages
        return [model.efficientnet.embeddings, *blocks[:split]], blocks[split:], "efficientnet"
    if model.config.model_type == "resnet":
        stages = list(model.resnet.encoder.stages)
        return [model.resnet.embedder, *stages[:-top_stages]], stages[-top_stages:], "resnet"
    raise ValueError(f"Unsupported zoo architecture {model.config.model_type!r}.")


@torch.inference_mode()
def trunk_outputs(model, images: np.ndarray, *, top_stages: int = 1, batch_size: int = 64) -> torch.Tensor:
    """Frozen-trunk activations ``(N, C, h, w)`` of ``(N, R, R, 3)`` uint8 images."""
    trunk, _, _ = _parts(model, top_stages)
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        h = to_pixels(images[start : start + batch_size])
        for module in trunk:
            h = module(h)
        out.append(h.clone())
    return torch.cat(out)


def top_features(model, h: torch.Tensor, top_stages: int = 1) -> torch.Tensor:
    """Pooled features ``(N, D)`` of the model from trunk activations (train/eval mode as set by the caller)."""
    _, top, kind = _parts(model, top_stages)
    for module in top:
        h = module(h)
    if kind == "efficientnet":
        enc = model.efficientnet.encoder
        h = enc.top_activation(enc.top_bn(enc.top_conv(h)))
    return h.mean(dim=(2, 3))  # (N, C, h, w) -> (N, D)


@torch.inference_mode()
def features_and_probs(model, h: torch.Tensor, *, top_stages: int = 1, batch_size: int = 256
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode pooled features ``(N, D)`` and source-class probabilities ``(N, Cs)`` from trunk activations."""
    model.eval()
    feats = torch.cat([top_features(model, h[i : i + batch_size], top_stages)
                       for i in range(0, len(h), batch_size)])
    probs = model.classifier(feats).softmax(-1)
    return feats.numpy().astype(np.float32), probs.numpy().astype(np.float32)


def train_top(model, h_train: torch.Tensor, y_train: np.ndarray, *, num_classes: int, lr: float, epochs: int,
              seed: int, top_stages: int = 1, batch_size: int = 32, h_val: torch.Tensor | None = None,
              y_val: np.ndarray | None = None, train_all: bool = False):
    """Fine-tune a copy of the model's top + a new classifier. Returns ``(model copy, val accuracy per epoch)``.

    With ``train_all`` (models trained from scratch) every parameter is trained and ``h_*`` are pixel tensors.
    """
    torch.manual_seed(seed)
    model = copy.deepcopy(model)
    _, top, _ = _parts(model, top_stages)
    if train_all:
        top = [m for m in _parts(model, top_stages)[0]] + top
    model.classifier = new_classifier(model, num_classes)
    params = [p for m in top for p in m.parameters()] + list(model.classifier.parameters())
    if model.config.model_type == "efficientnet":
        enc = model.efficientnet.encoder
        params += list(enc.top_conv.parameters()) + list(enc.top_bn.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    y = torch.as_tensor(y_train, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    history = []
    steps = epochs * max(1, -(-len(y) // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) < 2:
                continue
            logits = model.classifier(_forward(model, h_train[idx], top_stages, train_all))
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if h_val is not None:
            history.append(accuracy(model, h_val, y_val, top_stages=top_stages, train_all=train_all))
    model.eval()
    return model, history


@torch.inference_mode()
def accuracy(model, h: torch.Tensor, y: np.ndarray, *, top_stages: int = 1, train_all: bool = False) -> float:
    """Top-1 accuracy in percent (0–100)."""
    model.eval()
    logits = torch.cat([model.classifier(_forward(model, h[i : i + 256], top_stages, train_all))
                        for i in range(0, len(h), 256)])
    return float((logits.argmax(-1).numpy() == np.asarray(y)).mean() * 100)


def new_classifier(model, num_classes: int) -> nn.Module:
    """A fresh classifier with the key layout of the model's own (ResNet wraps its Linear in a Sequential)."""
    if model.config.model_type == "resnet":
        return nn.Sequential(nn.Flatten(), nn.Linear(model.config.hidden_sizes[-1], num_classes))
    return nn.Linear(model.config.hidden_dim, num_classes)


def _forward(model, h: torch.Tensor, top_stages: int, from_pixels: bool) -> torch.Tensor:
    if from_pixels:
        for module in _parts(model, top_stages)[0]:
            h = module(h)
    return top_features(model, h, top_stages)
