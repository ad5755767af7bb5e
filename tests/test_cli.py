import json

import pytest
from conftest import HUB_IMAGE_ZOO, make_label_selector

from hf_spider.cli import main

ZOO = HUB_IMAGE_ZOO


@pytest.fixture(scope="module")
def label_selector(tmp_path_factory):
    """A label-name selector over real Hub ids (tokens from a planted problem; only the plumbing is tested)."""
    return make_label_selector(tmp_path_factory.mktemp("sel") / "hub-image")


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


# --- help, exit codes, card and demo --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["rank"], ["tokenize"], ["info"], ["card"], ["card", "dataset"], ["demo"]])
def test_help_explains_with_examples_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "examples:" in out and "hf-spider " in out.split("examples:")[1]
    assert "exit codes:" in out and "2    user mistake" in out and "3    the Hub could not be reached" in out


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rank"])  # missing DATASET
    assert exit_info.value.code == 2 and "the following arguments are required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["card", "model", "x"])  # only `dataset` cards exist
    assert "invalid choice" in capsys.readouterr().err


def test_rank_json_has_no_progress_noise(label_selector, capsys):
    assert main(["rank", "bundled:fashion-mnist", "--selector", str(label_selector), "--json",
                 "--token-source", "mirror"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout is pure JSON
    assert "it/s" not in captured.err and "examples/s" not in captured.err
    import datasets

    assert datasets.is_progress_bar_enabled()  # restored after the command


def test_card_dataset_json_dry_run(label_selector, tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "ds"
    for k, label in enumerate(["cat", "dog"]):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (100 * k, i, 0)).save(root / label / f"{i}.png")
    (root / "README.md").write_text("---\nlicense: mit\n---\n# ds\n")
    assert main(["card", "dataset", str(root), "--selector", str(label_selector), "--token-source", "mirror",
                 "--json", "--dry-run", "--top-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] is None and out["changed"] and len(out["ranking"]["models"]) == 2
    assert out["card"].startswith("---\nlicense: mit\n---\n# ds\n") and "<!-- hf-spider:start -->" in out["card"]
    assert (root / "README.md").read_text() == "---\nlicense: mit\n---\n# ds\n"


def test_demo_launches_the_space_locally(label_selector, monkeypatch, capsys):
    gradio = pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'gradio>=6,<7'")
    launched = {}
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs, app=self))
    assert main(["demo", "--port", "7999", "--image-selector", str(label_selector)]) == 0
    assert launched["server_port"] == 7999 and launched["server_name"] == "127.0.0.1" and launched["share"] is False
    assert isinstance(launched["app"], gradio.Blocks) and "127.0.0.1:7999" in capsys.readouterr().err


def test_demo_missing_app_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the demo needs gradio")
    assert main(["demo", "--app", str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert "examples/space" in err and len(err.strip().splitlines()) == 1


def test_bench_runs_a_repository_benchmark(capfd, monkeypatch, tmp_path):
    from hf_spider import cli

    assert main(["bench", "estimators", "--quick", "--skip", "nleep,linear_probe,hscore,reg_hscore"]) == 0
    out = capfd.readouterr().out
    assert "| logme |" in out and "N=1k D=384" in out
    monkeypatch.setattr(cli, "SPACE_LOGIC", tmp_path / "examples" / "space" / "logic.py")  # not a checkout
    assert main(["bench", "hubzoo"]) == 2
    assert "run from a checkout" in capfd.readouterr().err


def test_add_model_updates_a_selector_folder(text_zoo, tmp_path, capsys):
    """`hf-spider add-model`: probe with a labelled dataset, learn the token, update zoo.json in place."""
    from conftest import MINILM
    from synthetic import planted_tasks

    from hf_spider import FitnessConfig, SelectorConfig, SpiderSelector, TrainingConfig

    zoo = [str(p) for p in text_zoo[:3]]
    config = SelectorConfig(name="t/cli-add", modality="text", task_encoder=MINILM, shots_per_class=6,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    SpiderSelector.train(planted_tasks(8, num_models=3, task_dim=384), config=config, zoo=zoo,
                         training=TrainingConfig(epochs=1), verbose=False).save_pretrained(tmp_path / "sel")
    from conftest import text_dataset

    text_dataset(6).save_to_disk(str(tmp_path / "probe"))  # a probe dataset on disk, as a user would pass it
    code = main(["add-model", str(text_zoo[3]), "--selector", str(tmp_path / "sel"), "--local-models",
                 "--probe-dataset",
                 "bundled:nope", "--json"])
    assert code == 2 and "No bundled dataset" in capsys.readouterr().err
    code = main(["add-model", str(text_zoo[3]), "--selector", str(tmp_path / "sel"), "--local-models",
                 "--probe-dataset",
                 str(tmp_path / "probe"), "--estimator", "logme", "--estimator", "hscore", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["zoo_size"] == 4 and out["probe_tasks"] == 1
    reloaded = SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror", local_models=True)
    assert reloaded.model_ids[-1] == str(text_zoo[3])
    code = main(["add-model", str(text_zoo[3]), "--selector", str(tmp_path / "sel"), "--local-models", "--json"])
    assert code == 2 and "--probe-dataset" in capsys.readouterr().err  # neither way to place it: refused


def test_rank_rerank_with_unreachable_zoo_models_says_use_rerank_0(capsys, monkeypatch):
    # the bundled SpiderBench selector's zoo lives in a benchmark checkout: re-ranking must fail with the way out
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # fail fast instead of retrying an unreachable Hub
    code = main(["rank", "bundled:fashion-mnist", "--selector", "bundled:spiderbench-image", "--rerank", "1",
                 "--quiet"])
    assert code == 3  # offline: the Hub could not be reached, and the message names the way out
    assert "--rerank 0" in capsys.readouterr().err
