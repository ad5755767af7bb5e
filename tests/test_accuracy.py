"""Predicted accuracy, its interval and evidence: fitting, the accuracy.json format, and what rankings carry."""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import HUB_IMAGE_ZOO, MINILM, make_label_selector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from hf_spider import hub
from hf_spider.accuracy import (
    ACCURACY_JSON,
    ACCURACY_TENSORS,
    AccuracyModel,
    load_accuracy_model,
    normalise_label,
    ranked_fields,
    task_embedding,
)
from hf_spider.accuracy_fit import _loo_residuals, fit_accuracy_model, nested_loto, rank_percentiles
from hf_spider.bundled import bundled_selector
from hf_spider.cli import main
from hf_spider.errors import ArtifactError, InvalidInputError
from hf_spider.selector import SpiderSelector
from hf_spider.tokens import TaskToken

REPO = Path(__file__).resolve().parents[1]
DIM = 384
TARGETS = ["cars", "pets", "texture", "digits", "satellite"]


def _synthetic(num_models: int = 12, seed: int = 0):
    """Targets with distinct label embeddings, accuracies = task level + a rank effect + noise."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(len(TARGETS), DIM))
    levels = np.array([0.55, 0.9, 0.7, 0.98, 0.85])
    skill = np.linspace(0.05, -0.05, num_models)  # model 0 best everywhere
    accuracy = np.clip(levels[:, None] + skill[None, :] + 0.01 * rng.normal(size=(len(TARGETS), num_models)), 0, 1)
    accuracy[1, min(3, num_models - 1)] = np.nan  # a model never run on one target
    scores = skill[None, :] + 0.01 * rng.normal(size=accuracy.shape)
    return embeddings, accuracy, rank_percentiles(scores)


def _model(model_ids: list[str], sources: list[list[str]] | None = None) -> AccuracyModel:
    embeddings, accuracy, percentiles = _synthetic(len(model_ids))
    return fit_accuracy_model(embeddings, accuracy, percentiles, targets=TARGETS, model_ids=model_ids,
                              task_encoder=MINILM, source_labels=sources, calibration={"coverage": 0.8, "mae": 0.01})


def _entries(ids: list[str]) -> list[hub.ZooEntry]:
    return [hub.ZooEntry(m, None, "image-classification", "0" * 64, hub.mirror_name(m), num_parameters=1000 * (i + 1))
            for i, m in enumerate(ids)]


IDS = [f"org/model-{i}" for i in range(12)]


def test_rank_percentiles_put_the_best_score_first_and_nan_last():
    p = rank_percentiles(np.array([[0.2, np.nan, 0.9, 0.5]]))
    np.testing.assert_allclose(p, [[2 / 3, 1.0, 0.0, 1 / 3]])


def test_file_round_trips(tmp_path):
    model = _model(IDS, sources=[["T-shirt/top", "Trouser"]] + [[] for _ in IDS[1:]])
    model.save(tmp_path)
    loaded = load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)
    assert loaded.to_json() == json.loads((tmp_path / ACCURACY_JSON).read_text())
    assert loaded.to_json() == model.to_json()
    np.testing.assert_allclose(loaded.target_embeddings, model.target_embeddings, atol=1e-6)
    assert loaded.models["org/model-0"].source_labels == ("t shirt top", "trouser")
    assert "org/model-3" in loaded.models and "pets" not in loaded.models["org/model-3"].accuracy  # NaN: not run


def test_predicted_accuracy_is_non_increasing_in_rank_and_inside_its_interval():
    model = _model(IDS)
    rng = np.random.default_rng(1)
    for _ in range(5):  # a few unrelated tasks
        fields = ranked_fields(model, _entries(IDS), rng.normal(size=(4, DIM)), ["a", "b", "c", "d"], len(IDS))
        predicted = [f["predicted_accuracy"] for f in fields]
        assert all(a >= b for a, b in zip(predicted, predicted[1:]))
        assert predicted[0] > predicted[-1]  # the synthetic zoo has a real rank effect
        for f in fields:
            low, high = f["predicted_accuracy_interval"]
            assert 0 <= low <= f["predicted_accuracy"] <= high <= 1
    assert [f["num_parameters"] for f in fields] == [1000 * (i + 1) for i in range(len(IDS))]


def test_task_level_follows_the_most_similar_training_task():
    embeddings, _, _ = _synthetic(len(IDS))
    model = _model(IDS)
    near_cars = model.predict(model.similarities(embeddings[0][None, :]), np.array([0.5]))[0][0]
    near_digits = model.predict(model.similarities(embeddings[3][None, :]), np.array([0.5]))[0][0]
    assert near_cars < 0.7 < 0.9 < near_digits  # levels 0.55 vs 0.98


def test_evidence_picks_the_most_similar_task_and_the_same_label_set():
    embeddings, accuracy, _ = _synthetic(len(IDS))
    model = _model(IDS, sources=[["T-shirt/top", "Trouser"]] + [["imagenet"]] + [[] for _ in IDS[2:]])
    task = embeddings[2] + 0.3 * embeddings[4]  # texture first, satellite second
    sims = model.similarities(task[None, :])
    ev = model.evidence(sims, "org/model-0", ["trouser", "t_shirt / top"])
    assert [t["task"] for t in ev["similar_tasks"]] == ["texture", "satellite"]
    assert ev["similar_tasks"][0]["accuracy"] == pytest.approx(accuracy[2, 0], abs=1e-6)
    assert ev["same_label_set"] is True
    assert model.evidence(sims, "org/model-1", ["trouser", "t_shirt / top"])["same_label_set"] is False
    assert model.evidence(sims, "org/model-2", ["trouser"])["same_label_set"] is None  # labels unknown
    assert model.evidence(sims, "org/model-3", ["x"])["similar_tasks"][0]["accuracy"] is not None
    json.dumps(ev)  # JSON-able as is
    assert normalise_label("Sci/Tech") == "sci tech" and normalise_label("EducationalInstitution") == (
        "educational institution")


def test_loto_residuals_never_see_the_held_out_target():
    embeddings, accuracy, percentiles = _synthetic(len(IDS))
    base = _loo_residuals(task_embedding_rows(embeddings), accuracy, percentiles, True)
    shifted = accuracy.copy()
    shifted[2] = np.clip(shifted[2] - 0.3, 0, 1)
    moved = _loo_residuals(task_embedding_rows(embeddings), shifted, percentiles, True)
    np.testing.assert_allclose(moved[2], base[2] + (shifted[2] - accuracy[2]))  # its prediction did not move


def task_embedding_rows(embeddings):
    return np.stack([task_embedding(e[None, :]) for e in embeddings])


def test_nested_loto_measures_error_and_coverage_on_held_out_targets():
    embeddings, accuracy, percentiles = _synthetic(40)
    result = nested_loto(embeddings, accuracy, percentiles)
    assert set(result["per_target"]) == set(range(len(TARGETS)))
    assert 0 <= result["coverage_min"] <= result["coverage"] <= result["coverage_max"] <= 1
    # unrelated random label embeddings: the task level is a guess, so the error is the spread of the levels ...
    assert 0.05 < result["mae"] < 0.3
    # ... and the rank offset, fitted on the other targets, removes the planted rank effect from the error
    assert result["mae"] < nested_loto(embeddings, accuracy, percentiles, rank_curve=False)["mae"]
    with pytest.raises(InvalidInputError, match="at least 3"):
        nested_loto(embeddings[:3], accuracy[:3], percentiles[:3])


# --- accuracy.json refused when malformed ------------------------------------------------------------------


def _corrupt_json(folder: Path, edit) -> None:
    data = json.loads((folder / ACCURACY_JSON).read_text())
    edit(data)
    (folder / ACCURACY_JSON).write_text(json.dumps(data))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["targets"]["cars"].update(median_accuracy=float("nan")), "not a number"),
    (lambda d: d["models"].update({"evil/not-in-zoo": {"accuracy": {}, "source_labels": []}}), "not in this"),
    (lambda d: d["rank_curve"].update(offset=list(reversed(d["rank_curve"]["offset"]))), "non-increasing"),
    (lambda d: d["rank_curve"].update(offset=d["rank_curve"]["offset"][:-1]), "as many offsets"),
    (lambda d: d["models"]["org/model-0"]["accuracy"].update(cars=1.5), r"\[0, 1\]"),
    (lambda d: d["models"]["org/model-0"]["accuracy"].update(moon=0.5), "unknown tasks"),
    (lambda d: d.update(interval=[0.1, 0.2]), "interval"),
    (lambda d: d.update(interval=[[0.1, 0.2]]), "interval"),
    (lambda d: d.update(interval=[[-0.1, 0.2, 0.3]]), "interval"),
    (lambda d: d.update(interval=[]), "interval"),
    (lambda d: d.update(task_encoder="other/encoder"), "task encoder"),
    (lambda d: d.update(temperatures="hot"), "temperatures"),
    (lambda d: d.update(format_version=99), "format_version"),
    (lambda d: d["calibration"].update(coverage="most"), "calibration.coverage"),
])
def test_hostile_accuracy_json_is_refused(tmp_path, edit, message):
    _model(IDS).save(tmp_path)
    _corrupt_json(tmp_path, edit)
    with pytest.raises(ArtifactError, match=message):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)


_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=5), st.lists(st.floats(-2, 2), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))


def _leaves(node, path=()):
    """Every (path, value) of a JSON tree, containers included."""
    yield path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _leaves(child, (*path, key))


@functools.lru_cache(maxsize=1)
def _small_files() -> tuple[dict, bytes]:
    folder = Path(tempfile.mkdtemp(prefix="hf-spider-acc-"))
    _model(IDS[:3]).save(folder)
    return json.loads((folder / ACCURACY_JSON).read_text()), (folder / ACCURACY_TENSORS).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corrupted_value_loads_or_is_refused_with_artifact_error(tmp_path, data):
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    original, tensors = _small_files()
    (folder / ACCURACY_TENSORS).write_bytes(tensors)
    paths = [p for p, _ in _leaves(original) if p]
    path = data.draw(st.sampled_from(paths))
    corrupted = json.loads(json.dumps(original))
    node = corrupted
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(_JUNK)
    (folder / ACCURACY_JSON).write_text(json.dumps(corrupted))
    try:
        model = load_accuracy_model(folder, zoo_ids=IDS[:3], task_encoder=MINILM, task_dim=DIM)
    except ArtifactError:
        return
    sims = model.similarities(np.ones((2, DIM)))  # whatever loaded must still predict sane numbers
    accuracy, low, high = model.predict(sims, np.linspace(0, 1, 5))
    assert np.all((0 <= low) & (low <= accuracy) & (accuracy <= high) & (high <= 1))
    assert np.all(np.diff(accuracy) <= 0)
    assert "interval" in model.card_section()  # what a re-save prints into the card


def test_wrong_embedding_shapes_and_missing_tensors_are_refused(tmp_path):
    _model(IDS).save(tmp_path)
    save_file({t: np.zeros(7, dtype=np.float32) for t in TARGETS}, str(tmp_path / ACCURACY_TENSORS))
    with pytest.raises(ArtifactError, match="width 384"):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)
    save_file({"cars": np.zeros(DIM, dtype=np.float32)}, str(tmp_path / ACCURACY_TENSORS))
    with pytest.raises(ArtifactError, match="expected the targets"):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)
    (tmp_path / ACCURACY_TENSORS).write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match="not a valid safetensors"):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)
    (tmp_path / ACCURACY_TENSORS).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)
    (tmp_path / ACCURACY_JSON).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_accuracy_model(tmp_path, zoo_ids=IDS, task_encoder=MINILM, task_dim=DIM)


# --- selectors ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_selector(tmp_path_factory) -> Path:
    return make_label_selector(tmp_path_factory.mktemp("acc") / "sel")


def _token() -> TaskToken:
    return TaskToken(torch.randn(3, DIM, generator=torch.Generator().manual_seed(0)), ["a", "b", "c"], MINILM)


def test_selector_without_accuracy_json_gives_none(small_selector):
    selector = SpiderSelector.from_pretrained(small_selector, token_source="mirror")
    assert selector.accuracy is None
    ranking = selector.rank_task(_token())
    assert all(m.predicted_accuracy is None and m.predicted_accuracy_interval is None and m.evidence is None
               for m in ranking)


def test_selector_loads_saves_and_uses_its_accuracy_model(small_selector, tmp_path):
    selector = SpiderSelector.from_pretrained(small_selector, token_source="mirror")
    selector.accuracy = _model(HUB_IMAGE_ZOO)
    selector.save_pretrained(tmp_path / "calibrated")
    loaded = SpiderSelector.from_pretrained(tmp_path / "calibrated", token_source="mirror")
    assert loaded.accuracy.to_json() == selector.accuracy.to_json()
    ranking = loaded.rank_task(_token(), top_k=2)
    predicted = [m.predicted_accuracy for m in ranking]
    assert None not in predicted and predicted[0] >= predicted[1]
    assert ranking[0].evidence["similar_tasks"][0]["task"] in TARGETS
    # re-saved without a calibration: the stale files go, so another network never reads them
    loaded.accuracy = None
    loaded.save_pretrained(tmp_path / "calibrated")
    assert not (tmp_path / "calibrated" / ACCURACY_JSON).exists()


def test_selector_refuses_an_accuracy_json_of_another_zoo(small_selector, tmp_path):
    selector = SpiderSelector.from_pretrained(small_selector, token_source="mirror")
    selector.save_pretrained(tmp_path / "sel")
    _model(IDS).save(tmp_path / "sel")  # keyed by ids this selector does not rank
    with pytest.raises(ArtifactError, match="not in this selector's zoo"):
        SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror")


def test_bundled_hubzoo_card_states_the_measured_calibration():
    for side in ("image", "text"):
        card = (bundled_selector(f"hubzoo-{side}") / "README.md").read_text()
        data = json.loads((bundled_selector(f"hubzoo-{side}") / ACCURACY_JSON).read_text())["calibration"]
        assert "## Predicted accuracy" in card and f"**{data['coverage']:.1%}**" in card
        assert f"**{data['mae']:.3f}**" in card and "calibrate --side " + side in card


def test_cli_json_carries_predicted_accuracy_for_the_bundled_image_selector(capsys):
    assert main(["rank", "bundled:fashion-mnist", "--json", "--top-k", "5"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    for key in ("predicted_accuracy", "predicted_accuracy_interval", "num_parameters", "evidence"):
        assert all(m[key] is not None for m in models), key
    predicted = [m["predicted_accuracy"] for m in models]
    assert all(a >= b for a, b in zip(predicted, predicted[1:]))
    assert all(low <= m["predicted_accuracy"] <= high for m in models
               for low, high in [m["predicted_accuracy_interval"]])
    assert len(models[0]["evidence"]["similar_tasks"]) == 2


# --- benchmarks/hubzoo/calibrate.py ------------------------------------------------------------------------


def _calibrate():
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # benchmarks/ is part of the repository, not of the installed package
    from benchmarks.hubzoo import calibrate

    return calibrate


def test_calibrate_reads_saved_scores_by_model_id_or_stands_in_with_zoo_mean(tmp_path):
    calibrate = _calibrate()
    accuracy = np.array([[0.9, 0.5, 0.7], [0.6, 0.8, np.nan], [0.3, 0.2, 0.1]])
    records = types.SimpleNamespace(side="image", targets=["t0", "t1", "t2"], models=["a", "b", "c"],
                                    accuracy=accuracy)
    scores, source = calibrate.loto_scores(records, ["c", "a", "b"], tmp_path / "absent.json")
    assert source.startswith("STAND-IN")
    ranks = np.array([[3, 1, 2], [1, 2, np.nan], [3, 2, 1]]) / np.array([[3], [2], [3]])  # per target, in a,b,c
    expected = np.array([[np.nanmean(np.delete(ranks, t, 0)[:, j]) for j in (2, 0, 1)] for t in range(3)])
    np.testing.assert_allclose(scores, expected)
    path = tmp_path / "hubzoo.json"
    path.write_text(json.dumps({"_scores": {"image": {t: {"spider": {"a": 1.0, "b": 2.0}} for t in records.targets}}}))
    scores, source = calibrate.loto_scores(records, ["c", "a", "b"], path)
    assert "spider" in source and np.isnan(scores[0, 0]) and scores[0, 1:].tolist() == [1.0, 2.0]
    assert calibrate.source_label_names({"source_labels": "nan", "source_dataset": "glue/cola"},
                                        {"glue/cola": {"names": ["unacceptable", "acceptable"]}}) == [
        "unacceptable", "acceptable"]


def test_calibrate_loads_a_selector_whose_old_calibration_it_replaces(small_selector, tmp_path):
    folder = tmp_path / "sel"
    SpiderSelector.from_pretrained(small_selector, token_source="mirror").save_pretrained(folder)
    (folder / ACCURACY_JSON).write_text('{"format_version": 0}')  # an older or broken calibration
    before = (folder / ACCURACY_JSON).read_bytes()
    selector = _calibrate()._load_uncalibrated(folder)
    assert selector.accuracy is None and selector.model_ids == HUB_IMAGE_ZOO
    assert (folder / ACCURACY_JSON).read_bytes() == before  # untouched until the new calibration is saved
