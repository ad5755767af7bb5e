"""The estimator cascade: token ranking prunes to k, an estimator re-orders the k, fused by a learned weight."""

import dataclasses
import json

import numpy as np
import pytest

from hf_spider.cascade import CascadeConfig, fit_cascade, fuse, top_k_indices
from hf_spider.errors import ArtifactError, InvalidInputError, ZooError
from hf_spider.evaluation import weighted_tau


def _order(scores: np.ndarray) -> list:
    return np.argsort(-scores, axis=-1, kind="stable").tolist()


@pytest.fixture(scope="module")
def features_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cascade-features")


@pytest.fixture(autouse=True)
def own_feature_cache(features_dir, monkeypatch):
    """Features computed here stay out of the session's cache: other tests count the forward passes they cause."""
    monkeypatch.setenv("HF_SPIDER_FEATURES_CACHE", str(features_dir))


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 9)), rng.normal(size=(6, 9))


# --- fuse --------------------------------------------------------------------------------------------------------


def test_fuse_k1_and_weight0_keep_the_token_order(scores):
    token, est = scores
    assert np.array_equal(fuse(token, est, 1, 0.7), token)  # k = 1: the token scores themselves
    assert np.array_equal(fuse(token, est, 0, 1.0), token)
    for k in (2, 5, 9, 40):
        assert _order(fuse(token, est, k, 0.0)) == _order(token), k


def test_fuse_weight1_orders_the_top_k_by_the_estimator_and_leaves_the_rest(scores):
    token, est = scores
    k = 4
    out = fuse(token, est, k, 1.0)
    top = top_k_indices(token, k)
    for t in range(len(token)):
        order = _order(out[t])
        expected_top = sorted(top[t].tolist(), key=lambda m: -est[t, m])
        assert order[:k] == expected_top  # candidates first, by estimator
        assert order[k:] == [m for m in _order(token[t]) if m not in expected_top]  # the rest: token order
        rest = [m for m in range(token.shape[1]) if m not in expected_top]
        assert np.array_equal(out[t, rest], token[t, rest])  # their scores are untouched


def test_fuse_k_at_least_m_reorders_every_model(scores):
    token, est = scores
    assert _order(fuse(token, est, token.shape[1], 1.0)) == _order(est)
    assert _order(fuse(token, est, 100, 1.0)) == _order(est)


def test_fuse_mixes_z_scores_and_breaks_ties_by_token_order():
    token = np.array([10.0, 5.0, 0.0, -5.0])
    est = np.array([1.0, 2.0, 0.0, np.nan])  # z over the top 3: [0, 1.22, -1.22]; token z: [1.22, 0, -1.22]
    assert _order(fuse(token, est, 3, 0.5)) == [0, 1, 2, 3]  # 0 and 1 tie at 0.61: token order
    assert _order(fuse(token, est, 3, 0.6)) == [1, 0, 2, 3]
    assert _order(fuse(token, np.array([7.0, 7.0, 7.0, 7.0]), 3, 1.0)) == [0, 1, 2, 3]  # constant: zeros, ties
    tied = fuse(np.array([1.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0, 9.0]), 2, 1.0)
    assert _order(tied) == [0, 1, 2, 3]  # the top 2 of a token tie: the lower indices
    assert len(set(tied[:2])) == 2  # candidates never tie in the output


def test_fuse_batch_equals_single_and_ignores_nan_outside_the_top_k(scores):
    token, est = scores
    k = 3
    masked = est.copy()
    outside = np.ones_like(token, dtype=bool)
    np.put_along_axis(outside, top_k_indices(token, k), False, axis=1)
    masked[outside] = np.nan
    batch = fuse(token, masked, k, 0.4)
    assert np.array_equal(batch, fuse(token, est, k, 0.4))
    for t in range(len(token)):
        assert np.array_equal(fuse(token[t], masked[t], k, 0.4), batch[t])


def test_fuse_refuses_bad_inputs(scores):
    token, est = scores
    bad_top = est.copy()
    bad_top[2, top_k_indices(token, 2)[2, 1]] = np.nan
    cases = [((token, bad_top, 2, 0.5), "finite at each task's top 2"),
             ((token, est[:, :3], 2, 0.5), "(T, M)"),
             ((token, est, 2, 1.5), "weight"),
             ((token, est, 2, float("nan")), "weight"),
             ((token, est, -1, 0.5), "non-negative integer"),
             ((token, est, 2.0, 0.5), "non-negative integer"),
             ((np.where(token > 1, np.inf, token), est, 2, 0.5), "token_scores hold NaN")]
    for args, message in cases:
        with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fuse(*args)


# --- fit_cascade -------------------------------------------------------------------------------------------------


def _problem(seed: int = 1, tasks: int = 25, models: int = 8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(tasks, models)), rng.normal(size=(tasks, models))


def test_fit_cascade_learns_weight_1_when_the_estimator_is_the_ground_truth():
    token, gt = _problem()
    config, curve = fit_cascade(token, gt.copy(), gt, estimator="logme", ks=[2, 4, 8])
    assert config.weights[8] == 1.0 and curve["best_tau"][8] == pytest.approx(1.0)  # every model by the truth
    col_1 = curve["weights"].index(1.0)
    for i, k in enumerate(curve["ks"]):  # at each k the best weight does as well as the estimator alone
        assert curve["best_tau"][k] == pytest.approx(curve["mean_tau"][i, col_1]), k
        assert curve["mean_tau"][i, 0] == pytest.approx(curve["token_tau"])  # weight 0: the token ranking
    assert curve["best_tau"][8] > curve["best_tau"][4] > curve["best_tau"][2] > curve["token_tau"]
    assert config.default_k == 8 == curve["default_k"]  # the only k within 0.005 of the best
    assert config.trained_on["tasks"] == 25 and config.estimator == "logme"


def test_fit_cascade_learns_weight_0_when_the_token_score_is_the_ground_truth():
    token, noise = _problem()
    config, curve = fit_cascade(token, noise, token.copy(), estimator="leep")
    assert config.weights == {k: 0.0 for k in range(1, 9)}  # every weight > 0 ties at best or loses: the smallest
    assert curve["token_tau"] == pytest.approx(1.0) and config.default_k == 1  # the cheapest k at the best tau
    assert curve["mean_tau"].shape == (8, 21) and curve["ks"] == list(range(1, 9))


def test_fit_cascade_keeps_the_callers_default_k_and_ignores_unknown_ground_truth():
    token, gt = _problem()
    gt_nan = gt.copy()
    gt_nan[:, 0] = np.nan
    gt_nan[0, 1:] = np.nan  # task 0: one known value, tau undefined, left out
    config, curve = fit_cascade(token, gt, gt_nan, estimator="logme", ks=[2, 5], default_k=2)
    assert config.default_k == 2
    expected = np.nanmean([weighted_tau(g, s) for g, s in zip(gt_nan, fuse(token, gt, 5, 1.0))])
    assert curve["mean_tau"][1, -1] == pytest.approx(expected) and np.isfinite(curve["mean_tau"]).all()


def test_fit_cascade_refuses_bad_arguments():
    token, gt = _problem()
    cases = [(dict(estimator="nope"), "Unknown estimator"),
             (dict(estimator="logme", ks=[0, 3]), "ks must be"),
             (dict(estimator="logme", ks=[9]), "ks must be"),
             (dict(estimator="logme", grid=[0.5, 2.0]), "grid"),
             (dict(estimator="logme", ks=[2, 3], default_k=4), "default_k=4")]
    for kwargs, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            fit_cascade(token, gt, gt, **kwargs)
    with pytest.raises(InvalidInputError, match="must all be"):
        fit_cascade(token, gt[:, :4], gt, estimator="logme")
    with pytest.raises(InvalidInputError, match="tau is undefined"):
        fit_cascade(token, gt, np.full_like(gt, np.nan), estimator="logme")


# --- CascadeConfig -----------------------------------------------------------------------------------------------


def test_cascade_config_round_trips_through_json_and_picks_the_nearest_k():
    config = CascadeConfig("logme", 5, {2: 0.25, 5: 0.6, 10: 1.0}, trained_on={"tasks": 12})
    data = json.loads(json.dumps(config.to_dict()))
    assert data["weights"] == {"2": 0.25, "5": 0.6, "10": 1.0}
    assert CascadeConfig.from_dict(data) == config
    assert [config.weight_for(k) for k in (1, 3, 4, 5, 7, 8, 50)] == [0.25, 0.25, 0.6, 0.6, 0.6, 1.0, 1.0]


@pytest.mark.parametrize("change, message", [
    ({"estimator": "nope"}, "unknown estimator 'nope'; known: \\["),
    ({"estimator": 3}, "unknown estimator"),
    ({"weights": {"2": 1.5}, "default_k": 2}, "weight for k=2 must be a number in \\[0, 1\\]"),
    ({"weights": {"2": True}, "default_k": 2}, "weight for k=2"),
    ({"weights": {"2.5": 0.5}}, "weights key '2.5' must be a positive integer"),
    ({"weights": {"0": 0.5}}, "weights key 0 must be a positive integer"),
    ({"weights": {}}, "non-empty object"),
    ({"default_k": 3}, "`default_k` 3 must be one of the learned k \\[2\\]"),
    ({"default_k": "2"}, "`default_k` '2'"),
    ({"trained_on": []}, "trained_on"),
    ({"extra": 1}, "unknown fields \\['extra'\\]"),
])
def test_cascade_config_validation_names_the_problem(change, message):
    data = {"estimator": "logme", "default_k": 2, "weights": {"2": 0.5}, **change}
    with pytest.raises(ArtifactError, match=message):
        CascadeConfig.from_dict(data)
    with pytest.raises(ArtifactError, match="lacks \\['weights'\\]"):
        CascadeConfig.from_dict({"estimator": "logme", "default_k": 2})
    with pytest.raises(ArtifactError, match="JSON object"):
        CascadeConfig.from_dict([1])


def test_selector_config_validates_its_cascade_and_loads_without_one():
    from hf_spider import SelectorConfig

    base = {"name": "t/c", "modality": "text", "format_version": 1}
    assert SelectorConfig.from_dict(base).cascade == {}  # an older config.json without the field
    cascade = CascadeConfig("logme", 2, {2: 0.5})
    assert SelectorConfig(name="t/c", modality="text", cascade=cascade).cascade == cascade.to_dict()
    assert SelectorConfig.from_dict({**base, "cascade": cascade.to_dict()}).cascade == cascade.to_dict()
    with pytest.raises(ArtifactError, match="unknown estimator"):
        SelectorConfig.from_dict({**base, "cascade": {**cascade.to_dict(), "estimator": "nope"}})
    with pytest.raises(ArtifactError, match="`cascade` must be a JSON object"):
        SelectorConfig.from_dict({**base, "cascade": [1]})


# --- the selector ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def selector(text_zoo):
    """A token-only text selector (no PTM projections) over four tiny BERT folders."""
    from conftest import MINILM
    from synthetic import planted_tasks

    from hf_spider import FitnessConfig, SelectorConfig, SpiderSelector, TrainingConfig

    config = SelectorConfig(name="t/cascade", modality="text", task_encoder=MINILM, shots_per_class=3,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    return SpiderSelector.train(planted_tasks(8, num_models=4, task_dim=384), config=config,
                                zoo=[str(p) for p in text_zoo], training=TrainingConfig(epochs=1), verbose=False)


def _logme_of(model_id: str) -> float:
    from conftest import text_dataset

    from hf_spider import extract_features, sample_task
    from hf_spider.estimators import logme

    sample = sample_task(text_dataset(), shots_per_class=3, seed=0)
    return logme(extract_features(model_id, sample, verbose=False).features, sample.labels)


def test_rank_with_an_estimator_runs_only_the_top_k(selector, monkeypatch):
    from conftest import text_dataset

    from hf_spider import features as features_module

    assert not len(selector.fitness.ptm_proj)  # the cascade needs no PTM projections
    base = selector.rank(text_dataset(), rerank=0, verbose=False)
    calls = []
    real = features_module.extract_features

    def counting(model_id, sample, **kwargs):
        calls.append((model_id, kwargs["with_source_probs"]))
        return real(model_id, sample, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    ranking = selector.rank(text_dataset(), rerank=2, estimator="logme", verbose=False)
    assert sorted(calls) == sorted((m.model_id, False) for m in base[:2])  # the token top 2, once each
    calls.clear()
    selector.rank(text_dataset(), rerank=1, estimator="leep", verbose=False)
    assert calls == [(base[0].model_id, True)]  # LEEP reads the source-class probabilities
    monkeypatch.setattr(features_module, "extract_features", real)  # (not undo(): it would drop our cache dir)
    assert [m.reranked for m in ranking] == [True, True, False, False]
    assert {m.model_id for m in ranking[:2]} == {m.model_id for m in base[:2]}
    assert [m.model_id for m in ranking[2:]] == [m.model_id for m in base[2:]]  # the rest: token order
    assert [m.estimator_score is None for m in ranking] == [False, False, True, True]
    for m in ranking[:2]:
        assert m.estimator_score == pytest.approx(_logme_of(m.model_id))
    assert any("not learned for the estimator logme" in note for note in ranking.notes)
    records = ranking.to_dict()["models"]
    assert records[0]["estimator_score"] == ranking[0].estimator_score and records[3]["estimator_score"] is None
    assert list(ranking.to_pandas()["estimator_score"].isna()) == [False, False, True, True]
    assert "estimator: the transferability estimator's score" in str(ranking)
    assert "estimator score" in ranking.to_markdown()
    assert "estimator" not in str(base).split("\n")[1]  # no column without an estimator


def test_rank_uses_the_learned_weight_and_default_k(selector):
    from conftest import text_dataset

    token = selector.rank(text_dataset(), rerank=0, verbose=False)
    by_estimator = sorted(token[:3], key=lambda m: -_logme_of(m.model_id))
    selector.config.cascade = CascadeConfig("logme", 3, {3: 1.0}).to_dict()
    try:
        ranking = selector.rank(text_dataset(), estimator="logme", verbose=False)  # k from the config
        assert [m.model_id for m in ranking[:3]] == [m.model_id for m in by_estimator]  # weight 1: by LogME
        assert [m.reranked for m in ranking] == [True, True, True, False]
        assert not any("not learned" in note for note in ranking.notes)
        assert any("estimator weight 1.00" in note for note in ranking.notes)
        other = selector.rank(text_dataset(), estimator="hscore", verbose=False)
        assert any("not learned for the estimator hscore" in note and "logme" in note for note in other.notes)
    finally:
        selector.config.cascade = {}


def test_rank_estimator_errors(selector, monkeypatch):
    from conftest import text_dataset

    from hf_spider import SelectorConfig, SpiderSelector

    with pytest.raises(InvalidInputError, match="pass rerank=K"):
        selector.rank(text_dataset(), estimator="logme", verbose=False)  # no rerank, no learned depth
    with pytest.raises(InvalidInputError, match="known estimators: \\[.*'logme'"):
        selector.rank(text_dataset(), rerank=2, estimator="nope", verbose=False)
    with pytest.raises(InvalidInputError, match="rerank must be ≥ 1"):
        selector.rank(text_dataset(), rerank=0, estimator="logme", verbose=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a Hub model that is not cached cannot be loaded
    config = SelectorConfig(name="t/broken", modality="text", task_encoder=selector.config.task_encoder,
                            shots_per_class=3, fitness=selector.config.fitness)
    zoo = [selector.zoo[0], dataclasses.replace(selector.zoo[1], model_id="hf-spider-test/not-cached")]
    broken = SpiderSelector(config, selector.fitness, zoo, selector.model_tokens[:2])
    with pytest.raises(ZooError, match="could not be loaded.*--rerank 0"):
        broken.rank(text_dataset(), rerank=2, estimator="logme", verbose=False)


def test_a_saved_cascade_loads_back(selector, tmp_path):
    from hf_spider import SpiderSelector

    cascade = CascadeConfig("leep", 2, {2: 0.3, 4: 0.8}, trained_on={"tasks": 40})
    selector.config.cascade = cascade.to_dict()
    try:
        selector.save_pretrained(tmp_path / "sel")
    finally:
        selector.config.cascade = {}
    loaded = SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror", local_models=True)
    assert CascadeConfig.from_dict(loaded.config.cascade) == cascade
    assert "default k = 2, estimator weight by k (learned on training tasks): k=2: 0.3, k=4: 0.8." in " ".join(
        (tmp_path / "sel" / "README.md").read_text().split())  # the card says what the cascade does
    loaded.config.cascade = {**cascade.to_dict(), "default_k": 3}  # set by hand, wrong: refused, folder kept
    with pytest.raises(ArtifactError, match="`default_k` 3"):
        loaded.save_pretrained(tmp_path / "sel")
    assert CascadeConfig.from_dict(json.loads((tmp_path / "sel" / "config.json").read_text())["cascade"]) == cascade
    saved = json.loads((tmp_path / "sel" / "config.json").read_text())
    saved["cascade"]["weights"]["4"] = 7  # a hand-edited weight is refused on load, naming the field
    (tmp_path / "sel" / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ArtifactError, match="weight for k=4"):
        SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror", local_models=True)


def test_cli_rank_with_estimator(selector, tmp_path, capsys):
    from conftest import text_dataset

    from hf_spider.cli import main

    selector.save_pretrained(tmp_path / "sel")
    text_dataset().save_to_disk(str(tmp_path / "data"))
    common = ["rank", str(tmp_path / "data"), "--selector", str(tmp_path / "sel"), "--local-models", "--rerank", "2"]
    assert main([*common, "--estimator", "logme", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["reranked"] for m in out["models"]] == [True, True, False, False]
    assert [m["estimator_score"] is None for m in out["models"]] == [False, False, True, True]
    assert main([*common, "--estimator", "logme", "-q"]) == 0
    assert "estimator" in capsys.readouterr().out.split("\n")[1]  # the table's header has the column
    assert main([*common, "--estimator", "nope", "-q"]) == 2
    err = capsys.readouterr().err
    assert "Unknown estimator 'nope'" in err and "logme" in err and "Traceback" not in err
