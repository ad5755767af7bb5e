import datasets
import numpy as np
import pytest
from conftest import text_dataset

from hf_spider import InvalidInputError, sample_task
from hf_spider.bundled import bundled_dataset, list_bundled_datasets
from hf_spider.data import class_balanced_indices, dataset_label_names, infer_columns


def test_class_balanced_indices_is_balanced_seeded_and_within_classes():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 20)
    idx = class_balanced_indices(labels, 5, seed=1)
    assert np.bincount(labels[idx]).tolist() == [5, 3, 5]  # a small class gives all it has
    assert len(set(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, class_balanced_indices(labels, 5, seed=1))
    assert not np.array_equal(idx, class_balanced_indices(labels, 5, seed=2))


def test_sample_task_remaps_labels_and_keeps_names():
    sample = sample_task(text_dataset(6), shots_per_class=4, seed=0)
    assert sample.modality == "text" and sample.label_names == ["sport", "politics", "tech"]
    assert np.bincount(sample.labels).tolist() == [4, 4, 4]
    assert all(sample.label_names[y] in ("sport", "politics", "tech") for y in sample.labels)
    assert "minister" in sample.inputs[int(np.flatnonzero(sample.labels == 1)[0])]


def test_string_and_int_labels_and_missing_classes():
    ds = datasets.Dataset.from_dict({"sentence": ["a", "b", "c", "d"], "y": ["cat", "dog", "cat", "eel"]})
    sample = sample_task(ds, label_column="y", shots_per_class=8)
    assert sample.label_names == ["cat", "dog", "eel"] and sorted(sample.labels.tolist()) == [0, 0, 1, 2]
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [3, 7, 3]})
    assert sample_task(ds).label_names == ["3", "7"]
    # A ClassLabel class with no rows is dropped, the others keep their names.
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    ds = datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 2]}, features=feats)
    sample = sample_task(ds)
    assert sample.label_names == ["a", "c"] and sorted(sample.labels.tolist()) == [0, 1]


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        ({"text": ["a", "b"], "label": [1, 1]}, {}, "at least two"),
        ({"text": ["a", "b"], "label": [0, 1]}, {"label_column": "target"}, "available columns"),
        ({"text": ["a", "b"], "label": [0, 1]}, {"input_column": "body"}, "available columns"),
        ({"num": [1.0, 2.0], "label": [0, 1]}, {}, "No image or text column"),
        ({"text": [], "label": []}, {}, "empty"),
    ],
)
def test_bad_datasets_get_clear_errors(data, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        sample_task(datasets.Dataset.from_dict(data), **kwargs)


def test_label_names_without_reading_rows_and_column_inference():
    ds = text_dataset()
    assert dataset_label_names(ds) == ["sport", "politics", "tech"]
    assert infer_columns(ds) == ("text", "label", "text")
    assert dataset_label_names(datasets.Dataset.from_dict({"t": ["a", "b"], "label": ["x", "y"]})) == ["x", "y"]


def test_bundled_sample_dataset():
    assert "fashion-mnist" in list_bundled_datasets()
    ds = bundled_dataset("fashion-mnist")
    assert len(ds) == 80 and ds.features["label"].names[-1] == "Ankle boot"
    assert infer_columns(ds)[2] == "image"
    with pytest.raises(InvalidInputError, match="fashion-mnist"):
        bundled_dataset("nope")


CARD_ONLY = """---
dataset_info:
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
          '0': apple
          '1': aquarium_fish
          '2': baby
---
# A dataset whose card lists its classes
"""


def test_label_names_from_the_dataset_card_without_data(tmp_path):
    """A label-name selector ranks a dataset from its card alone: the only data file here has no rows."""
    from conftest import make_label_selector

    from hf_spider import SpiderSelector

    (tmp_path / "ds" / "data").mkdir(parents=True)
    (tmp_path / "ds" / "README.md").write_text(CARD_ONLY)
    (tmp_path / "ds" / "data" / "metadata.csv").write_text("file_name,label\n")
    assert dataset_label_names(str(tmp_path / "ds")) == ["apple", "aquarium_fish", "baby"]
    selector = SpiderSelector.from_pretrained(make_label_selector(tmp_path / "sel"), token_source="mirror")
    ranking = selector.rank(str(tmp_path / "ds"), verbose=False)
    assert len(ranking) == 3 and ranking[0].label_names == ("apple", "aquarium_fish", "baby")


@pytest.mark.parametrize("modality", ["text", "image"])
def test_sampling_reads_columns_in_slices_not_row_by_row(monkeypatch, modality):
    """Labels, texts and image bytes are read with one slice each: formatting row by row (``ds[column]`` is a lazy
    ``Column``) took 2.2 s for 20,000 labels, before any image was looked at."""
    import datasets.arrow_dataset as arrow_dataset
    from conftest import image_dataset

    calls = []
    real = arrow_dataset.format_table
    monkeypatch.setattr(arrow_dataset, "format_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    ds = text_dataset(100) if modality == "text" else image_dataset(100)  # 300 rows
    sample = sample_task(ds, shots_per_class=8, seed=0)
    assert np.bincount(sample.labels).tolist() == [8, 8, 8] and len(sample.inputs) == 24
    assert len(calls) <= 10  # a handful of slices; row-by-row reading formats each of the 300 + 24 rows
