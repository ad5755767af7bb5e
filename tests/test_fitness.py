import torch

from hf_spider import FitnessConfig, FitnessNetwork
from hf_spider.fitness import pad_prototypes


def _net():
    torch.manual_seed(0)
    return FitnessNetwork(FitnessConfig(task_dim=12, token_dim=16, num_heads=2, num_layers=2)).eval()


def test_batched_scores_equal_one_model_at_a_time():
    net = _net()
    tokens = torch.randn(5, 16)
    protos = torch.randn(3, 4, 12)
    batched = net(tokens, protos)  # (B, M)
    single = torch.stack([net(tokens[m : m + 1], protos)[:, 0] for m in range(5)], dim=1)
    assert batched.shape == (3, 5)
    assert torch.allclose(batched, single, atol=1e-5)


def test_padding_does_not_change_scores():
    net = _net()
    tokens = torch.randn(4, 16)
    small, big = torch.randn(2, 12), torch.randn(6, 12)
    batch, mask = pad_prototypes([small, big])
    assert batch.shape == (2, 6, 12) and mask.sum().item() == 8
    scores = net(tokens, batch, mask)
    assert torch.allclose(scores[0], net(tokens, small.unsqueeze(0))[0], atol=1e-5)
    assert torch.allclose(scores[1], net(tokens, big.unsqueeze(0))[0], atol=1e-5)


def test_class_order_does_not_change_scores():
    net = _net()
    tokens, protos = torch.randn(3, 16), torch.randn(1, 5, 12)
    assert torch.allclose(net(tokens, protos), net(tokens, protos[:, torch.randperm(5)]), atol=1e-5)


def test_extra_tokens_change_only_their_pairs():
    net = _net()
    tokens, protos = torch.randn(3, 16), torch.randn(1, 4, 12)
    extra = torch.randn(1, 3, 2, 16)
    mask = torch.tensor([[[True, True], [False, False], [False, False]]])
    base = net(tokens, protos)
    with_extra = net(tokens, protos, extra=extra, extra_mask=mask)
    assert not torch.allclose(base[0, 0], with_extra[0, 0])
    assert torch.allclose(base[0, 1:], with_extra[0, 1:], atol=1e-5)
