import math

import numpy as np
import pytest
import torch
from synthetic import planted_tasks

from hf_spider import FitnessConfig, InvalidInputError, TrainingConfig, listmle_loss, train_spider
from hf_spider.evaluation import weighted_tau
from hf_spider.training import score_tasks


def _lse(*xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_listmle_hand_computed_no_ties():
    s = torch.tensor([1.0, 2.0, 0.5])
    y = torch.tensor([3.0, 2.0, 1.0])  # true order: item 0, item 1, item 2
    expected = ((_lse(1, 2, 0.5) - 1) + (_lse(2, 0.5) - 2) + (_lse(0.5) - 0.5)) / 3
    assert listmle_loss(s, y).item() == pytest.approx(expected, rel=1e-6)


def test_listmle_hand_computed_four_items_unsorted_input():
    s = torch.tensor([0.2, -1.0, 3.0, 0.0])
    y = torch.tensor([0.1, 0.9, 0.5, 0.3])  # order: 1, 2, 3, 0
    expected = ((_lse(-1, 3, 0, 0.2) + 1) + (_lse(3, 0, 0.2) - 3) + (_lse(0, 0.2) - 0) + 0.0) / 4
    assert listmle_loss(s, y).item() == pytest.approx(expected, rel=1e-6)


def test_listmle_ties_share_one_denominator():
    s = torch.tensor([1.0, 2.0, 0.5])
    y = torch.tensor([2.0, 2.0, 1.0])  # items 0 and 1 tied at the top
    full = _lse(1, 2, 0.5)
    expected = ((full - 1) + (full - 2) + 0.0) / 3
    assert listmle_loss(s, y).item() == pytest.approx(expected, rel=1e-6)
    # The order of tied items in the input cannot matter.
    assert listmle_loss(s[[1, 0, 2]], y[[1, 0, 2]]).item() == pytest.approx(expected, rel=1e-6)


def test_listmle_all_tied_is_constant_in_scores_order():
    y = torch.ones(4)
    a = listmle_loss(torch.tensor([0.0, 1.0, 2.0, 3.0]), y)
    b = listmle_loss(torch.tensor([3.0, 2.0, 1.0, 0.0]), y)
    assert a.item() == pytest.approx(b.item())


def test_listmle_mask_and_nan_equal_dropping_items():
    s = torch.tensor([[1.0, 2.0, 0.5, 9.0]])
    y = torch.tensor([[3.0, 2.0, 1.0, float("nan")]])
    dropped = listmle_loss(s[:, :3], y[:, :3])
    assert listmle_loss(s, y).item() == pytest.approx(dropped.item(), rel=1e-6)
    mask = torch.tensor([[True, True, True, False]])
    assert listmle_loss(s, torch.tensor([[3.0, 2.0, 1.0, 0.0]]), mask).item() == pytest.approx(dropped.item())


def test_listmle_gradient_sane():
    torch.manual_seed(0)
    s = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[5, 4, 3, 2, 1], [1, 1, 2, 2, 3], [1, 2, 3, float("nan"), 0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: listmle_loss(x, y), (s,))
    listmle_loss(s, y).backward()
    assert torch.isfinite(s.grad).all()
    # Softmax-type losses are shift invariant: each list's gradient sums to zero.
    assert torch.allclose(s.grad.sum(1), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    # Descending the gradient raises the score of the best item of the first list.
    assert s.grad[0, 0] < 0 and s.grad[0, 4] > 0


def test_listmle_perfect_scores_beat_reversed():
    y = torch.arange(6.0)
    assert listmle_loss(y * 3, y) < listmle_loss(-y * 3, y)


def _train(seed=0, epochs=150):
    tasks = planted_tasks(160, seed=0)
    cfg = FitnessConfig(task_dim=16, token_dim=32, num_heads=2, num_layers=2, dropout=0.0)
    return train_spider(tasks, num_models=8, fitness_config=cfg,
                        config=TrainingConfig(epochs=epochs, patience=30, lr=3e-3, seed=seed), verbose=False)


def test_trainer_recovers_planted_ranking_on_held_out_tasks():
    result = _train()
    held_out = planted_tasks(40, seed=1)  # new tasks, same hidden model skills
    scores = score_tasks(result.fitness, result.model_tokens, [t.prototypes for t in held_out]).numpy()
    taus = [weighted_tau(t.performance.numpy(), s) for t, s in zip(held_out, scores)]
    assert np.mean(taus) > 0.9
    assert result.best_val_tau > 0.9
    assert len(result.val_tasks) == 32 and not set(result.val_tasks) & set(result.train_tasks)


def test_trainer_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = _train(epochs=3)
    after = torch.rand(1)
    b = _train(epochs=3)
    assert torch.equal(a.model_tokens, b.model_tokens)
    assert a.history == b.history
    assert torch.equal(before, after)


def test_trainer_rejects_mismatched_tasks():
    tasks = planted_tasks(4)
    with pytest.raises(InvalidInputError, match="performance for 8 models"):
        train_spider(tasks, num_models=5, fitness_config=FitnessConfig(task_dim=16, token_dim=8, num_heads=2))
    with pytest.raises(InvalidInputError, match="width 16"):
        train_spider(tasks, num_models=8, fitness_config=FitnessConfig(task_dim=32, token_dim=8, num_heads=2))
