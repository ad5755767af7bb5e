"""The CLI's promises: fast `--help` (no torch/transformers/datasets), exit 3 with one line whenever the Hub cannot
be reached (every subcommand), modality read from the data and a mismatched selector refused, budgets and fronts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HUB_IMAGE_ZOO, make_label_selector, text_dataset

from hf_spider.cli import main
from hf_spider.data import dataset_modality

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets")
SUBCOMMANDS = ["rank", "tokenize", "add-model", "info", "card", "demo", "bench", "score"]


def _python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_help_imports_no_torch_transformers_or_datasets():
    code = """
import contextlib, io, json, sys
import hf_spider
from hf_spider.cli import main
for argv in [[]] + [[name] for name in sys.argv[1:]]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*argv, "--help"])
        except SystemExit:
            pass
print(json.dumps(sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules)))
"""
    done = _python(code, *SUBCOMMANDS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_lazy_package_keeps_the_public_api():
    import hf_spider

    assert sorted(hf_spider.__all__) == sorted(hf_spider._EXPORTS) and set(hf_spider.__all__) <= set(dir(hf_spider))
    from hf_spider import Ranking, SpiderSelector  # noqa: F401 - resolved on first use
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hf_spider.nope  # noqa: B018


@pytest.fixture(scope="module")
def label_selector(tmp_path_factory):
    return make_label_selector(tmp_path_factory.mktemp("safety") / "hub-image")


OFFLINE_DRIVER = """
import contextlib, io, json, sys, traceback
from hf_spider.cli import main
out = {}
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException:
            code = "raised"
            err.write(traceback.format_exc())
    out[" ".join(argv)] = [code, err.getvalue()]
print(json.dumps(out))
"""


def _offline_commands(selector: str) -> list[list[str]]:
    return [["rank", "org/dataset"], ["rank", "org/dataset", "--selector", selector, "--json"],
            ["rank", "bundled:fashion-mnist", "--selector", "org/sel"],
            ["add-model", "org/new-model", "--selector", selector, "--cold-start", "bundled:fashion-mnist"],
            ["add-model", "org/new-model", "--selector", selector, "--probe-dataset", "org/dataset"],
            ["tokenize", HUB_IMAGE_ZOO[1], "--selector", selector], ["tokenize", "--all", "--selector", "org/sel"],
            ["card", "dataset", "org/dataset"], ["card", "dataset", "org/dataset", "--selector", selector],
            ["score", "--models", HUB_IMAGE_ZOO[1], "--dataset", "bundled:fashion-mnist"], ["info", "org/sel"]]


@pytest.fixture(scope="module")
def offline_runs(label_selector, tmp_path_factory):
    """Every subcommand run once with the Hub unreachable (HF_HUB_OFFLINE=1, an empty HF cache), in one process."""
    home = tmp_path_factory.mktemp("offline-home")
    done = _python(OFFLINE_DRIVER, json.dumps(_offline_commands(str(label_selector))),
                   env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(home), "HF_SPIDER_FEATURES_CACHE": str(home / "f")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("index", range(11))
def test_hub_unreachable_exits_3_with_one_line(offline_runs, label_selector, index):
    argv = " ".join(_offline_commands(str(label_selector))[index])
    code, err = offline_runs[argv]
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line and "s/it]" not in line]
    assert code == 3 and len(lines) == 1 and lines[0].startswith("hf-spider:"), (argv, err)
    assert "unreachable" in lines[0] or "cannot be reached" in lines[0] or "could not be reached" in lines[0]


def test_load_names_the_model_and_says_offline(monkeypatch):
    from huggingface_hub import constants

    from hf_spider.hub import HubUnreachableError
    from hf_spider.ranking import RankedModel

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = RankedModel(rank=1, model_id="org/not-cached-model", revision=None, score=1.0,
                        task_type="image-classification")
    with pytest.raises(HubUnreachableError, match="'org/not-cached-model'.*unreachable.*local folder"):
        model.load()


# --- modality ------------------------------------------------------------------------------------------------


def test_modality_from_features_of_folders_dicts_and_csvs(tmp_path):
    import datasets

    text = text_dataset(2)
    text.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": text}).save_to_disk(str(tmp_path / "saved-dict"))
    (tmp_path / "reviews.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "train.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    assert dataset_modality(str(tmp_path / "saved")) == "text"
    assert dataset_modality(str(tmp_path / "saved-dict")) == "text"
    assert dataset_modality(datasets.DatasetDict({"train": text})) == "text"
    assert dataset_modality(str(tmp_path / "reviews.csv")) == "text"
    assert dataset_modality(str(tmp_path / "csvs")) == "text"
    from hf_spider.bundled import bundled_dataset

    assert dataset_modality(bundled_dataset("fashion-mnist")) == "image"


def test_text_folder_never_ranked_against_the_image_zoo(tmp_path, label_selector, capsys):
    text_dataset(4).save_to_disk(str(tmp_path / "saved"))
    capsys.readouterr()  # the save's own progress bar
    assert main(["rank", str(tmp_path / "saved"), "--selector", str(label_selector), "--json",
                 "--token-source", "mirror"]) == 2
    err = capsys.readouterr().err
    assert "ranks image models" in err and "holds text inputs" in err and len(err.strip().splitlines()) == 1


def test_text_selector_refused_on_an_image_dataset(capsys):
    assert main(["rank", "bundled:fashion-mnist", "--selector", "bundled:hubzoo-text", "--json"]) == 2
    err = capsys.readouterr().err
    assert "'hf-spider/hubzoo-text' ranks text models" in err and "holds image inputs" in err


def test_library_refuses_a_mismatched_label_name_selector():
    from hf_spider import InvalidInputError, SpiderSelector
    from hf_spider.bundled import bundled_dataset, bundled_selector

    selector = SpiderSelector.from_pretrained(bundled_selector("hubzoo-text"), token_source="mirror")
    with pytest.raises(InvalidInputError, match="ranks text models.*image inputs"):
        selector.rank(bundled_dataset("fashion-mnist"))


# --- budget and front ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sized_selector(tmp_path_factory):
    """The label selector with parameter counts recorded in zoo.json (ViT-B 86.6M, ResNet-50 25.6M, ConvNeXt-T
    28.6M: the models' own counts)."""
    folder = make_label_selector(tmp_path_factory.mktemp("sized") / "sel")
    zoo = json.loads((folder / "zoo.json").read_text())
    sizes = {"google/vit-base-patch16-224": 86_567_656, "microsoft/resnet-50": 25_557_032,
             "facebook/convnext-tiny-224": 28_589_128}
    for entry in zoo["models"]:
        entry["num_parameters"] = sizes[entry["model_id"]]
    (folder / "zoo.json").write_text(json.dumps(zoo))
    return folder


def _rank(selector) -> list[str]:
    return ["rank", "bundled:fashion-mnist", "--selector", str(selector), "--token-source", "mirror"]


def test_max_params_and_pareto(sized_selector, capsys):
    assert main([*_rank(sized_selector), "--json",
                 "--max-params", "30M"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {m["model_id"] for m in out["models"]} == {"microsoft/resnet-50", "facebook/convnext-tiny-224"}
    assert all(m["num_parameters"] <= 30_000_000 for m in out["models"])
    assert any("at most 30.0M" in note for note in out["notes"])
    assert main([*_rank(sized_selector), "--json", "--pareto"]) == 0
    front = json.loads(capsys.readouterr().out)["models"]
    assert front and front[0]["rank"] == 1  # the best-ranked model is always on the front
    scores = {m["model_id"]: (m["score"], m["num_parameters"]) for m in front}
    for a, (score_a, size_a) in scores.items():  # nobody on the front beats another on both
        assert not any(s >= score_a and n <= size_a and (s, n) != (score_a, size_a) for s, n in scores.values())
    assert main([*_rank(sized_selector), "--max-params", "lots"]) == 2
    assert "parameter budget" in capsys.readouterr().err


def test_table_says_what_columns_are(sized_selector, capsys):
    assert main([*_rank(sized_selector), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "parameters" in captured.out and "86.6M" in captured.out and "score: the selector's score" in captured.out
    assert "does not predict accuracy" in captured.out
    assert "Loading weights" not in captured.err and "it/s" not in captured.err


def test_the_library_never_imports_the_cli():
    spellings = ("from .cli import", "from hf_spider.cli", "import hf_spider.cli", "from . import cli")
    offenders = [path.name for path in (ROOT / "hf_spider").rglob("*.py")
                 if path.name != "cli.py" and any(s in path.read_text(encoding="utf-8") for s in spellings)]
    assert offenders == []


def test_mirrors_shown_once_while_the_zoo_keeps_them(tmp_path, capsys):
    from hf_spider import SpiderSelector

    zoo = ["microsoft/resnet-50", "someone/resnet-50", "google/vit-base-patch16-224"]
    folder = make_label_selector(tmp_path / "sel", zoo=zoo)
    assert main([*_rank(folder), "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert len(models) == 2 and [m["rank"] for m in models] == [1, 2]
    merged = next(m for m in models if m["model_id"].endswith("/resnet-50"))
    assert {merged["model_id"], *merged["aliases"]} == set(zoo[:2])
    assert len(SpiderSelector.from_pretrained(folder, token_source="mirror").zoo) == 3


def test_markdown_output_is_quiet_and_keeps_the_notes(sized_selector, capfd):
    assert main([*_rank(sized_selector), "--markdown"]) == 0
    captured = capfd.readouterr()
    assert "| predicted accuracy (80% interval) | parameters |" in captured.out
    assert "> **Note:**" in captured.out and "does not predict accuracy" in captured.out
    assert "Loading weights" not in captured.err and "it/s" not in captured.err and "Warning" not in captured.err
