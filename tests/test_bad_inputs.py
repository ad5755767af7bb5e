"""Bad inputs: each gives a clear error naming the problem and the fix, and nothing is written or corrupted."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest
import torch
from conftest import MINILM, text_dataset
from synthetic import planted_tasks

from hf_spider import (
    ArtifactError,
    FitnessConfig,
    HfSpiderError,
    InvalidInputError,
    SelectorConfig,
    SpiderSelector,
    TokenIntegrityError,
    TrainingConfig,
    ZooError,
    sample_task,
)
from hf_spider.hub import HubUnreachableError, parse_zoo
from hf_spider.tokens import TaskEncoder, TaskToken, class_prototypes, parse_token, token_bytes, token_sha256

TASK_DIM = 384


@pytest.fixture(scope="module")
def selector() -> SpiderSelector:
    tasks = planted_tasks(12, num_models=3, task_dim=TASK_DIM)
    config = SelectorConfig(name="test-org/spider-bad", modality="text", task_encoder=MINILM, shots_per_class=4,
                            fitness=FitnessConfig(task_dim=TASK_DIM, token_dim=16, num_heads=2, num_layers=1))
    return SpiderSelector.train(tasks, config=config, zoo=["test-org/a", "test-org/b", "test-org/c"],
                                training=TrainingConfig(epochs=2), verbose=False)


@pytest.fixture
def saved(selector, tmp_path) -> Path:
    folder = tmp_path / "sel"
    selector.save_pretrained(folder)
    return folder


def tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``: compared before and after, it proves nothing was written."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refuse(folder: Path, error: type[Exception], match: str, **kwargs) -> None:
    """Loading ``folder`` raises ``error`` matching ``match`` and leaves the folder byte-for-byte unchanged."""
    before = tree(folder)
    kwargs.setdefault("token_source", "mirror")  # the zoo's model ids are not on any Hub: never reach for them
    with pytest.raises(error, match=match):
        SpiderSelector.from_pretrained(folder, **kwargs)
    assert tree(folder) == before


# --- datasets ------------------------------------------------------------------------------------------------

TEXT = ["a b", "c d", "e f", "g h"]


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        ({"text": TEXT, "label": [0, 1, 0, 1]}, {"label_column": "target"}, r"'target' not found.*available columns"),
        ({"text": TEXT, "label": [0, 1, 0, 1]}, {"input_column": "body"}, r"'body' not found.*available columns"),
        ({"text": TEXT, "label": [0.5, 1.5, 0.5, 1.5]}, {}, r"dtype float64; use a ClassLabel, int or str"),
        ({"text": TEXT, "n": [1, 2, 3, 4], "label": [0, 1, 0, 1]}, {"input_column": "n"}, r"reads `Image` or string"),
        ({"text": TEXT, "label": [0, 1, 0, 1]}, {"input_column": "label", "label_column": "label"}, "must differ"),
        ({"num": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]}, {}, r"No image or text column.*input_column="),
        ({"text": TEXT, "y": [0, 1, 0, 1]}, {}, r"No label column.*label_column="),
        ({"text": TEXT, "label": [3, 3, 3, 3]}, {}, r"1 class\(es\).*at least two"),
        ({"text": TEXT, "label": [0, None, 1, 0]}, {}, r"1 missing values; filter them out"),
        ({"text": TEXT, "label": ["x", None, "y", "x"]}, {}, r"missing values; filter them out"),
        ({"text": [], "label": []}, {}, r"empty.*split="),
    ],
)
def test_bad_dataset_columns_and_labels(selector, data, kwargs, message):
    ds = datasets.Dataset.from_dict(data)
    with pytest.raises(InvalidInputError, match=message):
        sample_task(ds, **kwargs)
    with pytest.raises(InvalidInputError, match=message):  # the same error through the public entry point
        selector.rank(ds, verbose=False, **kwargs)


def test_split_and_unlabelled_rows():
    dd = datasets.DatasetDict({"train": text_dataset()})
    with pytest.raises(InvalidInputError, match=r"Split 'test' not found; available splits: \['train'\]"):
        sample_task(dd, split="test")
    ds = text_dataset().cast_column("label", datasets.Value("int64"))
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"text": TEXT, "label": [0, -1, 1, 0]}, features=feats)
    with pytest.raises(InvalidInputError, match=r"1 unlabelled rows \(-1\); filter them out"):
        sample_task(ds)
    with pytest.raises(InvalidInputError, match="streaming"):
        sample_task(ds.to_iterable_dataset())
    with pytest.raises(InvalidInputError, match="Expected a datasets.Dataset"):
        sample_task([("text", 0)])


def test_class_with_zero_samples(caplog):
    """A declared class with no rows is dropped with a warning (documented); prototypes refuse an empty class."""
    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["a", "b", "c"])})
    ds = datasets.Dataset.from_dict({"text": TEXT, "label": [0, 2, 0, 2]}, features=feats)
    with caplog.at_level(logging.WARNING, logger="hf_spider.data"):
        sample = sample_task(ds, shots_per_class=1)
    assert sample.label_names == ["a", "c"] and sorted(sample.labels.tolist()) == [0, 1]
    assert "Dropping 1 class(es) with no rows" in caplog.text and "'b'" in caplog.text
    ds = datasets.Dataset.from_dict({"text": TEXT, "label": [1, 1, 1, 1]}, features=feats)
    with pytest.raises(InvalidInputError, match="at least two"):
        sample_task(ds)
    # Bug fixed: a class id without rows used to give an all-zero prototype, silently.
    with pytest.raises(InvalidInputError, match=r"Class id\(s\) \[1\] have no samples"):
        class_prototypes(torch.ones(4, 3), np.array([0, 2, 0, 2]), 3)
    with pytest.raises(InvalidInputError, match=r"class ids in \[0, 2\)"):
        class_prototypes(torch.ones(4, 3), np.array([0, 2, 0, 1]), 2)
    with pytest.raises(InvalidInputError, match="shots_per_class must be"):
        sample_task(text_dataset(), shots_per_class=0)


def test_dataset_larger_than_memory_is_sampled_not_loaded(tmp_path):
    """An on-disk Arrow dataset (memory-mapped) ~300x larger than the sample: only the label column and the sampled
    rows are read. Rows read are counted through a format transform, which every row access goes through."""
    n, row_bytes = 20_000, 4_000
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    text = pa.array([f"row {i} " + "x" * row_bytes for i in range(n)], type=pa.large_string())
    table = pa.table({"text": text, "label": pa.array(labels, type=pa.int64())})
    path = tmp_path / "big.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1_000)
    del table, text
    ds = datasets.Dataset.from_file(str(path))
    assert type(ds.data).__name__ == "MemoryMappedTable" and os.path.getsize(path) > n * row_bytes
    rows_read = []

    def counting(batch):
        rows_read.append(len(next(iter(batch.values()))))
        return batch

    ds.set_transform(counting, columns=["text"])
    before = tree(tmp_path)
    sample = sample_task(ds, input_column="text", label_column="label", shots_per_class=16)
    assert len(sample.inputs) == 64 and np.bincount(sample.labels).tolist() == [16] * 4
    assert sum(rows_read) == 64  # the sampled rows only, not the 20,000 of the split
    assert sample.inputs[0].startswith(f"row {sample.indices[0]} ")
    assert tree(tmp_path) == before  # nothing cached or written next to the data


# --- features, prototypes and estimator inputs ---------------------------------------------------------------


class _NaNExtractor:
    modality = "text"

    def __call__(self, inputs, *, verbose=True):
        features = torch.randn(len(inputs), TASK_DIM)
        features[0, 0] = float("nan")
        return features


def test_nan_and_inf_features_are_refused(selector):
    encoder = TaskEncoder.__new__(TaskEncoder)
    encoder.model_id, encoder.extractor = MINILM, _NaNExtractor()
    sample = sample_task(text_dataset(), shots_per_class=2)
    with pytest.raises(InvalidInputError, match="NaN or inf.*encoder"):
        encoder.encode(sample, verbose=False)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            TaskToken(torch.tensor([[0.0, bad], [1.0, 2.0]]), ["a", "b"], "enc")
    with pytest.raises(InvalidInputError, match="width 8, this selector expects 384"):
        selector.score(TaskToken(torch.zeros(2, 8), ["a", "b"], "enc"))
    with pytest.raises(InvalidInputError, match=r"\(C, d\) with C = 3"):
        TaskToken(torch.zeros(2, TASK_DIM), ["a", "b", "c"], "enc")


def _estimators():
    estimators = pytest.importorskip("hf_spider.estimators")
    return estimators.ESTIMATORS


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_estimators_refuse_non_finite_inputs(bad):
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(20, 5)), np.repeat([0, 1], 10)
    probs = np.full((20, 4), 0.25)
    features[3, 2] = bad
    for name, estimator in _estimators().items():
        with pytest.raises(InvalidInputError, match="NaN or infinite"):
            estimator(features, labels, source_probs=probs)
        bad_probs = probs.copy()
        bad_probs[0, 0] = bad
        try:
            estimator(np.nan_to_num(features, posinf=0.0, neginf=0.0), labels, source_probs=bad_probs)
        except InvalidInputError as err:  # estimators that read source_probs refuse them; the others ignore them
            assert "source_probs" in str(err), name


# --- artifacts: tokens, zoo.json, config, weights ------------------------------------------------------------


def test_token_dim_mismatch(selector, saved):
    entry = selector.zoo[0]
    other = torch.randn(32)
    (saved / entry.mirror).write_bytes(token_bytes(other, model_id=entry.model_id, selector="someone/else"))
    zoo = json.loads((saved / "zoo.json").read_text())
    zoo["models"][0]["token_sha256"] = token_sha256(other)
    (saved / "zoo.json").write_text(json.dumps(zoo))
    refuse(saved, TokenIntegrityError, "dim 32, the selector expects 16.*re-tokenize", token_source="mirror")
    with pytest.raises(TokenIntegrityError, match="dim 32"):
        parse_token(token_bytes(other, model_id="m", selector="s"), expected_dim=16)


def test_truncated_and_tampered_token_files(selector, saved):
    entry = selector.zoo[1]
    good = (saved / entry.mirror).read_bytes()
    header_len = int.from_bytes(good[:8], "little")
    flipped = bytearray(good)
    flipped[-1] ^= 0x01  # one bit of the last float
    cases = {
        "truncated data": (good[:-4], "not a valid safetensors"),
        "truncated header": (good[: 8 + header_len // 2], "not a valid safetensors"),
        "empty": (b"", "0 bytes is not a model token"),
        "huge header length": ((2**62).to_bytes(8, "little") + good[8:], "not a valid safetensors"),
        "tampered value": (bytes(flipped), "does not match zoo.json.*re-download"),
    }
    for name, (data, message) in cases.items():
        (saved / entry.mirror).write_bytes(data)
        refuse(saved, TokenIntegrityError, message, token_source="mirror")
    (saved / entry.mirror).write_bytes(token_bytes(torch.randn(16).half().float(), model_id="m", selector="s"))
    refuse(saved, TokenIntegrityError, "does not match zoo.json", token_source="mirror")


def test_truncated_selector_files(saved):
    weights = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    refuse(saved, ArtifactError, "model.safetensors holds .* bytes, not what its tensors need; it is truncated")
    (saved / "model.safetensors").write_bytes(weights)
    zoo = (saved / "zoo.json").read_text()
    (saved / "zoo.json").write_text(zoo[: len(zoo) // 2])
    refuse(saved, ZooError, "zoo.json is not valid JSON.*re-save")
    (saved / "zoo.json").unlink()
    refuse(saved, ArtifactError, "zoo.json is missing")


@pytest.mark.parametrize("text", ['{"format_version": 1, "name": "x"', "[1, 2]", "\ufeff{}"])
def test_malformed_config_json(saved, text):
    (saved / "config.json").write_text(text)
    refuse(saved, ArtifactError, "config.json")


@pytest.mark.parametrize("mirror", ["../../etc/passwd", "/etc/passwd", "tokens/../../x.safetensors",
                                    "tokens/sub/x.safetensors", "tokens\\..\\x.safetensors", "tokens/.x.safetensors",
                                    "tokens/x.safetensors\n", "model.safetensors"])
def test_zoo_json_naming_a_file_outside_tokens(saved, mirror):
    zoo = json.loads((saved / "zoo.json").read_text())
    zoo["models"][0]["mirror"] = mirror
    (saved / "zoo.json").write_text(json.dumps(zoo))
    refuse(saved, ZooError, "must be a file directly under tokens/")


def test_mirror_token_linking_outside_the_selector(selector, saved, tmp_path):
    """Bug fixed: a tokens/ entry that is a symlink out of the selector folder used to be followed."""
    entry = selector.zoo[0]
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((saved / entry.mirror).read_bytes())
    (saved / entry.mirror).unlink()
    (saved / entry.mirror).symlink_to(outside)
    refuse(saved, ZooError, "links outside the selector folder")


def test_unknown_model_and_selector_ids(selector, tmp_path):
    with pytest.raises(ZooError, match="'nobody/nothing' is not in this selector's zoo"):
        selector.write_token("nobody/nothing", repo=str(tmp_path))
    with pytest.raises(ZooError, match="not in this selector's zoo"):
        selector.token_file("nobody/nothing")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArtifactError, match="No selector folder"):
        SpiderSelector.from_pretrained(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="neither a folder nor a valid Hub repo id"):
        SpiderSelector.from_pretrained("not a valid id!")
    cache = tmp_path / "cache"
    with pytest.raises(HubUnreachableError, match="not in the local cache"):
        SpiderSelector.from_pretrained("nobody/nothing", local_files_only=True, cache_dir=cache)
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []
    with pytest.raises(ZooError, match="duplicate|repeated"):
        parse_zoo(json.dumps({"format_version": 1, "models": [
            {"model_id": "a/b", "revision": None, "task_type": "text-classification", "token_sha256": "0" * 64,
             "mirror": "tokens/a.safetensors"}] * 2}))


def test_errors_share_the_base_class():
    for error in (InvalidInputError, TokenIntegrityError, ZooError, ArtifactError, HubUnreachableError):
        assert issubclass(error, HfSpiderError)


def test_connection_dropped_mid_download_is_a_clear_error(selector, saved, monkeypatch):
    """Without a server: huggingface_hub raising its HTTP client's transport error (not an OSError) mid-download
    gives HubUnreachableError for the selector, and the mirror fallback for tokens."""
    import huggingface_hub

    from hf_spider import hub

    transport = hub._transport_error()

    def dropped(*args, **kwargs):
        raise transport("Connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", dropped)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", dropped)
    with pytest.raises(HubUnreachableError, match="connection to the Hub failed during the download.*Retry"):
        hub.snapshot_selector("test-org/spider-bad")
    with pytest.raises(HubUnreachableError, match="Connection reset"):
        hub.fetch_model_token("test-org/a", revision="a" * 40)
    before = tree(saved)
    loaded = SpiderSelector.from_pretrained(saved)  # token_source="auto": every token from the mirror
    assert torch.equal(loaded.model_tokens, selector.model_tokens) and tree(saved) == before
    with pytest.raises(HubUnreachableError):
        SpiderSelector.from_pretrained(saved, token_source="model")


def test_write_token_refuses_a_card_with_stray_markers_and_writes_nothing(selector, tmp_path):
    from hf_spider.cards import TOKEN_START

    repo = tmp_path / "model"
    repo.mkdir()
    (repo / "README.md").write_text(f"# model\n{TOKEN_START}\nhalf a section, no end marker\n")
    before = tree(repo)
    with pytest.raises(ValueError, match="markers.*Fix the card by hand"):
        selector.write_token("test-org/a", repo=str(repo))
    assert tree(repo) == before  # neither the token nor a half-updated card
