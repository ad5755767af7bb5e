"""Load text zoo models, extract what estimators read, train the zoo's descendants, and v2's text ground truth.

Features and source-class probabilities come from the library's own ``hf_spider.features.FeatureExtractor``
(mask-mean pooling of the last hidden state; softmax of the model's own head, ``None`` for a headless model such as
all-MiniLM-L6-v2), so the benchmark reads exactly what ``hf_spider.score_models`` reads.

``train_classifier`` trains the zoo's descendants (``build_zoo``). The ground truth (``fine_tune_top``) tunes the
backbone's last layer + a new linear classifier on the mask-mean pooled output, on the lower layers' outputs cached
once per (task, model) (``lower_states``), like the image side's top fine-tuning: v1 tuned every layer but the word
embeddings, 19 CPU-s a unit, which made v2's 1,848 text units 9.7 CPU-hours on this machine's 2 cores.
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


def load_backbone(folder):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))


def _batches(tokenizer, texts: list[str], order, batch_size: int):
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_LENGTH,
                        return_tensors="pt")
        yield idx, {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def _optimiser(body, head, *, lr: float, head_lr_mult: float, steps: int):
    """AdamW (weight decay 0.01) with the new head at ``head_lr_mult`` × ``lr``, and its one-cycle schedule."""
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": lr * head_lr_mult}],
                            weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * head_lr_mult], total_steps=steps,
                                                pct_start=0.1)
    return opt, sched


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
    opt, sched = _optimiser(body, head, lr=lr, head_lr_mult=head_lr_mult, steps=epochs * -(-len(y) // batch_size))
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


# --- v2's text protocol: top fine-tuning on the frozen lower layers' cached outputs (like the image side's) ---------


@torch.inference_mode()
def lower_states(backbone, tokenizer, texts: list[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The input of the backbone's last layer for every text: ``(N, L, H)`` float32 and the ``(N, L)`` mask.

    L is the longest tokenised text (≤ ``MAX_LENGTH``); shorter texts are zero-padded and masked. Computed once per
    (task, model), so every seed and learning rate trains on the same frozen features.
    """
    backbone.eval()
    enc = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    mask = inputs["attention_mask"]
    states = torch.zeros(*mask.shape, backbone.config.hidden_size)
    order = torch.argsort(mask.sum(1))  # similar lengths together, each batch cut to its longest text
    for s in range(0, len(texts), batch_size):
        idx = order[s : s + batch_size]
        length = int(mask[idx].sum(1).max())
        batch = {k: v[idx, :length] for k, v in inputs.items()}
        states[idx, :length] = backbone(**batch, output_hidden_states=True).hidden_states[-2].float()
    return states, mask


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # a (B, 1, 1, L) additive mask: what BERT's eager and SDPA attention both add to their scores
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class TopClassifier(nn.Module):
    """A copy of the backbone's last layer + a new linear classifier on its mask-mean pooled output."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.layer = copy.deepcopy(backbone.encoder.layer[-1])
        self.classifier = nn.Linear(backbone.config.hidden_size, num_classes)

    def hidden(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.layer(states, attention_mask=_additive_mask(mask, states.dtype))
        return out[0] if isinstance(out, tuple) else out

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from hf_spider.features import mean_pool

        return self.classifier(mean_pool(self.hidden(states, mask), mask))


def _trim(states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # drop the columns every text of the batch pads: the layer's cost scales with L²
    length = int(mask.sum(1).max())
    return states[:, :length], mask[:, :length]


@torch.inference_mode()
def top_accuracy(model: TopClassifier, states: torch.Tensor, mask: torch.Tensor, y: np.ndarray) -> float:
    """Top-1 accuracy in percent (0–100) on cached lower-layer states."""
    model.eval()
    order = torch.argsort(mask.sum(1))  # similar lengths together: less padding per batch
    preds = torch.empty(len(y), dtype=torch.long)
    for s in range(0, len(y), 64):
        idx = order[s : s + 64]
        preds[idx] = model(*_trim(states[idx], mask[idx])).argmax(-1)
    return float((preds.numpy() == np.asarray(y)).mean() * 100)


def fine_tune_top(backbone, states: dict, num_classes: int, *, lr: float, epochs: int, seed: int,
                  batch_size: int, head_lr_mult: float = 10.0) -> dict:
    """v2's text ground-truth protocol for one learning rate: validation history and test accuracy.

    ``states``: ``{split: (lower states, mask, labels)}`` from ``lower_states``. The last layer trains at ``lr``,
    the new classifier at ``head_lr_mult`` × ``lr`` (AdamW, one-cycle).
    """
    torch.manual_seed(seed)
    model = TopClassifier(backbone, num_classes)
    h_tr, m_tr, y_tr = states["train"]
    opt, sched = _optimiser(model.layer.parameters(), model.classifier.parameters(), lr=lr, head_lr_mult=head_lr_mult,
                            steps=epochs * -(-len(y_tr) // batch_size))
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(y_tr, dtype=torch.long)
    history = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(labels), generator=gen)
        for s in range(0, len(perm), batch_size):
            idx = perm[s : s + batch_size]
            loss = nn.functional.cross_entropy(model(*_trim(h_tr[idx], m_tr[idx])), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        history.append(top_accuracy(model, *states["val"]))
    return {"val_accuracy": history[-1], "val_history": history, "test_accuracy": top_accuracy(model, *states["test"])}
