"""Tests of the bundled Hub-zoo selectors, the benchmark's fold builder and the metadata-token trainer."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_spider.bundled import bundled_selector, list_bundled
from hf_spider.errors import InvalidInputError
from hf_spider.fitness import FitnessConfig
from hf_spider.hubzoo import ENV_VAR, default_root, load_transfergraph
from hf_spider.model_meta import MetaTrainingConfig, train_meta_spider
from hf_spider.selector import SpiderSelector
from hf_spider.training import TrainingTask

REPO = Path(__file__).resolve().parents[1]
HAS_DATA = (default_root() / "image" / "records.csv").is_file()
needs_data = pytest.mark.skipif(
    not HAS_DATA, reason=f"TransferGraph results not found at {default_root()} (set ${ENV_VAR} to their folder)"
)
CIFAR_LIKE = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NUM_MODELS = {"hubzoo-image": 185, "hubzoo-text": 164}


def _bench(module: str):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # benchmarks/ is part of the repository, not of the installed package
    return importlib.import_module(f"benchmarks.hubzoo.{module}")


@pytest.fixture(scope="module")
def selectors() -> dict[str, SpiderSelector]:
    # token_source="mirror": the selector's own token copies; "auto" would first ask each model repo on the Hub.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small encoder: one intra-op thread avoids oversubscription stalls on busy machines
    yield {name: SpiderSelector.from_pretrained(bundled_selector(name), token_source="mirror") for name in NUM_MODELS}
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["hubzoo-image", "hubzoo-text"])
def test_bundled_hubzoo_selectors_load(name, selectors):
    assert name in list_bundled()
    selector = selectors[name]
    assert selector.config.task_token_kind == "label_names"
    assert selector.config.task_encoder == "sentence-transformers/all-MiniLM-L6-v2"
    assert selector.config.name == f"hf-spider/{name}"
    assert len(selector.zoo) == NUM_MODELS[name]
    assert torch.isfinite(selector.model_tokens).all()
    size = sum(p.stat().st_size for p in bundled_selector(name).rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024, f"{name} is {size} bytes"


def test_bundled_image_selector_ranks_real_hub_ids(selectors):
    image_selector = selectors["hubzoo-image"]
    ranking = image_selector.rank_task(image_selector.label_name_token(CIFAR_LIKE), top_k=5)
    assert len(ranking) == 5
    ids = [m.model_id for m in ranking]
    assert all(i in image_selector.model_ids for i in ids)
    assert all(len(i.split("/")) <= 2 and not Path(i).is_absolute() for i in ids)  # Hub ids, not folders
    assert [m.rank for m in ranking] == [1, 2, 3, 4, 5]
    scores = [m.score for m in ranking]
    assert scores == sorted(scores, reverse=True)


def test_bundled_text_selector_ranks_label_names(selectors):
    selector = selectors["hubzoo-text"]
    ranking = selector.rank_task(selector.label_name_token(["negative", "positive"]))
    shown = [m.model_id for m in ranking] + [a for m in ranking for a in m.aliases]  # mirrors are shown once
    assert len(shown) == len(set(shown)) == NUM_MODELS["hubzoo-text"] and len(ranking) < len(shown)


def test_loo_folds_never_train_on_the_held_out_target():
    common = _bench("common")
    targets = ["a", "b", "c", "d"]
    folds = common.loo_folds(targets)
    assert [held for held, _ in folds] == targets
    for held, train in folds:
        assert held not in train and sorted(train + [held]) == targets


def test_models_out_split_holds_out_a_fifth():
    seen = _bench("common").models_out_split(185, 0.2, seed=0)
    assert seen.dtype == bool and (~seen).sum() == 37
    assert np.array_equal(seen, _bench("common").models_out_split(185, 0.2, seed=0))


@needs_data
def test_fold_inputs_carry_nothing_of_the_held_out_target():
    common, recipe = _bench("common"), _bench("recipe")
    records = load_transfergraph("image")
    prototypes = {t: torch.randn(3, 8) for t in records.targets}
    data = common.SideData(records, prototypes, np.zeros((len(records.models), 4), np.float32), [])
    seen = common.models_out_split(len(records.models), 0.2, seed=0)
    for held, train in common.loo_folds(records.targets)[:3]:
        tasks = common.training_tasks(data, train, seen)
        assert held not in [t.name for t in tasks]
        assert all(torch.isnan(t.performance[torch.as_tensor(~seen)]).all() for t in tasks)
        before = recipe.prior(data, train, seen), recipe.loo_priors(data, train, seen)
        data.records.accuracy[records.targets.index(held)] = np.random.default_rng(0).random(len(records.models))
        after = recipe.prior(data, train, seen), recipe.loo_priors(data, train, seen)
        assert np.array_equal(before[0], after[0]) and torch.equal(before[1], after[1])  # held-out accuracy unused


@needs_data
def test_a_training_targets_prior_never_holds_its_own_accuracies():
    common, recipe = _bench("common"), _bench("recipe")
    records = load_transfergraph("text")
    records = dataclasses.replace(records, accuracy=records.accuracy.copy())  # writable: the test changes it
    data = common.SideData(records, {}, np.zeros((len(records.models), 4), np.float32), [])
    train = records.targets[1:]
    before = recipe.loo_priors(data, train, None)  # (T', M), row j: prior of training target train[j]
    data.records.accuracy[records.targets.index(train[0])] = np.random.default_rng(1).random(len(records.models))
    after = recipe.loo_priors(data, train, None)
    assert torch.equal(before[0], after[0])  # its own accuracies do not enter its own prior ...
    assert not torch.equal(before[1:], after[1:])  # ... but do enter the other training targets' priors


@pytest.fixture
def one_thread():
    # tiny models: one intra-op thread avoids oversubscription stalls on busy CI machines
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_meta_spider_refuses_a_leaked_unseen_model():
    tasks = [TrainingTask("t", torch.randn(3, 8), torch.tensor([0.1, 0.5, 0.9]))]
    with pytest.raises(InvalidInputError, match="unseen"):
        train_meta_spider(tasks, np.zeros((3, 2), np.float32), fitness_config=FitnessConfig(task_dim=8, token_dim=8),
                          config=MetaTrainingConfig(epochs=1), seen=np.array([True, True, False]))


def test_train_meta_spider_learns_a_ranking(one_thread):
    perf = torch.linspace(0, 1, 6)
    tasks = [TrainingTask(f"t{i}", torch.randn(4, 8), perf) for i in range(3)]
    features = perf.numpy()[:, None].astype(np.float32)  # the metadata says it all
    result = train_meta_spider(tasks, features, fitness_config=FitnessConfig(task_dim=8, token_dim=8, num_layers=1),
                               config=MetaTrainingConfig(epochs=25, lr=2e-2, residual=False))
    scores = result.fitness(result.model_tokens, tasks[0].prototypes.unsqueeze(0))[0].detach().numpy()
    assert np.corrcoef(scores, perf.numpy())[0, 1] > 0.8


@pytest.mark.parametrize("name", ["hubzoo-image", "hubzoo-text"])
def test_bundled_hubzoo_selectors_carry_the_prior_and_zoo_metadata(name, selectors):
    selector = selectors[name]
    inputs = selector.task_inputs
    assert inputs is not None and inputs.num_models == NUM_MODELS[name]
    assert torch.isfinite(inputs.prior).all() and 0 < float(inputs.prior.median()) < 1  # mean rank in (0, 1]
    side = name.split("-")[1]
    assert all(e.pipeline_tag == f"{side}-classification" for e in selector.zoo)
    assert sum(e.num_parameters is not None for e in selector.zoo) > 0.9 * NUM_MODELS[name]
    card = (bundled_selector(name) / "README.md").read_text()
    assert "× prior" in card and "class names and model metadata only" in card
    ranking = selector.rank_task(selector.label_name_token(["negative", "positive"]), top_k=3)
    assert ranking.notes == ("ranked from class names only",)


def test_paired_bootstrap_and_shard_merge():
    run = _bench("run")
    a = {f"t{i}": 0.1 * i for i in range(10)}
    shifted = {t: v + 0.05 for t, v in a.items()}
    out = run.paired_bootstrap(shifted, a)
    assert out["mean"] == pytest.approx(0.05) and out["low"] == pytest.approx(0.05) and out["targets"] == 10
    noisy = {t: v + (0.1 if i % 2 else -0.1) for i, (t, v) in enumerate(a.items())}
    out = run.paired_bootstrap(noisy, a)
    assert out["low"] < 0 < out["high"]
    shard = lambda ts: ({"spider": {t: {"kendall_tau": a[t]} for t in ts},  # noqa: E731
                         "zoo_mean": {t: {"kendall_tau": a[t] - 0.01} for t in ts}},
                        {"loto": {t: {} for t in ts}}, {t: {} for t in ts})
    results, details, scores = run.finish_side([shard(["t0", "t1"]), shard(["t2", "t3", "t4"])])
    assert set(results["spider"]) == set(details["loto"]) == set(scores) == {"t0", "t1", "t2", "t3", "t4"}
    assert details["bootstrap"]["spider - zoo_mean"]["mean"] == pytest.approx(0.01)
