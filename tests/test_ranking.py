"""Ranking: what a person reads (columns, notes), mirrors shown once, the size budget and the Pareto front."""

import json

import pytest

from hf_spider.errors import InvalidInputError
from hf_spider.ranking import NO_ACCURACY_NOTE, RankedModel, Ranking, collapse_mirrors, select_models
from hf_spider.units import format_parameter_count, parse_parameter_count


def _model(rank, model_id, score, *, params=None, acc=None, aliases=()):
    interval = None if acc is None else (acc - 0.05, acc + 0.03)
    return RankedModel(rank=rank, model_id=model_id, revision=None, score=score, task_type="image-classification",
                       predicted_accuracy=acc, predicted_accuracy_interval=interval, num_parameters=params,
                       aliases=aliases)


def _ranking(models, notes=()):
    return Ranking(list(models), selector="org/sel", selector_revision=None, dataset="ds", seconds=0.5, notes=notes)


@pytest.mark.parametrize("text, count", [("100M", 100_000_000), ("1.5B", 1_500_000_000), ("25k", 25_000),
                                         ("86567656", 86_567_656), ("2e6", 2_000_000), (" 3 m ", 3_000_000)])
def test_parse_parameter_count(text, count):
    assert parse_parameter_count(text) == count


@pytest.mark.parametrize("text", ["", "lots", "-5M", "0", "1.2.3M", "5X"])
def test_parse_parameter_count_refuses_nonsense(text):
    with pytest.raises(InvalidInputError, match="parameter budget"):
        parse_parameter_count(text)


def test_format_parameter_count():
    assert [format_parameter_count(n) for n in (None, 950, 28_000, 86_567_656, 350_000_000, 1_500_000_000)] == [
        "?", "950", "28.0K", "86.6M", "350M", "1.5B"]


def test_mirrors_collapse_to_the_best_ranked_with_aliases():
    models = [_model(1, "facebook/convnext-xlarge-224-22k", 1.7), _model(2, "nielsr/convnext-xlarge-224-22k", 1.69),
              _model(3, "microsoft/resnet-50", 1.2), _model(4, "someone/ConvNext-XLarge-224-22k", 1.1),
              _model(5, "/tmp/a/resnet-50", 1.0)]
    shown = collapse_mirrors(models)
    assert [m.model_id for m in shown] == ["facebook/convnext-xlarge-224-22k", "microsoft/resnet-50",
                                           "/tmp/a/resnet-50"]  # a local folder is never merged by name
    assert shown[0].aliases == ("nielsr/convnext-xlarge-224-22k", "someone/ConvNext-XLarge-224-22k")
    assert [m.rank for m in shown] == [1, 2, 3] and shown[1].aliases == ()


def test_max_parameters_keeps_known_sizes_within_budget_and_says_what_it_left_out():
    models = [_model(1, "a/big", 3.0, params=300_000_000), _model(2, "a/unknown", 2.0),
              _model(3, "a/small", 1.0, params=20_000_000), _model(4, "a/tiny", 0.5, params=5_000_000)]
    shown, notes = select_models(models, top_k=1, max_parameters=parse_parameter_count("100M"))
    assert [(m.rank, m.model_id) for m in shown] == [(1, "a/small")]
    assert "at most 100M parameters" in notes[0] and "1 of unknown size left out" in notes[0]
    with pytest.raises(InvalidInputError, match="at most 1.0K parameters.*1 of unknown size"):
        select_models(models, max_parameters=1000)


def test_pareto_front_on_predicted_accuracy_and_size():
    models = [_model(1, "a/large", 3.0, params=300_000_000, acc=0.92),
              _model(2, "a/base", 2.5, params=90_000_000, acc=0.91),
              _model(3, "a/worse-and-bigger", 2.4, params=100_000_000, acc=0.90),
              _model(4, "a/tiny", 1.0, params=5_000_000, acc=0.80),
              _model(5, "a/tie-but-bigger", 0.9, params=6_000_000, acc=0.80),
              _model(6, "a/unknown", 0.5, acc=0.95)]
    front = _ranking(models).pareto()
    assert [m.model_id for m in front] == ["a/large", "a/base", "a/tiny"] and [m.rank for m in front] == [1, 2, 4]
    assert any("1 model(s) of unknown size" in n for n in front.notes)


def test_pareto_falls_back_to_score_without_predicted_accuracy():
    models = [_model(1, "a/big", 3.0, params=300), _model(2, "a/mid", 2.0, params=400),
              _model(3, "a/s", 1.0, params=9)]
    assert [m.model_id for m in _ranking(models).pareto()] == ["a/big", "a/s"]


def test_outputs_show_accuracy_size_aliases_and_notes():
    models = [_model(1, "facebook/convnext-xlarge", 1.7, params=350_000_000, acc=0.91,
                     aliases=("nielsr/convnext-xlarge",)),
              _model(2, "microsoft/resnet-50", 1.2, params=25_600_000, acc=0.88)]
    models[0] = RankedModel(**{**models[0].__dict__, "evidence": {"summary": "91% on cifar100 (most alike)"}})
    ranking = _ranking(models, notes=["ranked from class names only"])
    text = str(ranking)
    assert "predicted accuracy (80% interval)" in text and "parameters" in text
    assert "91.0% (86-94)" in text and "350M" in text and "25.6M" in text
    assert "also published as nielsr/convnext-xlarge" in text and "note: ranked from class names only" in text
    assert "why: 91% on cifar100 (most alike)" in text
    markdown = ranking.to_markdown()
    assert "<br>why: 91% on cifar100 (most alike)" in markdown
    assert "| predicted accuracy (80% interval) | parameters |" in markdown and "> **Note:** ranked from" in markdown
    record = json.loads(json.dumps(ranking.to_dict()))["models"][0]
    assert record["predicted_accuracy"] == 0.91
    assert record["predicted_accuracy_interval"] == pytest.approx([0.86, 0.94])
    assert record["num_parameters"] == 350_000_000
    assert record["evidence"] == {"summary": "91% on cifar100 (most alike)"}
    assert record["aliases"] == ["nielsr/convnext-xlarge"]
    frame = ranking.to_pandas()
    assert {"predicted_accuracy", "predicted_accuracy_interval", "num_parameters", "evidence"} <= set(frame.columns)
    assert frame.attrs["notes"] == ["ranked from class names only"]


def test_a_selector_without_accuracies_gives_null_and_says_so_once():
    ranking = _ranking([_model(1, "a/x", 1.0), _model(2, "a/y", 0.5)])
    payload = ranking.to_dict()
    assert all(m["predicted_accuracy"] is None and m["predicted_accuracy_interval"] is None
               and m["num_parameters"] is None for m in payload["models"])
    assert payload["notes"] == [NO_ACCURACY_NOTE]
    text = str(ranking)
    assert text.count("does not predict accuracy") == 1 and "predicted accuracy (80%" not in text
    assert ranking.to_markdown().count("does not predict accuracy") == 1
    assert ranking.to_pandas().attrs["notes"] == [NO_ACCURACY_NOTE]


def test_evidence_reads_as_a_sentence():
    from hf_spider.ranking import evidence_text

    evidence = {"similar_tasks": [{"task": "dtd", "similarity": 0.856, "accuracy": 0.77128},
                                  {"task": "cifar100", "similarity": 0.84, "accuracy": 0.93273}],
                "same_label_set": False}
    assert evidence_text(evidence) == ("measured 77% on dtd (similarity 0.86), 93% on cifar100 (similarity 0.84); "
                                       "not fine-tuned on this label set")
    assert evidence_text({"same_label_set": True}) == "fine-tuned on this label set before"
    assert evidence_text(None) == "" and evidence_text({"summary": "s"}) == "s"
