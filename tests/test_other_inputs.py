"""List-valued labels, read-only destinations and a DatasetDict without a train split (issue 16, item 11)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import datasets
import pytest
import torch
from conftest import make_label_selector, text_dataset

from hf_spider import InvalidInputError, SpiderSelector, sample_task
from hf_spider.cli import main

TEXTS = ["a b", "c d", "e f", "g h"]


# --- label columns that do not hold one class per row -------------------------------------------------------


@pytest.mark.parametrize("labels, features", [
    ([[0, 1], [1], [0], [1, 0]], None),  # ragged int lists: a numpy traceback before
    ([[0, 1], [1], [0], [1, 0]], datasets.Sequence(datasets.ClassLabel(names=["x", "y"]))),  # multi-label ClassLabel
    ([[0, 1], [1, 0], [0, 0], [1, 1]], None),  # equal-length lists: "2-D values" before
    ([[0], [1], [0], [1]], None),  # one label per list: still a list column
], ids=["ragged", "sequence-classlabel", "equal-length", "singletons"])
def test_list_valued_labels_name_the_column(labels, features):
    feats = None if features is None else datasets.Features({"text": datasets.Value("string"), "labels": features})
    ds = datasets.Dataset.from_dict({"text": TEXTS, "labels": labels}, features=feats)
    with pytest.raises(InvalidInputError, match=r"Label column 'labels' holds lists of labels.*one class per row"):
        sample_task(ds)


def test_struct_labels_are_refused_not_turned_into_classes():
    """Before: each dict became a class named "{'a': array(1)}"."""
    ds = datasets.Dataset.from_dict({"text": TEXTS, "label": [{"a": 1}, {"a": 2}, {"a": 1}, {"a": 2}]})
    with pytest.raises(InvalidInputError, match=r"Label column 'label' holds values of type dict"):
        sample_task(ds)


def test_list_valued_labels_through_the_cli_is_exit_2(tmp_path, capsys):
    datasets.Dataset.from_dict({"text": TEXTS, "labels": [[0, 1], [1], [0], [1, 0]]}).save_to_disk(tmp_path / "ds")
    assert main(["rank", str(tmp_path / "ds"), "--selector", "hubzoo-text", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Label column 'labels' holds lists" in err and "Traceback" not in err


# --- a DatasetDict without a train split ----------------------------------------------------------------------


def test_dataset_dict_without_train_asks_for_a_split():
    """Before: "validation" was used without a word."""
    dd = datasets.DatasetDict({"validation": text_dataset(4), "test": text_dataset(3)})
    with pytest.raises(InvalidInputError, match=r"no 'train' split.*\['test', 'validation'\].*split="):
        sample_task(dd)
    assert len(sample_task(dd, split="test", shots_per_class=3).indices) == 9


def test_dataset_dict_with_one_split_uses_it_and_says_so(caplog):
    dd = datasets.DatasetDict({"validation": text_dataset(4)})
    with caplog.at_level(logging.WARNING, logger="hf_spider.data"):
        assert len(sample_task(dd, shots_per_class=4).indices) == 12
    assert "no 'train' split; using its only split 'validation'" in caplog.text


# --- read-only destinations, found before the work ------------------------------------------------------------


@pytest.fixture
def read_only():
    """Make folders read-only for this process. Root ignores mode bits, so as root the folder is made immutable
    (``chattr +i``) instead; where that is impossible the test is skipped."""
    made: list[Path] = []

    def make(folder: Path) -> Path:
        folder.chmod(0o555)
        made.append(folder)
        if os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("running as root on a file system without chattr +i: cannot make a folder read-only")
        return folder

    yield make
    for folder in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def _image_folder(root: Path) -> Path:
    from PIL import Image

    for k, label in enumerate(["cat", "dog"]):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (100 * k, i, 0)).save(root / label / f"{i}.png")
    (root / "README.md").write_text("# ds\n")
    return root


def _no_ranking(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the ranking ran before the destination was checked")
    monkeypatch.setattr(SpiderSelector, "rank", fail)


def test_card_dataset_into_a_read_only_folder_fails_before_ranking(tmp_path, read_only, monkeypatch, capsys):
    """Before: the ranking ran, then a PermissionError traceback."""
    selector = make_label_selector(tmp_path / "sel")
    folder = read_only(_image_folder(tmp_path / "ds"))
    _no_ranking(monkeypatch)
    code = main(["card", "dataset", str(folder), "--selector", str(selector), "--token-source", "mirror", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and f"Cannot write the dataset card (README.md) into {folder}" in err and "not writable" in err
    assert (folder / "README.md").read_text() == "# ds\n"


def test_card_dataset_dry_run_into_a_read_only_folder_still_works(tmp_path, read_only, capsys):
    selector = make_label_selector(tmp_path / "sel")
    folder = read_only(_image_folder(tmp_path / "ds"))
    assert main(["card", "dataset", str(folder), "--selector", str(selector), "--token-source", "mirror",
                 "--dry-run", "-q"]) == 0
    assert "hf-spider:start" in capsys.readouterr().out


def test_add_model_into_a_read_only_selector_fails_before_any_work(tmp_path, read_only, monkeypatch, capsys):
    folder = make_label_selector(tmp_path / "sel", modality="text", zoo=["org/a", "org/b"])
    selector = SpiderSelector.from_pretrained(folder, token_source="mirror")
    read_only(folder / "tokens")
    token = torch.zeros(selector.config.fitness.token_dim)
    with pytest.raises(InvalidInputError, match="Cannot write the new model's token into .*tokens.*not writable"):
        selector.add_model("org/c", token=token, save_directory=folder)
    assert selector.model_ids == ["org/a", "org/b"]
    read_only(folder)

    def fail(*args, **kwargs):
        raise AssertionError("probe work ran before the destination was checked")
    monkeypatch.setattr(SpiderSelector, "cold_start_token", fail)
    code = main(["add-model", "org/c", "--selector", str(folder), "--cold-start", "bundled:fashion-mnist"])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "Traceback" not in err
