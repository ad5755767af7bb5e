"""The re-ranking stage: PTM-specific prototypes of the top-k models, projected per feature width."""

import numpy as np
import torch
from synthetic import planted_tasks_with_ptm

from hf_spider import FitnessConfig, FitnessNetwork, TrainingConfig, train_spider
from hf_spider.fitness import merge_rerank
from hf_spider.training import evaluate


def test_merge_rerank_keeps_top_k_on_top_and_reorders_them():
    base = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    rescored = torch.tensor([-1.0, 9.0, 0.0, 100.0, 100.0])
    final = merge_rerank(base, rescored, torch.tensor([0, 1]))
    assert torch.argsort(final, descending=True).tolist() == [1, 0, 2, 3, 4]


def test_ptm_tokens_groups_widths_and_masks():
    net = FitnessNetwork(FitnessConfig(task_dim=4, token_dim=8, num_heads=2, ptm_widths=[6, 10]))
    extra, mask = net.ptm_tokens([{0: torch.randn(3, 6), 2: torch.randn(3, 10)}, {}], num_models=3, num_classes=4)
    assert extra.shape == (2, 3, 4, 8)
    assert mask[0, 0].tolist() == [True, True, True, False] and not mask[0, 1].any() and not mask[1].any()
    try:
        net.ptm_tokens([{0: torch.randn(2, 7)}], num_models=3, num_classes=2)
    except ValueError as err:
        assert "width 7" in str(err)
    else:
        raise AssertionError("an unknown width must be refused")


def test_reranking_recovers_what_tokens_cannot_know():
    train = planted_tasks_with_ptm(160, seed=0)
    held_out = planted_tasks_with_ptm(40, seed=5)
    cfg = FitnessConfig(task_dim=16, token_dim=32, num_heads=2, num_layers=2, dropout=0.0, ptm_widths=[6, 10])
    result = train_spider(train, num_models=8, fitness_config=cfg, verbose=False,
                          config=TrainingConfig(epochs=120, patience=30, lr=3e-3, rerank_prob=0.7, rerank_max_k=8))
    taus = {k: evaluate(result.fitness, result.model_tokens, held_out, rerank_k=k) for k in (0, 3, 8)}
    assert taus[8] > taus[3] > taus[0] + 0.05, taus
    assert np.isfinite(list(taus.values())).all()
    # the default depth is picked on the trainer's own validation split: k = 0..M, deep re-ranking wins here too
    assert len(result.rerank_val_tau) == 9 and result.best_rerank_k() >= 3, result.rerank_val_tau
    assert result.best_rerank_k(tolerance=1.0) == 0  # any depth within tolerance: the cheapest wins


def test_selector_rank_with_rerank_runs_k_forward_passes(text_zoo, monkeypatch, tmp_path):
    from conftest import MINILM, text_dataset
    from synthetic import planted_tasks

    from hf_spider import InvalidInputError, SelectorConfig, SpiderSelector
    from hf_spider import features as features_module

    zoo = [str(p) for p in text_zoo]
    tasks = planted_tasks(16, num_models=len(zoo), task_dim=384)
    for t in tasks:  # tiny BERTs have 16-d features
        t.ptm_prototypes = {m: torch.randn(t.prototypes.shape[0], 16) for m in range(len(zoo))}
    config = SelectorConfig(name="t/rerank", modality="text", task_encoder=MINILM, shots_per_class=3,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1,
                                                  ptm_widths=[16]))
    selector = SpiderSelector.train(tasks, config=config, zoo=zoo, verbose=False,
                                    training=TrainingConfig(epochs=2, rerank_prob=1.0, rerank_max_k=2))
    loaded = []
    real = features_module.FeatureExtractor

    class Counting(real):
        def __init__(self, model_id, **kwargs):
            loaded.append(model_id)
            super().__init__(model_id, **kwargs)

    monkeypatch.setattr(features_module, "FeatureExtractor", Counting)
    base = selector.rank(text_dataset(), rerank=0, verbose=False)
    assert loaded == [MINILM]  # token-only: the task encoder alone, no zoo model runs
    ranking = selector.rank(text_dataset(), rerank=2, verbose=False)
    assert sorted(loaded[1:]) == sorted(m.model_id for m in base[:2])  # exactly the token-only top 2 ran
    assert [m.reranked for m in ranking] == [True, True, False, False]
    assert {m.model_id for m in ranking[:2]} == {m.model_id for m in base[:2]}
    assert [m.model_id for m in ranking[2:]] == [m.model_id for m in base[2:]]
    sweep = selector.config.training["validation weighted tau by rerank k"]
    assert len(sweep) == len(zoo) + 1 and 0 <= selector.config.rerank_k <= len(zoo)
    selector.save_pretrained(tmp_path / "sel")
    assert f"default k = {selector.config.rerank_k} " in (tmp_path / "sel" / "README.md").read_text()

    plain = SpiderSelector.train(tasks, config=SelectorConfig(name="t/plain", modality="text", task_encoder=MINILM,
                                                              fitness=FitnessConfig(task_dim=384, token_dim=8,
                                                                                    num_heads=2, num_layers=1)),
                                 zoo=zoo, training=TrainingConfig(epochs=1), verbose=False)
    try:
        plain.rank(text_dataset(), rerank=2, verbose=False)
    except InvalidInputError as err:
        assert "without the re-ranking stage" in str(err)
    else:
        raise AssertionError("re-ranking without PTM projections must be refused")
