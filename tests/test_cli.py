import json

import pytest
from conftest import MINILM
from synthetic import planted_tasks

from hf_spider import FitnessConfig, SelectorConfig, SpiderSelector, TrainingConfig
from hf_spider.cli import main

ZOO = ["google/vit-base-patch16-224", "microsoft/resnet-50", "facebook/convnext-tiny-224"]


@pytest.fixture(scope="module")
def label_selector(tmp_path_factory):
    """A label-name selector over real Hub ids (tokens from a planted problem; only the plumbing is tested)."""
    config = SelectorConfig(name="test/hub-image", modality="image", task_encoder=MINILM,
                            task_token_kind="label_names", label_prompt="a photo of {}.",
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    selector = SpiderSelector.train(planted_tasks(12, num_models=3, task_dim=384), config=config, zoo=ZOO,
                                    training=TrainingConfig(epochs=2), verbose=False)
    folder = tmp_path_factory.mktemp("sel") / "hub-image"
    selector.save_pretrained(folder)
    return folder


def test_rank_json_on_bundled_dataset(label_selector, capsys):
    code = main(["rank", "bundled:fashion-mnist", "--selector", str(label_selector), "--json",
                 "--token-source", "mirror", "--top-k", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["selector"] == "test/hub-image" and len(out["models"]) == 2
    assert {m["model_id"] for m in out["models"]} <= set(ZOO)
    assert out["models"][0]["score"] >= out["models"][1]["score"]


def test_rank_table_and_markdown(label_selector, capsys):
    assert main(["rank", "bundled:fashion-mnist", "--selector", str(label_selector), "--token-source", "mirror"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "microsoft/resnet-50" in out and "ranking[0].load()" in out
    assert main(["rank", "bundled:fashion-mnist", "--selector", str(label_selector), "--markdown",
                 "--token-source", "mirror"]) == 0
    assert "| rank | model |" in capsys.readouterr().out


def test_user_errors_exit_2_without_traceback(label_selector, capsys):
    code = main(["rank", "bundled:nope", "--selector", str(label_selector)])
    err = capsys.readouterr().err
    assert code == 2 and "No bundled dataset named 'nope'" in err and "Traceback" not in err
    assert main(["info", str(label_selector / "missing")]) in (2, 3)


def test_info_lists_bundled(capsys):
    assert main(["info"]) == 0
    assert "fashion-mnist" in json.loads(capsys.readouterr().out)["bundled_datasets"]


def test_tokenize_into_folder(label_selector, tmp_path, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert main(["tokenize", ZOO[1], "--selector", str(label_selector), "--repo", str(repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {ZOO[1]: str(repo)}
    assert (repo / "spider" / "token.safetensors").is_file()
    assert "Model Spider token" in (repo / "README.md").read_text()
