"""SpiderBench v2 definitions and build helpers: disjointness of roles, task counts, the array-only unpickler,
seed reliability and the noise ceiling. Fast and offline; the data tests skip when fonts are not installed."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest

from benchmarks.spiderbench.v2 import tasks
from benchmarks.spiderbench.v2.animal_mnist import load_array
from benchmarks.spiderbench.v2.classes import LOOKALIKES, ZOO_CLASSES
from benchmarks.spiderbench.v2.reliability import noise_ceiling, split_half_tau

MODALITIES = ["image", "text"]


def _class_keys(refs) -> set[str]:
    """Class keys, with a look-alike glyph mapped onto the glyph it looks like."""
    return {f"glyphs:{LOOKALIKES.get(r.label, r.label)}" if r.source == "glyphs" else r.key for r in refs}


def _roles(modality: str) -> dict[str, list]:
    return {"zoo": list(ZOO_CLASSES[modality]),
            "train": [c for t in tasks.training_tasks(modality) for c in t.classes],
            "target": [c for t in tasks.TARGETS[modality] for c in t.classes]}


@pytest.mark.parametrize("modality", MODALITIES)
def test_roles_share_no_class_not_even_a_lookalike(modality):
    roles = {name: _class_keys(refs) for name, refs in _roles(modality).items()}
    for a, b in [("zoo", "train"), ("zoo", "target"), ("train", "target")]:
        assert not roles[a] & roles[b], f"{modality}: {a} and {b} share {sorted(roles[a] & roles[b])}"


@pytest.mark.parametrize("modality", MODALITIES)
def test_target_sources_are_used_by_neither_the_zoo_nor_training_tasks(modality):
    roles = _roles(modality)
    target = {c.source_key for c in roles["target"]}
    other = {c.source_key for c in roles["zoo"] + roles["train"]}
    assert not target & other, f"{modality}: target sources also used elsewhere: {sorted(target & other)}"


@pytest.mark.parametrize("modality, min_targets", [("image", 48), ("text", 24)])
def test_enough_targets_and_training_tasks_with_distinct_classes(modality, min_targets):
    targets, train = tasks.TARGETS[modality], tasks.training_tasks(modality)
    assert len(targets) >= min_targets and len(train) >= 60
    names = [t.name for t in targets + train]
    assert len(names) == len(set(names))
    for t in targets + train:
        keys = [c.key for c in t.classes]
        assert len(keys) >= 2 and len(keys) == len(set(keys)), t.name
    assert len({tuple(c.key for c in t.classes) for t in train}) == len(train)  # no training task twice


def test_sampled_training_tasks_are_many_distinct_subsets_of_the_pool():
    sources = ["fashion"] * 6 + ["glyphs"] * 26 + ["textures"] * 9
    sampled = tasks.sample_training_tasks(sources, 240, seed=0)
    assert len(sampled) == len(set(sampled)) == 240
    assert all(2 <= len(t) <= 10 and max(t) < len(sources) for t in sampled)


def test_a_lookalike_glyph_would_be_caught():
    from benchmarks.spiderbench.v2.classes import ClassRef

    assert _class_keys([ClassRef("glyphs", "Ο", "noto")]) & _class_keys(ZOO_CLASSES["image"])  # Greek capital omicron


def _gz_pickle(obj) -> bytes:
    return gzip.compress(pickle.dumps(obj, protocol=4))


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_array_only_unpickler_reads_arrays_and_refuses_everything_else():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(load_array(_gz_pickle(images)), images)
    np.testing.assert_array_equal(load_array(_gz_pickle(np.arange(5))), np.arange(5))
    for bad in (_Payload(), np.array([1, "a"], dtype=object), [1, 2, 3], {"a": np.zeros(2)}):
        with pytest.raises(pickle.UnpicklingError):
            load_array(_gz_pickle(bad))


def test_split_half_tau_and_noise_ceiling_on_synthetic_seeds():
    ranking = np.arange(6, dtype=float)
    assert split_half_tau(np.stack([ranking] * 3)) == pytest.approx(1.0)  # seeds agree: perfectly reliable
    assert split_half_tau(np.stack([ranking, -ranking, ranking])) < 1.0
    rng = np.random.default_rng(0)
    noisy = ranking + rng.normal(0, 4.0, size=(3, 6))
    from hf_spider.evaluation import weighted_tau

    by_hand = np.mean([weighted_tau(noisy[i], np.delete(noisy, i, 0).mean(0)) for i in range(3)])
    assert split_half_tau(noisy) == pytest.approx(by_hand)
    ceiling = noise_ceiling({"a": np.stack([ranking] * 3), "b": noisy})
    assert ceiling["weighted_tau"] == pytest.approx((1.0 + by_hand) / 2)
    assert split_half_tau(ranking[None]) != split_half_tau(ranking[None])  # one seed: NaN


def test_a_generated_glyph_target_splits_into_disjoint_sizes():
    from benchmarks.spiderbench.v2 import image_sources
    from benchmarks.spiderbench.v2.data import MAX_TEST, TRAIN, VAL, build_splits

    spec = next(t for t in tasks.TARGETS["image"] if t.name == "glyphs-digits-liberation")
    try:
        image_sources.font_files("liberation")
    except FileNotFoundError:
        pytest.skip("fonts-liberation not installed")
    small = tasks.TaskSpec(spec.name, "image", "target", spec.classes[:2])
    splits = build_splits(small)
    assert [len(splits[s][1]) for s in ("train", "val", "test")] == [2 * TRAIN, 2 * VAL, 2 * MAX_TEST]
    x = np.concatenate([splits[s][0] for s in ("train", "val", "test")]).reshape(2 * (TRAIN + VAL + MAX_TEST), -1)
    assert len(np.unique(x, axis=0)) == len(x)  # no image in two splits (or twice)


def test_results_json_gains_per_model_scores_and_meta():
    import json

    from benchmarks.spiderbench.report_meta import model_scores, paired_bootstrap, results_document

    zoo = ["m0", "m1", "m2"]
    tasks_ = ["t0", "t1", "t2", "t3"]
    taus = {"spider": [0.5, 0.6, 0.7, 0.8], "logme": [0.4, 0.5, 0.5, 0.6], "parc": [0.1, 0.2, 0.3, 0.2]}
    results = {m: {t: {"weighted_tau": v, "pearson": 0.0, "regret": 0.0, "seconds": 1.0} for t, v in zip(tasks_, vs)}
               for m, vs in taus.items()}
    scores = {t: {m: model_scores(zoo, [1.0, np.nan, -2.0]) for m in taus} for t in tasks_}
    sides = {"image": {"tasks": tasks_, "estimators": ["logme", "parc"], "gt_seeds": [0, 1, 2],
                       "noise_ceiling": 0.7}}
    doc = json.loads(json.dumps(results_document(results, scores, sides)))  # survives JSON as written
    assert set(doc) == {"spider", "logme", "parc", "_scores", "_meta"}
    assert doc["_scores"]["t0"]["spider"] == {"m0": 1.0, "m1": None, "m2": -2.0}
    meta = doc["_meta"]
    assert meta["targets"] == {"image": tasks_} and meta["gt_seeds"] == {"image": [0, 1, 2]}
    assert meta["noise_ceiling"] == {"image": 0.7}
    boot = meta["bootstrap"]["image"]
    assert set(boot) == {"spider - logme", "parc - logme"}  # logme is the best estimator by mean tau
    assert boot["spider - logme"]["mean_difference"] == pytest.approx(0.15)
    assert boot["spider - logme"]["low"] <= 0.15 <= boot["spider - logme"]["high"]
    assert paired_bootstrap(np.ones(4), np.zeros(4))["low"] == 1.0  # a constant difference has no spread
    with pytest.raises(ValueError, match="_"):
        results_document({"_x": {}}, {}, {})


def test_a_text_two_classes_share_is_dropped_from_the_task(monkeypatch):
    from benchmarks.spiderbench.v2 import data
    from benchmarks.spiderbench.v2.classes import refs

    pools = {"a": {"train": ["x", "shared"], "val": ["y"], "test": ["z"]},
             "b": {"train": ["u"], "val": ["v"], "test": ["shared", "w"]}}
    monkeypatch.setattr(data, "_class_splits", lambda spec, ref: pools[ref.label])
    spec = tasks.TaskSpec("t", "text", "train", refs("bbc", ["a", "b"]))
    splits = data.build_splits(spec)
    assert splits["train"][0] == ["x", "u"] and splits["test"][0] == ["z", "w"]
    assert splits["test"][1].tolist() == [0, 1]


def test_committed_results_follow_from_the_committed_ground_truth():
    """Every weighted τ in results.json, and the noise ceiling, recomputed from ground_truth.json and ``_scores``:
    the numbers in RESULTS.md can be checked without re-measuring anything."""
    import json
    from pathlib import Path

    from hf_spider.evaluation import weighted_tau

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    results = json.loads((root / "results.json").read_text())
    truth = json.loads((root / "ground_truth.json").read_text())
    meta = results["_meta"]
    for side in meta["targets"]:
        measured = truth[f"v2/{side}"]["accuracy_by_task_model_seed"]
        per_task = {}
        for task in meta["targets"][side]:
            by_model = measured[task.removeprefix("text/")]  # results.json prefixes text targets
            models = sorted(by_model)
            acc = np.array([[by_model[m][str(s)]["accuracy"] for m in models] for s in meta["gt_seeds"][side]])
            per_task[task] = acc
            for method, scores in results["_scores"][task].items():
                pred = np.array([np.finfo(float).min if scores[m] is None else scores[m] for m in models])
                assert weighted_tau(acc.mean(0), pred) == pytest.approx(results[method][task]["weighted_tau"],
                                                                        abs=1e-9), (task, method)
        assert noise_ceiling(per_task)["weighted_tau"] == pytest.approx(meta["noise_ceiling"][side], abs=1e-9)


def test_merging_one_side_keeps_the_other_sides_entries_and_bootstrap():
    """``report.merge``: re-measuring text leaves every image number of results.json as it was."""
    import json

    from benchmarks.spiderbench.report_meta import results_document
    from benchmarks.spiderbench.v2.report import ESTIMATORS, merge

    def side(tasks_, shift):
        res = {m: {t: {"weighted_tau": 0.1 * k + shift + 0.01 * j, "seconds": 1.0} for j, t in enumerate(tasks_)}
               for k, m in enumerate(["spider", *ESTIMATORS])}
        return res, {t: {m: {"a": 1.0} for m in res} for t in tasks_}

    image, image_scores = side(["i0", "i1", "i2"], 0.0)
    image["spider@encoder-x"] = {t: {"weighted_tau": 0.3, "seconds": None} for t in ["i0", "i1", "i2"]}
    meta = {"tasks": ["i0", "i1", "i2"], "estimators": ESTIMATORS, "gt_seeds": [0, 1, 2], "noise_ceiling": 0.7}
    doc = results_document(image, image_scores, {"image": meta})
    doc["_meta"]["v2"] = {"image": {"cv": 1}}
    before = json.loads(json.dumps(doc))
    text, text_scores = side(["text/t0", "text/t1"], 0.5)
    text_meta = {"tasks": ["text/t0", "text/t1"], "estimators": ESTIMATORS, "gt_seeds": [0, 1, 2],
                 "noise_ceiling": 0.6}
    merged = merge(doc, "text", text, text_scores, text_meta, {"cv": 2})
    for method, per_task in before.items():
        if not method.startswith("_"):
            assert {t: v for t, v in merged[method].items() if not t.startswith("text/")} == per_task
    assert merged["_meta"]["bootstrap"]["image"] == before["_meta"]["bootstrap"]["image"]
    assert merged["_meta"]["noise_ceiling"] == {"image": 0.7, "text": 0.6}
    assert merged["_meta"]["v2"] == {"image": {"cv": 1}, "text": {"cv": 2}}
    assert not any(k.startswith("spider@encoder-x") for k in merged["_meta"]["bootstrap"]["text"])  # image only
    assert set(merged["_scores"]) == {"i0", "i1", "i2", "text/t0", "text/t1"}
    again = merge(merged, "text", text, text_scores, text_meta, {"cv": 2})  # re-measuring replaces, never appends
    assert again == merged


def test_text_top_layer_on_cached_states_is_the_full_forward():
    """v2's text protocol trains the last layer on cached lower-layer states: at initialisation, that path must
    reproduce the backbone's own last hidden state on every real token."""
    import torch
    from transformers import BertConfig, BertModel

    from benchmarks.spiderbench.text.models import TopClassifier, fine_tune_top, lower_states

    class Tokenizer:  # whitespace ids, padded: enough for a tiny random BERT
        def __call__(self, texts, **_):
            ids = [[1 + (hash(w) % 97) for w in t.split()][:64] for t in texts]
            length = max(map(len, ids))
            return {"input_ids": torch.tensor([i + [0] * (length - len(i)) for i in ids]),
                    "attention_mask": torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids])}

    torch.manual_seed(0)
    backbone = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64)).eval()
    texts = ["a b c d e f g", "h i", "j k l m", "n"]
    enc = Tokenizer()(texts)
    with torch.no_grad():
        full = backbone(**enc).last_hidden_state
        states, mask = lower_states(backbone, Tokenizer(), texts, batch_size=3)
        top = TopClassifier(backbone, 2).eval().hidden(states, mask)
    assert torch.equal(mask, enc["attention_mask"])
    real = mask.bool()
    assert torch.allclose(top[real], full[real], atol=1e-5)
    y = np.array([0, 1, 0, 1])
    split = (states, mask, y)
    run = fine_tune_top(backbone, {"train": split, "val": split, "test": split}, 2, lr=1e-3, epochs=2, seed=0,
                        batch_size=2)
    again = fine_tune_top(backbone, {"train": split, "val": split, "test": split}, 2, lr=1e-3, epochs=2, seed=0,
                          batch_size=2)
    assert run == again and len(run["val_history"]) == 2  # the seed fixes the run
    assert all(p.grad is None for p in backbone.parameters())  # the backbone itself is never trained


def test_a_unit_not_measured_here_is_read_from_the_committed_export(tmp_path, monkeypatch):
    import json

    from benchmarks.spiderbench.common import write_json
    from benchmarks.spiderbench.v2 import ground_truth as gt

    export = tmp_path / "ground_truth.json"
    export.write_text(json.dumps({"v2/image": {"accuracy_by_task_model_seed": {
        "t": {"m0": {"0": {"accuracy": 50.0}, "1": {"accuracy": 52.0}}, "m1": {"0": {"accuracy": 60.0}}}}}}))
    monkeypatch.setattr(gt, "EXPORT", export)
    monkeypatch.setattr(gt, "GT_ROOT", tmp_path / "units")
    monkeypatch.setattr(gt, "zoo", lambda modality: (["m0", "m1"], tmp_path))
    gt.exported.cache_clear()
    try:
        assert gt.seed_accuracies("image", "t", [0]).tolist() == [[50.0, 60.0]]
        assert gt.seed_accuracies("image", "t", [0, 1]) is None  # m1's seed 1 is measured nowhere
        write_json(gt.unit_path("image", "t", "m1", 1), {"accuracy": 61.0})  # a local unit is read first
        write_json(gt.unit_path("image", "t", "m0", 0), {"accuracy": 49.0})
        assert gt.seed_accuracies("image", "t", [0, 1]).tolist() == [[49.0, 60.0], [52.0, 61.0]]
    finally:
        gt.exported.cache_clear()


def test_the_export_keeps_units_this_machine_did_not_measure(tmp_path, monkeypatch):
    """Rerunning the report from a fresh clone (no units under .work) must not empty ground_truth.json."""
    import json

    from benchmarks.spiderbench.common import write_json
    from benchmarks.spiderbench.v2 import report

    path = tmp_path / "ground_truth.json"
    old = {"t": {"m": {"0": {"accuracy": 50.0, "chosen_lr": 0.1, "cpu_seconds": 1.0}}}}
    path.write_text(json.dumps({"v2/image": {"protocol": "p", "accuracy_by_task_model_seed": old}, "v1/text": {}}))
    monkeypatch.setattr(report, "GT_ROOT", tmp_path / "units")
    report.export_ground_truth(path, "image")
    doc = json.loads(path.read_text())
    assert doc["v2/image"]["accuracy_by_task_model_seed"] == old and doc["v2/image"]["protocol"] == "p"
    assert doc["v1/text"] == {}
    write_json(tmp_path / "units" / "image" / "t" / "m" / "seed1.json",
               {"task": "t", "model": "m", "seed": 1, "accuracy": 51.0, "protocol": "p"})
    report.export_ground_truth(path, "image")
    measured = json.loads(path.read_text())["v2/image"]["accuracy_by_task_model_seed"]["t"]["m"]
    assert measured["0"]["accuracy"] == 50.0 and measured["1"]["accuracy"] == 51.0
