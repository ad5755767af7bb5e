"""score_models / approximate_performance / `hf-spider score` on a zoo of tiny real Transformers models."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from conftest import text_dataset

from hf_spider.data import sample_task
from hf_spider.errors import InvalidInputError
from hf_spider.estimators import aggregate_rankings
from hf_spider.scoring import ScoreTable, approximate_performance, score_models


@pytest.fixture(scope="module")
def headless(tmp_path_factory, text_zoo) -> str:
    """A text model without a classification head (no source-class probabilities)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("headless") / "bert"
    torch.manual_seed(7)
    BertModel(BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(text_zoo[0]).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def zoo(text_zoo) -> list[str]:
    return [str(p) for p in text_zoo[:3]]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("feature-cache")


def test_score_models_table_and_timings(zoo, cache):
    table = score_models(zoo, text_dataset(), estimators=["logme", "leep"], shots_per_class=4, cache_dir=cache,
                         verbose=False)
    assert isinstance(table, ScoreTable) and table.model_ids == zoo and table.estimators == ["logme", "leep"]
    assert (table.num_samples, table.num_classes) == (12, 3)
    for name in ("logme", "leep"):
        assert table.scores[name].shape == (3,) and np.isfinite(table.scores[name]).all()
        assert table.estimator_seconds[name].shape == (3,) and (table.estimator_seconds[name] > 0).all()
    assert (table.scores["leep"] <= 0).all()  # LEEP is a mean log-likelihood
    assert (table.forward_seconds > 0).all() and (table.load_seconds > 0).all() and not table.from_cache.any()
    assert table.revisions == [None, None, None]  # local folders

    again = score_models(zoo, text_dataset(), estimators=["logme", "leep"], shots_per_class=4, cache_dir=cache,
                         verbose=False)
    assert again.from_cache.all() and (again.forward_seconds == 0).all() and (again.load_seconds == 0).all()
    for name in ("logme", "leep"):
        np.testing.assert_allclose(again.scores[name], table.scores[name], rtol=1e-12)


def test_score_table_formats(zoo, cache):
    table = score_models(zoo[:2], text_dataset(), estimators=["logme", "leep"], shots_per_class=4, cache_dir=cache,
                         verbose=False)
    record = json.loads(json.dumps(table.to_dict()))
    assert record["num_samples"] == 12 and record["estimators"] == ["logme", "leep"]
    assert [m["model_id"] for m in record["models"]] == zoo[:2]
    assert set(record["models"][0]) == {"model_id", "revision", "scores", "estimator_seconds", "forward_seconds",
                                        "load_seconds", "from_cache"}
    frame = table.to_pandas()
    assert list(frame.index) == zoo[:2]
    assert list(frame.columns) == ["revision", "logme", "leep", "forward_s", "load_s", "logme_s", "leep_s", "cached"]
    markdown = table.to_markdown().splitlines()
    assert markdown[0] == "| model | logme | leep | forward s | load s | logme s | leep s | cached |"
    assert len(markdown) == 4 and markdown[2].startswith(f"| {zoo[0]} |")
    assert str(table).startswith("2 models on 12 samples, 3 classes")


def test_aggregate_and_approximate_performance(zoo, cache):
    sample = sample_task(text_dataset(), shots_per_class=4)
    table = score_models(zoo, sample, estimators=["logme", "hscore", "leep"], cache_dir=cache, verbose=False)
    np.testing.assert_array_equal(table.aggregate(), aggregate_rankings(table.scores))
    np.testing.assert_array_equal(table.aggregate(method="borda"), aggregate_rankings(table.scores, method="borda"))
    perf = approximate_performance(zoo, sample, estimators=["logme", "hscore", "leep"], cache_dir=cache,
                                   verbose=False)
    assert perf.shape == (3,) and ((perf >= 1) & (perf <= 3)).all()
    np.testing.assert_array_equal(perf, table.aggregate())
    default = approximate_performance(zoo, sample, cache_dir=cache, verbose=False)  # features-only estimators
    assert default.shape == (3,) and np.isfinite(default).all()


def test_model_without_head_gets_nan_for_leep(zoo, headless, cache, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_spider.scoring"):
        table = score_models([zoo[0], headless], text_dataset(), estimators=["logme", "leep"], shots_per_class=4,
                             cache_dir=cache, verbose=False)
    assert np.isfinite(table.scores["logme"]).all()
    assert np.isfinite(table.scores["leep"][0]) and np.isnan(table.scores["leep"][1])
    assert "no classification head" in caplog.text
    assert table.to_dict()["models"][1]["scores"]["leep"] is None and "n/a" in table.to_markdown()
    with pytest.raises(InvalidInputError, match="NaN"):
        table.aggregate()


def test_invalid_arguments(zoo):
    with pytest.raises(InvalidInputError, match="at least one model"):
        score_models([], text_dataset(), verbose=False)
    with pytest.raises(InvalidInputError, match="repeated"):
        score_models([zoo[0], zoo[0]], text_dataset(), verbose=False)
    with pytest.raises(InvalidInputError, match="Unknown estimator"):
        score_models(zoo, text_dataset(), estimators=["nope"], verbose=False)
    with pytest.raises(InvalidInputError, match="at least one estimator"):
        score_models(zoo, text_dataset(), estimators=[], verbose=False)


def test_cli_score(zoo, cache, tmp_path, capsys):
    from hf_spider.cli import main

    folder = tmp_path / "ds"
    folder.mkdir()
    text_dataset().to_parquet(folder / "train.parquet")
    args = ["score", "--models", *zoo[:2], "--dataset", str(folder), "--estimator", "logme", "--estimator", "leep",
            "--shots-per-class", "4", "--cache-dir", str(cache)]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["estimators"] == ["logme", "leep"] and len(out["models"]) == 2
    assert all(m["forward_seconds"] >= 0 and m["estimator_seconds"]["logme"] > 0 for m in out["models"])
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| model | logme | leep | forward s |" in printed and zoo[1] in printed
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects unknown estimators, listing the known ones
        main(["score", "--models", zoo[0], "--dataset", str(folder), "--estimator", "nope"])
    assert exit_info.value.code == 2 and "logme" in capsys.readouterr().err
