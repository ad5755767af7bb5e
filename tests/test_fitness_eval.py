"""The eval-mode fitness paths (hf_spider.fitness_eval) against the reference computation they replace."""

import pytest
import torch
from torch import nn

from hf_spider import FitnessConfig, FitnessNetwork, SpiderSelector, fitness_eval
from hf_spider.bundled import bundled_selector
from hf_spider.fitness import pad_prototypes


def _reference_tokens(net, model, task, task_keep, extra=None, extra_keep=None):
    """The pre-fitness_eval forward from the type-embedded tokens on: full self-attention over every pair."""
    M, D = model.shape
    B, C, _ = task.shape
    seq = [model.unsqueeze(0).expand(B, M, D).unsqueeze(2), task.unsqueeze(1).expand(B, M, C, D)]
    keep = [torch.ones(B, M, 1, dtype=torch.bool), task_keep.unsqueeze(1).expand(B, M, C)]
    if extra is not None:
        seq.append(extra)
        keep.append(extra_keep)
    x = torch.cat(seq, dim=2).reshape(B * M, -1, D)
    h = net.encoder(x, src_key_padding_mask=~torch.cat(keep, dim=2).reshape(B * M, -1))
    return net.head(h[:, 0]).reshape(B, M)


def _tokens(net, model_tokens, prototypes, extra=None, extra_mask=None):
    task = net.task_proj(nn.functional.normalize(prototypes, dim=-1)) + net.type_embed[1]
    if extra is not None:
        extra = extra + net.type_embed[2]
        extra_mask = torch.ones(extra.shape[:3], dtype=torch.bool) if extra_mask is None else extra_mask
    return model_tokens + net.type_embed[0], task, extra, extra_mask


def _reference(net, model_tokens, prototypes, class_mask=None, extra=None, extra_mask=None):
    if class_mask is None:
        class_mask = torch.ones(prototypes.shape[:2], dtype=torch.bool)
    model, task, extra, extra_mask = _tokens(net, model_tokens, prototypes, extra, extra_mask)
    return _reference_tokens(net, model, task, class_mask, extra, extra_mask)


def _random_net(num_layers, seed=0):
    torch.manual_seed(seed)
    net = FitnessNetwork(FitnessConfig(task_dim=12, token_dim=16, num_heads=4, num_layers=num_layers)).eval()
    with torch.no_grad():  # move away from the near-symmetric init so attention weights differ between keys
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def _padded_task(sizes, dim, seed=1):
    g = torch.Generator().manual_seed(seed)
    return pad_prototypes([torch.randn(c, dim, generator=g) for c in sizes])


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize(("num_models", "sizes"), [(1, [1]), (7, [3]), (9, [5, 2, 11]), (40, [64, 17])])
@torch.no_grad()
def test_eval_scores_equal_reference(num_layers, num_models, sizes):
    net = _random_net(num_layers)
    tokens = torch.randn(num_models, 16)
    batch, mask = _padded_task(sizes, 12)
    assert torch.allclose(net(tokens, batch, mask), _reference(net, tokens, batch, mask), atol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 2])
@torch.no_grad()
def test_eval_scores_with_extra_tokens_equal_reference(num_layers):
    net = _random_net(num_layers)
    tokens = torch.randn(6, 16)
    batch, mask = _padded_task([4, 9], 12)
    extra = torch.randn(2, 6, 9, 16)
    extra_mask = mask.unsqueeze(1).expand(2, 6, 9).clone()
    extra_mask[:, 2:] = False  # only the first two models have PTM tokens, as after ptm_tokens()
    extra_mask[0, 0, 1] = False
    got = net(tokens, batch, mask, extra, extra_mask)
    assert torch.allclose(got, _reference(net, tokens, batch, mask, extra, extra_mask), atol=1e-5)


def test_small_chunks_give_the_same_scores(monkeypatch):
    net = _random_net(1)
    tokens = torch.randn(50, 16)
    batch, mask = _padded_task([8, 3], 12)
    with torch.no_grad():
        whole = net(tokens, batch, mask)
        monkeypatch.setattr(fitness_eval, "CHUNK_ELEMENTS", 64)  # a few models per chunk
        assert torch.allclose(net(tokens, batch, mask), whole, atol=1e-6)
        deep = _random_net(2)
        whole = deep(tokens, batch, mask)
        monkeypatch.setattr(fitness_eval, "CHUNK_ELEMENTS", 1)  # one model per chunk
        assert torch.allclose(deep(tokens, batch, mask), whole, atol=1e-6)


@pytest.mark.parametrize("name", ["hubzoo-image", "hubzoo-text", "spiderbench-image"])
@torch.no_grad()
def test_bundled_selectors_score_as_before(name):
    """The shipped weights and tokens, as loaded today: 1e-5 of the full-attention scores, with padding masks and
    extra (PTM-style) tokens too."""
    selector = SpiderSelector.from_pretrained(str(bundled_selector(name)))
    net, tokens = selector.fitness, selector.model_tokens
    assert not net.training
    batch, mask = _padded_task([100, 10, 1], net.config.task_dim)
    assert torch.allclose(net(tokens, batch, mask), _reference(net, tokens, batch, mask), atol=1e-5)
    g = torch.Generator().manual_seed(2)
    extra = torch.randn(3, len(tokens), 100, net.config.token_dim, generator=g)
    extra_mask = mask.unsqueeze(1).expand(3, len(tokens), 100) & (torch.rand(3, len(tokens), 1, generator=g) < 0.3)
    got = net(tokens, batch, mask, extra, extra_mask)
    assert torch.allclose(got, _reference(net, tokens, batch, mask, extra, extra_mask), atol=1e-5)


def test_training_mode_is_the_reference_computation():
    """Training keeps the full-attention path, dropout draws included (same seed → same scores)."""
    net = _random_net(1).train()
    tokens = torch.randn(5, 16, requires_grad=True)
    batch, mask = _padded_task([6, 2], 12)
    torch.manual_seed(3)
    got = net(tokens, batch, mask)
    torch.manual_seed(3)
    want = _reference(net, tokens, batch, mask)
    assert torch.equal(got, want)


def test_eval_path_gradients_match_reference():
    """add_model learns a token through the eval path: its gradients must be the reference ones."""
    net = _random_net(1)
    batch, mask = _padded_task([6, 4], 12)
    grads = []
    for fn in (net, lambda *a: _reference(net, *a)):
        tokens = torch.randn(3, 16, generator=torch.Generator().manual_seed(4)).requires_grad_()
        fn(tokens, batch, mask).sum().backward()
        grads.append(tokens.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@torch.no_grad()
def test_class_cap_scores_the_centroid_task(caplog):
    """Beyond max_classes a deep network scores the task whose tokens are replaced by their k-means centroids."""
    net = _random_net(2)
    tokens = torch.randn(4, 16)
    batch, mask = _padded_task([40, 5], 12)
    k = 8
    got = net(tokens, batch, mask, max_classes=k)
    assert "A task of 40 classes is scored by a multi-layer fitness network" in caplog.text
    assert "class tokens clustered into 8 (k-means)" in caplog.text
    model, task, _, _ = _tokens(net, tokens, batch)
    quantised = task.clone()
    for b, c in enumerate([40, 5]):
        if c > k:
            assign = fitness_eval.cluster_assignments(task[b, :c], k)
            assert len(assign.unique()) > 1
            centroids = torch.zeros(k, 16).index_add_(0, assign, task[b, :c])
            centroids /= torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1)
            quantised[b, :c] = centroids[assign]
    assert torch.allclose(got, _reference_tokens(net, model, quantised, mask), atol=1e-5)
    # under the cap (the 5-class task) the scores are the exact ones
    assert torch.allclose(got[1], _reference(net, tokens, batch, mask)[1], atol=1e-5)
    assert not torch.allclose(got[0], _reference(net, tokens, batch, mask)[0], atol=1e-5)


@torch.no_grad()
def test_class_cap_pools_per_class_extra_tokens_alike():
    net = _random_net(2)
    tokens = torch.randn(3, 16)
    batch, mask = _padded_task([30], 12)
    extra = torch.randn(1, 3, 30, 16)
    extra_mask = torch.zeros(1, 3, 30, dtype=torch.bool)
    extra_mask[0, 0] = True  # model 0 has a PTM token for every class
    k = 6
    got = net(tokens, batch, mask, extra, extra_mask, max_classes=k)
    model, task, extra_t, _ = _tokens(net, tokens, batch, extra, extra_mask)
    assign = fitness_eval.cluster_assignments(task[0], k)

    def centroid(x):
        c = torch.zeros(k, 16).index_add_(0, assign, x) / torch.bincount(assign, minlength=k).clamp_min(1)[:, None]
        return c[assign]

    q_task = centroid(task[0]).unsqueeze(0)
    q_extra = extra_t.clone()
    q_extra[0, 0] = centroid(extra_t[0, 0])
    assert torch.allclose(got, _reference_tokens(net, model, q_task, mask, q_extra, extra_mask), atol=1e-5)


@torch.no_grad()
def test_one_layer_network_needs_no_class_cap():
    net = _random_net(1)
    tokens = torch.randn(3, 16)
    batch, mask = _padded_task([40], 12)
    assert torch.allclose(net(tokens, batch, mask, max_classes=4), _reference(net, tokens, batch, mask), atol=1e-5)


def test_bad_class_cap_is_refused():
    with pytest.raises(ValueError, match="max_classes"):
        _random_net(2)(torch.randn(2, 16), torch.randn(1, 5, 12), max_classes=0)


@pytest.mark.parametrize("num_layers", [1, 2])
@torch.no_grad()
def test_empty_extra_tokens_score_like_none(num_layers):
    net = _random_net(num_layers)
    tokens = torch.randn(4, 16)
    batch, mask = _padded_task([3, 5], 12)
    empty = net(tokens, batch, mask, torch.zeros(2, 4, 0, 16), torch.zeros(2, 4, 0, dtype=torch.bool))
    assert torch.allclose(empty, _reference(net, tokens, batch, mask), atol=1e-5)
