"""Inference paths of the fitness network whose memory is linear in the class count (eval mode only).

The reference path (``FitnessNetwork.forward`` in training mode) runs full self-attention over
``[model token; C task tokens; K extra tokens]`` for each of the ``M`` models: ``O(M·(1+C+K)²)`` time and memory.
Only the model-token position is read. Two eval-mode paths replace it:

* ``one_layer_scores`` — exact for a one-layer (pre-norm) encoder. The task tokens' keys and values do not depend
  on the model, so they are computed once per task, and each model token attends over ``[itself; task tokens;
  its own extra tokens]``: ``O(C + M·(C + K))``, chunked over models so the attention logits never exceed
  ``CHUNK_ELEMENTS`` floats. The task tokens' own outputs are never computed (nothing reads them).
* ``chunked_exact_scores`` — any depth. From layer 2 on a task token's state depends on the model token it attended
  to in layer 1, so nothing is shareable; the encoder layers run on a few models at a time (memory bounded by the
  chunk, not the zoo), the last one for the model token only. The cost is still quadratic in the sequence length,
  so beyond ``MAX_EXACT_CLASSES`` (1024) the task is *quantised*: its task tokens are clustered (k-means) into
  ``MAX_EXACT_CLASSES`` centroids, and each centroid is attended with the log of its cluster size added to its
  attention logit. That is exactly the score of the task whose every task token is replaced by its cluster's
  centroid (attending ``n`` equal keys is attending one key with logit ``+ log n``); it approximates the original
  score as well as the centroids approximate the tokens. Extra (per-model PTM) tokens, one per class, are pooled
  with the same clusters. One-layer networks never need this.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

CHUNK_ELEMENTS = 1 << 18  # floats per block of attention logits: bounds memory; cache-sized (1 MB) is also fastest
MAX_EXACT_CLASSES = 1024  # class count above which the multi-layer path clusters task tokens (ImageNet-1k stays exact)
KMEANS_ITERATIONS = 10

logger = logging.getLogger(__name__)


def key_bias(mask: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Additive attention-logit bias: 0 (or ``log count``) for a real key, ``-inf`` for padding."""
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if counts is not None:
        bias = counts.clamp_min(1).float().log()
    return bias.masked_fill(~mask, float("-inf"))


def one_layer_scores(
    layer: nn.TransformerEncoderLayer,
    head: nn.Module,
    model: torch.Tensor,
    task: torch.Tensor,
    task_mask: torch.Tensor,
    extra: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scores at the model-token position of a one-layer pre-norm encoder, task keys/values shared across models.

    Shape:
        model: (M, D) model tokens (type embedding added); task: (B, C, D) task tokens (type embedding added);
        task_mask: (B, C) bool; extra: (B, M, K, D) or None, extra_mask (B, M, K) bool. Returns (B, M).
    """
    if extra is None or extra.shape[2] == 0:
        return _token_only_one_layer(layer, head, model, task, task_mask)
    if extra_mask is None:
        extra_mask = torch.ones(extra.shape[:3], dtype=torch.bool, device=extra.device)
    attn = layer.self_attn
    M, D = model.shape
    B, C, _ = task.shape
    H = attn.num_heads
    dh = D // H
    w_in, b_in = attn.in_proj_weight, attn.in_proj_bias
    task_n = layer.norm1(task)
    # Keys and values of the task tokens: once per task, shared by every model. (B, H, C, dh)
    k_task = nn.functional.linear(task_n, w_in[D : 2 * D], b_in[D : 2 * D]).view(B, C, H, dh).permute(0, 2, 3, 1)
    v_task = nn.functional.linear(task_n, w_in[2 * D :], b_in[2 * D :]).view(B, C, H, dh).transpose(1, 2)
    task_bias = None if bool(task_mask.all()) else key_bias(task_mask)[:, None, None, :]  # (B, 1, 1, C)
    K = extra.shape[2]
    chunk = max(1, CHUNK_ELEMENTS // max(1, B * H * (C + K)))
    inplace = not torch.is_grad_enabled()  # in-place exp saves a logits-sized buffer; autograd needs the copies
    out = []
    for s in range(0, M, chunk):  # chunks of models: bounded memory, not a per-model loop
        m = model[s : s + chunk]
        qkv = nn.functional.linear(layer.norm1(m), w_in, b_in).view(-1, 3, H, dh).permute(1, 2, 0, 3)  # (3, H, m, dh)
        q, k_self, v_self = qkv[0] * dh**-0.5, qkv[1], qkv[2]
        # softmax over [self; task tokens; extra tokens] without concatenating the logits: one shared max, then
        # each part's exp and sum. (B, H, m, ·) throughout; the extra keys are per model, (B, H, m, K).
        logits_self = (q * k_self).sum(-1, keepdim=True)  # (H, m, 1)
        logits_task = torch.matmul(q, k_task)  # (B, H, m, C)
        if task_bias is not None:
            logits_task = logits_task + task_bias
        e = layer.norm1(extra[:, s : s + chunk])  # (B, m, K, D): per-model keys, one per extra token
        kv = nn.functional.linear(e, w_in[D:], b_in[D:]).view(B, -1, K, 2, H, dh).permute(3, 0, 4, 1, 2, 5)
        logits_extra = torch.einsum("hmd,bhmkd->bhmk", q, kv[0]) + key_bias(extra_mask[:, s : s + chunk]).unsqueeze(1)
        top = torch.maximum(torch.maximum(logits_task.amax(-1, keepdim=True), logits_self),
                            logits_extra.amax(-1, keepdim=True))
        w_self = (logits_self - top).exp_()
        w_task = logits_task.sub_(top).exp_() if inplace else (logits_task - top).exp()
        w_extra = logits_extra.sub_(top).exp_() if inplace else (logits_extra - top).exp()
        total = w_self + w_task.sum(-1, keepdim=True) + w_extra.sum(-1, keepdim=True)
        ctx = w_self * v_self + torch.matmul(w_task, v_task) + torch.einsum("bhmk,bhmkd->bhmd", w_extra, kv[1])
        ctx = (ctx / total).permute(0, 2, 1, 3).reshape(B, -1, D)
        h = m + attn.out_proj(ctx)  # (B, m, D)
        h = h + layer.linear2(layer.activation(layer.linear1(layer.norm2(h))))
        out.append(head(h).squeeze(-1))
    return torch.cat(out, dim=1)


def _token_only_one_layer(layer: nn.TransformerEncoderLayer, head: nn.Module, model: torch.Tensor,
                          task: torch.Tensor, task_mask: torch.Tensor) -> torch.Tensor:
    """``one_layer_scores`` without extra tokens, as two dense matrix products per chunk of models.

    Per task, the query projection is folded into the task keys: ``A[:, h, 1 + c] = W_q,hᵀ k_{h,c}`` so one product
    ``LN(model) @ A`` gives every head's logits over ``[self slot; C task tokens]``; the self slot (which depends on
    the model) is filled in, one softmax normalises, and a block-diagonal ``V`` (zero rows at the self slots) gives
    the task part of every head's context in a second product. Same mathematics as the reference, one pass each.
    """
    attn = layer.self_attn
    M, D = model.shape
    B, C, _ = task.shape
    H = attn.num_heads
    dh, S = D // H, C + 1  # S slots per head: the model token itself, then the C task tokens
    w_in, b_in = attn.in_proj_weight, attn.in_proj_bias
    scale = dh**-0.5
    wq, bq = (w_in[:D] * scale).view(H, dh, D), (b_in[:D] * scale).view(H, dh)
    task_n = layer.norm1(task)
    k = nn.functional.linear(task_n, w_in[D : 2 * D], b_in[D : 2 * D]).view(B, C, H, dh)
    v = nn.functional.linear(task_n, w_in[2 * D :], b_in[2 * D :]).view(B, C, H, dh)
    like = {"dtype": task.dtype, "device": task.device}
    keys = torch.zeros(B, D, H, S, **like)  # (B, D, H·S): query projection folded into the keys, once per task
    bias = torch.zeros(B, H, S, **like)
    values = torch.zeros(B, H, S, H, dh, **like)  # block diagonal: head h's slots feed only head h's output columns
    mask_bias = key_bias(task_mask)
    for h in range(H):  # a loop over the attention heads (4), to lay out the per-task matrices
        keys[:, :, h, 1:] = torch.matmul(k[:, :, h], wq[h]).transpose(1, 2)
        bias[:, h, 1:] = torch.matmul(k[:, :, h], bq[h]) + mask_bias
        values[:, h, 1:, h] = v[:, :, h]
    keys, bias, values = keys.view(B, D, H * S), bias.view(B, 1, H * S), values.view(B, H * S, D)
    chunk = max(1, CHUNK_ELEMENTS // max(1, B * H * S))
    out = []
    for s in range(0, M, chunk):  # chunks of models: bounded memory, not a per-model loop
        m = model[s : s + chunk]
        n = layer.norm1(m)
        q_self = (nn.functional.linear(n, w_in[:D], b_in[:D]) * scale).view(-1, H, dh)
        kv_self = nn.functional.linear(n, w_in[D:], b_in[D:]).view(-1, 2, H, dh)
        logits = torch.baddbmm(bias, n.expand(B, -1, D), keys).view(B, -1, H, S)  # (B, m, H, S)
        logits[..., 0] = (q_self * kv_self[:, 0]).sum(-1)
        w = logits.softmax(-1)
        ctx = torch.bmm(w.view(B, -1, H * S), values) + (w[..., :1] * kv_self[:, 1]).reshape(B, -1, D)
        h = m + attn.out_proj(ctx)  # (B, m, D)
        h = h + layer.linear2(layer.activation(layer.linear1(layer.norm2(h))))
        out.append(head(h).squeeze(-1))
    return torch.cat(out, dim=1)


def chunked_exact_scores(
    encoder: nn.TransformerEncoder,
    head: nn.Module,
    model: torch.Tensor,
    task: torch.Tensor,
    task_bias: torch.Tensor,
    extra: torch.Tensor | None = None,
    extra_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The full pre-norm encoder over ``[model; task; extra]``, a chunk of models at a time, with additive key biases.

    The layers are applied here rather than through ``nn.TransformerEncoder``, whose eval-mode fast path does not
    add a float key-padding mask to the logits (it needs the ``log`` cluster sizes added). The last layer computes
    only the model-token position, the one that is read.

    Shape:
        model: (M, D); task: (B, C, D); task_bias: (B, C) float key bias (see ``key_bias``); extra: (B, M, K, D),
        extra_bias: (B, M, K). Returns (B, M).
    """
    M, D = model.shape
    B, C, _ = task.shape
    K = 0 if extra is None else extra.shape[2]
    L, H = 1 + C + K, encoder.layers[0].self_attn.num_heads
    chunk = max(1, CHUNK_ELEMENTS // max(1, B * H * L * L))  # attention weights are (B·m, H, L, L) at most
    out = []
    for s in range(0, M, chunk):
        m = model[s : s + chunk]
        mc = m.shape[0]
        seq = [m.unsqueeze(0).expand(B, mc, D).unsqueeze(2), task.unsqueeze(1).expand(B, mc, C, D)]
        bias = [torch.zeros(B, mc, 1, dtype=task.dtype, device=task.device), task_bias.unsqueeze(1).expand(B, mc, C)]
        if extra is not None:
            seq.append(extra[:, s : s + chunk])
            bias.append(extra_bias[:, s : s + chunk])
        x = torch.cat(seq, dim=2).reshape(B * mc, L, D)
        mask = torch.cat(bias, dim=2).reshape(B * mc, 1, 1, L)
        for i, layer in enumerate(encoder.layers):
            x = _pre_norm_layer(layer, x, mask, first_only=i == len(encoder.layers) - 1)
        if encoder.norm is not None:
            x = encoder.norm(x)
        out.append(head(x[:, 0]).reshape(B, mc))
    return torch.cat(out, dim=1)


def _pre_norm_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, mask: torch.Tensor, *, first_only: bool
                    ) -> torch.Tensor:
    """One ``norm_first`` encoder layer in eval mode (no dropout); ``first_only``: position 0's output only."""
    attn = layer.self_attn
    N, L, D = x.shape
    H = attn.num_heads
    qkv = nn.functional.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(N, L, 3, H, D // H).permute(2, 0, 3, 1, 4)  # (3, N, H, L, dh)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if first_only:
        x, q = x[:, :1], q[:, :, :1]
    a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # float mask: added to the logits
    x = x + attn.out_proj(a.transpose(1, 2).reshape(N, -1, D))
    return x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))


def cluster_assignments(tokens: torch.Tensor, k: int, iterations: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Deterministic k-means (Lloyd) of ``(C, D)`` tokens into ``k`` clusters; ``(C,)`` cluster ids in ``[0, k)``.

    Initialised at ``k`` evenly spaced tokens, so the same task always gives the same clusters.
    """
    C = tokens.shape[0]
    centroids = tokens[torch.linspace(0, C - 1, k, device=tokens.device).round().long()].clone()
    assign = torch.cdist(tokens, centroids).argmin(1)
    for _ in range(iterations):
        sums = torch.zeros_like(centroids).index_add_(0, assign, tokens)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)  # empty clusters keep their place
        new = torch.cdist(tokens, centroids).argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign


def pool_tokens(tokens: torch.Tensor, mask: torch.Tensor, assign: torch.Tensor, k: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the real tokens of each cluster along dim -2, and how many there were.

    Shape:
        tokens: (..., C, D); mask: (..., C) bool; assign: (C,) ids in [0, k). Returns (..., k, D) and (..., k).
    """
    w = mask.to(tokens.dtype)
    like = {"dtype": tokens.dtype, "device": tokens.device}
    sums = torch.zeros(*tokens.shape[:-2], k, tokens.shape[-1], **like)
    sums.index_add_(-2, assign, tokens * w.unsqueeze(-1))
    counts = torch.zeros(*mask.shape[:-1], k, **like).index_add_(-1, assign, w)
    return sums / counts.clamp_min(1).unsqueeze(-1), counts


def quantise_task(
    task: torch.Tensor,
    task_mask: torch.Tensor,
    extra: torch.Tensor | None,
    extra_mask: torch.Tensor | None,  # given whenever extra is
    max_classes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Cluster each task's tokens into at most ``max_classes`` centroids (and its per-class extra tokens alike).

    Returns ``(task (B, k, D), task_bias (B, k), extra, extra_bias)``, the biases holding ``log`` cluster sizes.
    Tasks with at most ``max_classes`` real classes keep every token (each its own cluster of size 1).
    Raises ValueError for ``max_classes < 1``.
    """
    B, C, D = task.shape
    if max_classes < 1:
        raise ValueError(f"max_classes must be ≥ 1, got {max_classes}.")
    if C <= max_classes or int(task_mask.sum(1).max()) <= max_classes:  # nothing to cluster: exact
        return task, key_bias(task_mask), extra, None if extra is None else key_bias(extra_mask)
    k = max_classes
    logger.warning("A task of %d classes is scored by a multi-layer fitness network with its class tokens clustered "
                   "into %d (k-means); the scores are those of the clustered task (see hf_spider.fitness_eval).",
                   int(task_mask.sum(1).max()), k)
    pooled, counts = [], []
    pooled_extra, extra_counts = [], []
    for b in range(B):  # a loop over the tasks of a batch, not over models or classes
        real = task_mask[b].nonzero().flatten()
        # padding positions go to the last cluster: their mask weight is 0, so they change nothing
        assign = torch.full((C,), k - 1, dtype=torch.long, device=task.device)
        if len(real) > k:
            assign[real] = cluster_assignments(task[b, real], k)
        else:
            assign[real] = torch.arange(len(real), device=task.device)
        p, n = pool_tokens(task[b], task_mask[b], assign, k)
        pooled.append(p)
        counts.append(n)
        if extra is not None:
            emask = extra_mask[b]
            if extra.shape[2] == C:  # PTM tokens, one per class in task order: pooled with the same clusters
                pe, ne = pool_tokens(extra[b], emask & task_mask[b], assign, k)  # (no class, no PTM token)
            else:
                pe, ne = extra[b], emask.float()
            pooled_extra.append(pe)
            extra_counts.append(ne)
    counts_t = torch.stack(counts)
    task_bias = key_bias(counts_t > 0, counts_t)
    if extra is None:
        return torch.stack(pooled), task_bias, None, None
    ecounts = torch.stack(extra_counts)
    return torch.stack(pooled), task_bias, torch.stack(pooled_extra), key_bias(ecounts > 0, ecounts)

