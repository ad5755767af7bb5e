"""Load text zoo models, extract what estimators read, and fine-tune with a fresh mean-pooling classifier.

Features and source-class probabilities come from the library's own ``hf_spider.features.FeatureExtractor``
(mask-mean pooling of the last hidden state; softmax of the model's own head, ``None`` for a headless model such as
all-MiniLM-L6-v2), so the benchmark reads exactly what ``hf_spider.score_models`` reads.

Fine-tuning (zoo ground truth): the model's backbone (``AutoModel``; a saved head is dropped) + a new linear classifier
on the mask-mean pooled last hidden state; every weight is trained except the word-embedding matrix (on 1 CPU thread
its AdamW update cost more than the six layers' forward and backward); the new classifier gets a 10x learning rate.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from .common import MAX_LENGTH


def encode(folder, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None, float]:
    """``(N, D)`` features, ``(N, Cs)`` source probabilities (or ``None``) and the seconds (load + forward)."""
    from hf_spider.features import FeatureExtractor

    start = time.perf_counter()
    extractor = FeatureExtractor(str(folder), modality="text", batch_size=64, max_length=MAX_LENGTH)
    feats, probs = extractor.encode(texts, verbose=False)
    seconds = time.perf_counter() - start
    return feats.numpy().astype(np.float32), None if probs is None else probs.numpy().astype(np.float32), seconds


class PooledClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.config.hidden_size, num_classes)

    def forward(self, batch: dict) -> torch.Tensor:
        from hf_spider.features import mean_pool

        hidden = self.backbone(**batch).last_hidden_state
        return self.classifier(mean_pool(hidden, batch["attention_mask"]))


def load_backbone(folder):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))


def _batches(tokenizer, texts: list[str], order, batch_size: int):
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_LENGTH,
                        return_tensors="pt")
        yield idx, {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def train_classifier(model: nn.Module, tokenizer, texts: list[str], y: np.ndarray, *, lr: float, epochs: int,
                     seed: int, batch_size: int, logits_fn=None, val: tuple[list[str], np.ndarray] | None = None,
                     head_lr_mult: float = 10.0, freeze_word_embeddings: bool = True):
    """Train ``model`` (in place) with AdamW + one-cycle; returns the validation accuracy after each epoch.

    ``logits_fn(model, batch)`` maps a tokenised batch to logits (default: ``model(batch)``); the parameters whose
    name starts with ``classifier`` get ``head_lr_mult`` times the learning rate.
    """
    torch.manual_seed(seed)
    logits_fn = logits_fn or (lambda m, b: m(b))
    for name, p in model.named_parameters():
        p.requires_grad_(not (freeze_word_embeddings and name.endswith("word_embeddings.weight")))
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("classifier")]
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": lr * head_lr_mult}],
                            weight_decay=0.01)
    steps = epochs * -(-len(y) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * head_lr_mult], total_steps=steps,
                                                pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(y, dtype=torch.long)
    history = []
    for _ in range(epochs):
        model.train()
        for idx, batch in _batches(tokenizer, texts, torch.randperm(len(y), generator=gen).tolist(), batch_size):
            loss = nn.functional.cross_entropy(logits_fn(model, batch), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if val is not None:
            history.append(accuracy(model, tokenizer, *val, logits_fn=logits_fn))
    model.eval()
    return history


@torch.inference_mode()
def accuracy(model: nn.Module, tokenizer, texts: list[str], y: np.ndarray, *, logits_fn=None) -> float:
    """Top-1 accuracy in percent (0–100)."""
    logits_fn = logits_fn or (lambda m, b: m(b))
    model.eval()
    preds = [logits_fn(model, b).argmax(-1) for _, b in _batches(tokenizer, texts, list(range(len(y))), 64)]
    return float((torch.cat(preds).numpy() == np.asarray(y)).mean() * 100)


def fine_tune(backbone, tokenizer, splits: dict, num_classes: int, *, lr: float, epochs: int, seed: int,
              batch_size: int) -> dict:
    """Ground-truth protocol for one learning rate: validation history and test accuracy."""
    torch.manual_seed(seed)
    model = PooledClassifier(copy.deepcopy(backbone), num_classes)
    history = train_classifier(model, tokenizer, *splits["train"], lr=lr, epochs=epochs, seed=seed,
                               batch_size=batch_size, val=splits["val"])
    return {"val_accuracy": history[-1], "val_history": history,
            "test_accuracy": accuracy(model, tokenizer, *splits["test"])}
