"""The dataset-card widget: rendering, byte-exact upserts, a local folder end to end, and the Hub pull-request path."""

import datetime
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import HUB_IMAGE_ZOO, make_label_selector

from hf_spider import RankedModel, Ranking
from hf_spider.cli import main
from hf_spider.errors import ArtifactError
from hf_spider.widget import (
    WIDGET_END,
    WIDGET_START,
    render_widget,
    space_link,
    upsert_widget,
    write_dataset_widget,
)

ZOO = HUB_IMAGE_ZOO
SHA = "0123456789abcdef0123456789abcdef01234567"

# YAML a parser would rewrite (comment, odd indentation, flow list, quotes, trailing spaces, unicode): kept verbatim.
CARD = (
    "---\n"
    "# a comment a YAML dumper would drop\n"
    "license:   mit   \n"
    "tags: [fashion,  'images']\n"
    "pretty_name: \"Fashión  sample\"\n"
    "dataset_info:\n"
    "    features:\n"
    "      - name: image\n"
    "---\n"
    "\n"
    "# My dataset\n"
    "\n"
    "Some text with trailing spaces.   \n"
)


def _ranking(scores: list[float], *, revision: str | None = SHA) -> Ranking:
    models = [RankedModel(rank=i + 1, model_id=m, revision=None, score=s, task_type="image-classification")
              for i, (m, s) in enumerate(zip(ZOO, scores))]
    return Ranking(models, selector="org/spider-vision", selector_revision=revision, dataset="org/ds", seconds=0.1)


def _outside(text: str) -> tuple[str, str]:
    return text[: text.index(WIDGET_START)], text[text.index(WIDGET_END) + len(WIDGET_END):]


def test_render_widget_content():
    import dataclasses

    ranking = _ranking([0.9, 0.5, 0.1])
    ranking.models[0] = dataclasses.replace(ranking.models[0], predicted_accuracy=0.91,
                                            predicted_accuracy_interval=(0.86, 0.94), num_parameters=86_567_656)
    ranking.models[1] = dataclasses.replace(ranking.models[1], aliases=("mirror/resnet-50",))
    ranking.notes = ("ranked from class names only",)
    block = render_widget(ranking, dataset_id="org/ds", date=datetime.date(2026, 11, 28))
    assert block == (
        "## Which model should I fine-tune on this dataset?\n"
        "\n"
        "Ranked by [hf-spider](https://github.com/hf-spider/hf-spider) (Model Spider) with the selector\n"
        "[`org/spider-vision`](https://huggingface.co/org/spider-vision) at revision `0123456789ab`,\n"
        "on 2026-11-28. Predicted accuracy is the fine-tuning accuracy the selector expects, with its 80% interval; "
        "the score\n"
        "only orders the models of one ranking. Fine-tune the top ones to choose.\n"
        "\n"
        "| rank | model | predicted accuracy (80% interval) | parameters | score | load it |\n"
        "|---:|---|---:|---:|---:|---|\n"
        "| 1 | [google/vit-base-patch16-224](https://huggingface.co/google/vit-base-patch16-224) | 91.0% (86-94) | "
        "86.6M | 0.9000 | `AutoModelForImageClassification.from_pretrained(\"google/vit-base-patch16-224\")` |\n"
        "| 2 | [microsoft/resnet-50](https://huggingface.co/microsoft/resnet-50) (also published as "
        "mirror/resnet-50) | n/a | ? | 0.5000 | "
        "`AutoModelForImageClassification.from_pretrained(\"microsoft/resnet-50\")` |\n"
        "| 3 | [facebook/convnext-tiny-224](https://huggingface.co/facebook/convnext-tiny-224) | n/a | ? | 0.1000 | "
        "`AutoModelForImageClassification.from_pretrained(\"facebook/convnext-tiny-224\")` |\n"
        "\n"
        "> **Note:** ranked from class names only\n"
        "\n"
        "[![Rank models for this dataset in the hf-spider Space]"
        "(https://huggingface.co/datasets/huggingface/badges/resolve/main/open-in-hf-spaces-sm.svg)]"
        "(https://huggingface.co/spaces/hf-spider/model-spider?dataset=org/ds)\n"
        "\n"
        "Reproduce: `hf-spider rank org/ds --selector org/spider-vision --revision " + SHA + "`\n"
    )
    no_badge = render_widget(_ranking([0.9, 0.5, 0.1], revision=None), dataset_id=None, date="2026-01-01")
    assert no_badge.count("does not predict accuracy") == 1  # a selector without accuracies says so, once
    assert "spaces/" not in no_badge and "at revision" not in no_badge and "2026-01-01" in no_badge


def test_space_link_quotes_the_id():
    assert space_link("org/my ds", space="me/sp").endswith("/spaces/me/sp?dataset=org/my%20ds")


def test_upsert_keeps_every_byte_outside_the_block():
    first = upsert_widget(CARD, render_widget(_ranking([0.9, 0.5, 0.1]), dataset_id="org/ds", date="2026-11-01"))
    assert first.startswith(CARD)  # appended: the original card is a byte-for-byte prefix
    assert first.count(WIDGET_START) == 1 and first.endswith(WIDGET_END + "\n")
    edited = first + "\n## Citation\n\nAdded by hand after the block.\n"
    second = upsert_widget(edited, render_widget(_ranking([0.2, 0.8, 0.7]), dataset_id="org/ds", date="2026-11-28"))
    assert _outside(second) == _outside(edited)
    assert "2026-11-28" in second and "2026-11-01" not in second and second.count(WIDGET_START) == 1
    assert upsert_widget(second, render_widget(_ranking([0.2, 0.8, 0.7]), dataset_id="org/ds",
                                               date="2026-11-28")) == second  # idempotent
    assert upsert_widget("", "x") == f"{WIDGET_START}\nx\n{WIDGET_END}\n"
    assert upsert_widget("no newline", "x").startswith("no newline\n\n")


def test_unbalanced_markers_are_refused():
    with pytest.raises(ArtifactError, match="expected one pair"):
        upsert_widget(CARD + WIDGET_START + "\n", "x")
    with pytest.raises(ArtifactError, match="expected one pair"):
        upsert_widget(CARD + (WIDGET_START + "\n" + WIDGET_END + "\n") * 2, "x")


# --- a real selector on a local dataset folder, through the CLI -------------------------------------------------


@pytest.fixture(scope="module")
def selector_folder(tmp_path_factory) -> Path:
    return make_label_selector(tmp_path_factory.mktemp("widget_sel") / "hub-image")


@pytest.fixture
def dataset_folder(tmp_path) -> Path:
    """An ImageFolder dataset (one folder per class) with a hand-written card."""
    from PIL import Image

    root = tmp_path / "shoes-and-bags"
    for k, label in enumerate(["bag", "shoe", "sandal"]):
        (root / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * k, 10 * i, 90)).save(root / "train" / label / f"{i}.png")
    (root / "README.md").write_bytes(CARD.encode("utf-8"))
    return root


def test_cli_card_dataset_folder_twice(selector_folder, dataset_folder, capsys):
    readme = dataset_folder / "README.md"
    args = ["card", "dataset", str(dataset_folder), "--selector", str(selector_folder), "--token-source", "mirror",
            "--repo-id", "me/shoes", "--top-k", "2", "--quiet"]
    assert main(args) == 0
    assert "recommendation of 2 models written" in capsys.readouterr().out
    first = readme.read_bytes()
    assert first.startswith(CARD.encode("utf-8"))
    text = first.decode("utf-8")
    assert "test/hub-image" in text and "?dataset=me/shoes" in text and text.count("| [") == 2
    assert datetime.datetime.now(datetime.timezone.utc).date().isoformat() in text

    assert main(args) == 0  # same day, same ranking: nothing to write
    assert "nothing written" in capsys.readouterr().out and readme.read_bytes() == first

    assert main([*args[:-2], "3", "--json"]) == 0  # more models: the block is replaced, the rest untouched
    out = capsys.readouterr().out
    assert '"changed": true' in out
    second = readme.read_bytes().decode("utf-8")
    assert _outside(second)[0] == _outside(text)[0] and second.count("| [") == 3 and second.count(WIDGET_START) == 1


def test_cli_card_dry_run_writes_nothing(selector_folder, dataset_folder, capsys):
    assert main(["card", "dataset", str(dataset_folder), "--selector", str(selector_folder), "--token-source",
                 "mirror", "--dry-run", "--no-badge", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(CARD) and WIDGET_START in out and "spaces/" not in out
    assert (dataset_folder / "README.md").read_text() == CARD


def test_cli_card_user_mistakes(selector_folder, dataset_folder, capsys):
    (dataset_folder / "README.md").write_text(CARD + WIDGET_START + "\n")
    code = main(["card", "dataset", str(dataset_folder), "--selector", str(selector_folder), "--token-source",
                 "mirror", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "markers" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["card", "dataset", "bundled:fashion-mnist", "--selector", str(selector_folder)]) == 2
    assert "no card" in capsys.readouterr().err
    assert main(["card", "dataset", str(dataset_folder / "typo"), "--selector", str(selector_folder)]) == 2
    assert "neither a dataset folder nor a Hub dataset id" in capsys.readouterr().err


# --- a Hub dataset: the new card goes up as a pull request (HfApi mocked, no network) ----------------------------


class _FakeSelector:
    def __init__(self, ranking: Ranking) -> None:
        self.ranking, self.calls = ranking, []

    def rank(self, dataset, **kwargs):
        self.calls.append((dataset, kwargs))
        return self.ranking


def test_hub_dataset_opens_a_pull_request(monkeypatch, tmp_path):
    import huggingface_hub

    hub_card = tmp_path / "hub-README.md"
    hub_card.write_bytes(CARD.encode("utf-8"))
    downloads, commits = [], []

    def fake_download(repo_id, filename, *, repo_type=None, token=None, **kwargs):
        downloads.append((repo_id, filename, repo_type))
        return str(hub_card)

    def fake_create_commit(self, repo_id, operations, *, commit_message, repo_type=None, create_pr=False, **kw):
        ops = [(op.path_in_repo, op.path_or_fileobj) for op in operations]
        commits.append({"repo_id": repo_id, "ops": ops, "repo_type": repo_type, "create_pr": create_pr,
                        "message": commit_message})
        return SimpleNamespace(pr_url=f"https://huggingface.co/datasets/{repo_id}/discussions/7",
                               commit_url="https://huggingface.co/commit")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", fake_create_commit)
    selector = _FakeSelector(_ranking([0.9, 0.5, 0.1]))
    result = write_dataset_widget("org/fashion", selector=selector, top_k=3, date="2026-11-28", verbose=False)

    assert result.target == "https://huggingface.co/datasets/org/fashion/discussions/7"
    assert downloads == [("org/fashion", "README.md", "dataset")]
    assert selector.calls[0][0] == "org/fashion" and selector.calls[0][1]["top_k"] == 3
    (commit,) = commits
    assert commit["repo_type"] == "dataset" and commit["create_pr"] is True and "hf-spider" in commit["message"]
    ((path, data),) = commit["ops"]
    data = data.read() if isinstance(data, io.IOBase) else data
    assert path == "README.md" and data.startswith(CARD.encode("utf-8"))
    assert b"?dataset=org/fashion" in data and b"2026-11-28" in data


def test_hub_dataset_commit_and_unchanged(monkeypatch, tmp_path):
    import huggingface_hub

    block = render_widget(_ranking([0.9, 0.5, 0.1]), dataset_id="org/fashion", date="2026-11-28")
    hub_card = tmp_path / "README.md"
    hub_card.write_text(upsert_widget(CARD, block))
    commits = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(hub_card))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit",
                        lambda self, *a, **k: commits.append(k) or SimpleNamespace(pr_url=None, commit_url="c"))
    same = write_dataset_widget("org/fashion", selector=_FakeSelector(_ranking([0.9, 0.5, 0.1])), date="2026-11-28")
    assert not same.changed and commits == []  # nothing new: no empty pull request
    moved = write_dataset_widget("org/fashion", selector=_FakeSelector(_ranking([0.1, 0.5, 0.9])),
                                 date="2026-11-28", create_pr=False)
    assert moved.changed and moved.target == "c" and commits[0]["create_pr"] is False
