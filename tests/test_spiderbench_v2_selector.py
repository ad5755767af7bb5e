"""The SpiderBench v2 selector recipe: class-group folds that never train on a validation group, the prior, and the
rule that the network is kept only when cross-validation shows it helps. Synthetic tasks; fast and offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.spiderbench.v2 import selector
from benchmarks.spiderbench.v2.selector import Item, cross_validate, folds, prior, rank_normalise


def _item(name: str, groups: list[str], accuracy, dim: int = 8, seed: int = 0) -> Item:
    gen = torch.Generator().manual_seed(seed)
    return Item(name, frozenset(groups), max(set(groups), key=groups.count), torch.randn(3, dim, generator=gen),
                np.asarray(accuracy, dtype=np.float64), 1)


def test_folds_never_train_on_a_class_of_the_validation_group():
    items = [_item("a1", ["a", "a"], [1, 2]), _item("a2", ["a"], [1, 2]), _item("b1", ["b", "b", "a"], [1, 2]),
             _item("b2", ["b"], [2, 1]), _item("c1", ["c"], [2, 1]), _item("mix", ["c", "b", "b"], [1, 2])]
    split = folds(items)
    assert [g for g, _, _ in split] == ["a", "b", "c"]
    validated = sorted(k for _, _, va in split for k in va)
    assert validated == list(range(len(items)))  # every task is validated exactly once, in its primary group's fold
    for g, train, val in split:
        assert all(g not in items[k].groups for k in train)  # b1 holds an "a" class: never trained on in fold a
        assert all(items[k].primary == g for k in val)
    assert 2 not in split[0][1]


def test_rank_normalise_and_prior():
    acc = np.array([[10.0, 30.0, 20.0, 20.0], [1.0, 2.0, 3.0, 4.0]])
    r = rank_normalise(acc)
    np.testing.assert_allclose(r[0], [0.0, 1.0, 0.5, 0.5])  # ties share the mean rank
    np.testing.assert_allclose(r[1], [0.0, 1 / 3, 2 / 3, 1.0])
    items = [_item("x", ["a"], acc[0]), _item("y", ["b"], acc[1])]
    np.testing.assert_allclose(prior(items), r.mean(0))


def test_the_prior_alone_is_kept_when_every_task_ranks_the_zoo_alike(monkeypatch):
    monkeypatch.setattr(selector, "LAMBDAS", (0.0, 0.1, 1.0))
    base = np.array([3.0, 1.0, 4.0, 2.0, 5.0])  # the same ranking on every task: the prior is exact out of fold
    items = [_item(f"t{k}", [g], base + 0.01 * k, seed=k) for k, g in enumerate("aabbccdd")]
    cv = cross_validate(items, num_models=5, epochs=3)
    assert cv["tau_prior"] == pytest.approx(1.0)
    assert cv["lambda"] == 0.0  # nothing can beat the prior by the tolerance: it is kept
    assert cv["tau_chosen"] == pytest.approx(1.0)
    assert len(cv["epoch_curve"]) == 3 and 1 <= cv["epochs"] <= 3
    assert set(cv["oof_scores"]) == {i.name for i in items}
