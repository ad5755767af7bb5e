"""Tests of hf_spider.hubzoo (TransferGraph loader and cleaning) and benchmarks/hubzoo/label_names.json."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_spider.errors import InvalidInputError
from hf_spider.hubzoo import (
    ENV_VAR,
    TARGET_META_FIXES,
    TransferGraphNotFoundError,
    default_root,
    label_text_prompts,
    load_transfergraph,
    model_source_labels,
)

REPO = Path(__file__).resolve().parents[1]
HAS_DATA = (default_root() / "image" / "records.csv").is_file() and (default_root() / "text" / "records.csv").is_file()
needs_data = pytest.mark.skipif(
    not HAS_DATA, reason=f"TransferGraph results not found at {default_root()} (set ${ENV_VAR} to their folder)"
)

# Rows each cleaning rule touched, as documented in the module docstring and benchmarks/hubzoo/README.md.
EXPECTED_CLEANING = {
    "image": {
        "rows_in": 1897,
        "junk_dataset_rows": 0,
        "peft_rows": 0,
        "missing_accuracy_rows": 0,
        "excluded_target_rows": 112,
        "unknown_model_rows": 0,
        "diverged_runs": 8,
        "diverged_runs_dropped": 0,
        "repeated_runs_merged": 0,
        "score_rows_in": 2192,
        "score_rows_malformed": 2,
        "score_rows_outside_zoo": 0,
        "score_rows_merged": 120,
    },
    "text": {
        "rows_in": 3194,
        "junk_dataset_rows": 4,
        "peft_rows": 1433,
        "missing_accuracy_rows": 1,
        "excluded_target_rows": 0,
        "unknown_model_rows": 0,
        "diverged_runs": 24,
        "diverged_runs_dropped": 0,
        "repeated_runs_merged": 317,
        "score_rows_in": 2510,
        "score_rows_malformed": 0,
        "score_rows_outside_zoo": 0,
        "score_rows_merged": 0,
    },
}
SHAPES = {"image": (10, 185), "text": (10, 164)}


@pytest.fixture(scope="module")
def label_names() -> dict:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # benchmarks/ is part of the repository, not of the installed package
    return importlib.import_module("benchmarks.hubzoo.labels").load_label_names()


@pytest.fixture(scope="module", params=["image", "text"])
def zoo(request):
    if not HAS_DATA:
        pytest.skip(f"TransferGraph results not found at {default_root()} (set ${ENV_VAR} to their folder)")
    return load_transfergraph(request.param)


def test_shapes_and_alignment(zoo):
    T, M = SHAPES[zoo.side]
    assert (len(zoo.targets), len(zoo.models)) == (T, M)
    assert zoo.models == sorted(zoo.models) and zoo.targets == sorted(zoo.targets)
    for name in ("accuracy", "num_runs", "diverged", "logme", "reg_hscore", "logme_runtime", "reg_hscore_runtime"):
        assert getattr(zoo, name).shape == (T, M), name
    assert zoo.model_meta.index.tolist() == zoo.models
    assert zoo.target_meta.index.tolist() == zoo.targets
    assert "food101" not in zoo.targets


def test_cleaning_counts_are_stable(zoo):
    assert zoo.cleaning == EXPECTED_CLEANING[zoo.side]
    dropped = ["junk_dataset_rows", "peft_rows", "missing_accuracy_rows", "excluded_target_rows", "unknown_model_rows"]
    kept_runs = zoo.cleaning["rows_in"] - sum(zoo.cleaning[rule] for rule in dropped)
    assert int(zoo.num_runs.sum()) == kept_runs
    assert int((zoo.num_runs > 0).sum()) == kept_runs - zoo.cleaning["repeated_runs_merged"]


def test_no_nan_leakage(zoo):
    has_run = zoo.num_runs > 0
    assert np.array_equal(np.isfinite(zoo.accuracy), has_run)
    assert np.all((zoo.accuracy[has_run] >= 0) & (zoo.accuracy[has_run] <= 1))
    assert not zoo.diverged[~has_run].any()
    for score, runtime in ((zoo.logme, zoo.logme_runtime), (zoo.reg_hscore, zoo.reg_hscore_runtime)):
        assert np.array_equal(np.isfinite(score), np.isfinite(runtime))
        assert np.all(runtime[np.isfinite(runtime)] > 0)
    assert np.isfinite(zoo.logme).sum() > 1000
    assert not zoo.target_meta.isna().any().any()
    complete = ["architecture", "source_labels", "num_source_labels", "memory_bytes"]
    complete += ["input_size", "feature_dim"] if zoo.side == "image" else ["model_type", "num_parameters"]
    assert not zoo.model_meta[complete].isna().any().any()
    assert (zoo.model_meta["architecture"].str.len() > 0).all()
    assert has_run.any(axis=0).sum() == {"image": 180, "text": 164}[zoo.side]  # 5 image models were never run
    assert has_run.any(axis=1).all()


def test_diverged_runs_kept_by_default_and_droppable(zoo):
    dropped = load_transfergraph(zoo.side, drop_diverged=True)
    assert dropped.cleaning["diverged_runs_dropped"] == zoo.cleaning["diverged_runs"]
    assert np.array_equal(dropped.diverged, zoo.diverged)
    all_runs_diverged = zoo.diverged & (dropped.num_runs == 0)
    assert np.isnan(dropped.accuracy[all_runs_diverged]).all()
    assert np.isfinite(zoo.accuracy[zoo.diverged]).all()
    assert int(all_runs_diverged.sum()) == {"image": 8, "text": 21}[zoo.side]
    threshold = 1.1 / zoo.target_meta["num_classes"].to_numpy()[:, None]  # (T, 1)
    assert np.all(zoo.accuracy[all_runs_diverged] <= np.broadcast_to(threshold, zoo.accuracy.shape)[all_runs_diverged])


def test_every_target_has_label_names_of_its_class_count(zoo, label_names):
    for target, row in zoo.target_meta.iterrows():
        entry = label_names[target]
        assert entry["task_type"] == zoo.side
        assert len(entry["names"]) == row["num_classes"], target
        if row["num_classes_csv"] != row["num_classes"]:  # a documented correction of the published CSV
            assert target in TARGET_META_FIXES and entry["note"], target


@needs_data
def test_label_names_cover_every_finetuned_dataset(label_names):
    for side in ("image", "text"):
        records = pd.read_csv(default_root() / side / "records.csv", usecols=["finetuned_dataset", "eval_accuracy"])
        datasets = set(records.loc[records["eval_accuracy"].notna(), "finetuned_dataset"])
        assert datasets <= set(label_names), datasets - set(label_names)
        assert {d for d, e in label_names.items() if e["task_type"] == side} == datasets


def test_label_names_file_is_well_formed(label_names):
    assert len(label_names) == 21
    assert label_names["kitti"]["names"][-1] == "no vehicle"
    assert label_names["smallnorb_label_azimuth"]["names"][1] == "azimuth 20 degrees"
    assert label_names["smallnorb_label_elevation"]["names"][0] == "elevation 30 degrees"
    assert label_names["caltech101"]["names"][4] == "background"
    assert all(entry["source"] for entry in label_names.values())


def test_model_source_labels_parsing():
    row = {"source_labels": "['corgi', 'samoyed', 'shiba inu']", "source_dataset": "hfpics"}
    assert model_source_labels(row) == ["corgi", "samoyed", "shiba inu"]
    assert model_source_labels({"source_labels": "imagenet", "source_dataset": "imagenet"}) == ["imagenet"]
    assert model_source_labels({"source_labels": "cifar100", "source_dataset": np.nan}) == ["cifar100"]
    generic = "['LABEL_0', 'LABEL_1', '2']"
    assert model_source_labels({"source_labels": generic, "source_dataset": "glue/qqp"}) == ["glue/qqp"]
    assert model_source_labels({"source_labels": generic, "source_dataset": np.nan}) == []
    series = pd.Series({"source_labels": "['no', ' yes ']", "source_dataset": None})
    assert model_source_labels(series) == ["no", "yes"]
    for bad in ("['unclosed'", "[__import__('os')]", "[1, 2"):
        with pytest.raises(InvalidInputError):
            model_source_labels({"source_labels": bad, "source_dataset": None})


def test_model_source_labels_on_every_model(zoo):
    labels = [model_source_labels(row) for _, row in zoo.model_meta.iterrows()]
    assert all(isinstance(name, str) and name for names in labels for name in names)
    if zoo.side == "image":
        assert all(labels)
        assert labels[zoo.models.index("Aftabhussain/Tomato_Leaf_Classifier")] == ["Bacterial_spot", "Healthy"]


def test_label_text_prompts():
    assert label_text_prompts(["maple_tree", "head of a  crocodile"], "image") == [
        "a photo of maple tree.",
        "a photo of head of a crocodile.",
    ]
    assert label_text_prompts(["MeanOfTransportation", "Sci/Tech", "non_irony"], "text") == [
        "Mean Of Transportation",
        "Sci/Tech",
        "non irony",
    ]
    assert label_text_prompts(["McLaren MP4-12C Coupe 2012"], "image") == ["a photo of McLaren MP4-12C Coupe 2012."]
    with pytest.raises(InvalidInputError):
        label_text_prompts(["a"], "audio")
    with pytest.raises(InvalidInputError):
        label_text_prompts(["a", " "], "text")


def test_bad_side_and_missing_root(tmp_path, monkeypatch):
    with pytest.raises(InvalidInputError):
        load_transfergraph("audio")
    with pytest.raises(TransferGraphNotFoundError, match=ENV_VAR):
        load_transfergraph("image", tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_root() == tmp_path
    with pytest.raises(FileNotFoundError):
        load_transfergraph("text")
