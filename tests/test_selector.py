"""End to end: train a selector on a planted problem, save it, load it back (folder and offline HF cache), rank a
real `datasets.Dataset` with a real task encoder, and load the top model with Transformers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import MINILM, image_dataset, make_tiny_image_model, text_dataset
from synthetic import planted_tasks

from hf_spider import (
    ArtifactError,
    FitnessConfig,
    InvalidInputError,
    SelectorConfig,
    SpiderSelector,
    TokenIntegrityError,
    TrainingConfig,
    ZooError,
)
from hf_spider.cards import TOKEN_END, TOKEN_START
from hf_spider.tokens import TOKEN_FILENAME

TASK_DIM = 384  # all-MiniLM-L6-v2


def _train(zoo: list[str], name="test-org/spider-text", epochs=40) -> SpiderSelector:
    tasks = planted_tasks(60, num_models=len(zoo), task_dim=TASK_DIM)
    config = SelectorConfig(name=name, modality="text", task_encoder=MINILM, shots_per_class=4,
                            fitness=FitnessConfig(task_dim=TASK_DIM, token_dim=16, num_heads=2, num_layers=1))
    return SpiderSelector.train(tasks, config=config, zoo=zoo, training=TrainingConfig(epochs=epochs, patience=10),
                                verbose=False)


@pytest.fixture(scope="module")
def trained(text_zoo):
    return _train([str(p) for p in text_zoo])


def test_round_trip_folder_and_rank_end_to_end(trained, tmp_path):
    trained.save_pretrained(tmp_path / "sel")
    files = sorted(str(p.relative_to(tmp_path / "sel")) for p in (tmp_path / "sel").rglob("*") if p.is_file())
    assert {"config.json", "model.safetensors", "zoo.json", "README.md"} <= set(files)
    assert sum(f.startswith("tokens/") for f in files) == 4

    loaded = SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True)
    assert torch.equal(loaded.model_tokens, trained.model_tokens)
    task = trained.task_token(text_dataset())
    assert task.prototypes.shape == (3, TASK_DIM)
    assert list(loaded.score(task)) == pytest.approx(list(trained.score(task)), abs=1e-6)

    ranking = loaded.rank(text_dataset(), top_k=3, verbose=False)
    assert len(ranking) == 3 and [m.rank for m in ranking] == [1, 2, 3]
    assert ranking[0].score >= ranking[1].score >= ranking[2].score
    assert ranking[0].model_id in trained.model_ids
    assert "| rank | model |" in ranking.to_markdown()
    assert list(ranking.to_pandas().columns)[:4] == ["rank", "model_id", "revision", "score"]
    model = ranking[0].load()
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 3 and model.config.id2label[2] == "tech"

    card = (tmp_path / "sel" / "README.md").read_text()
    assert "library_name: hf-spider" in card and "model-spider" in card and "tiny-text-0" in card


def test_image_selector_ranks_image_dataset(tmp_path):
    encoder = make_tiny_image_model(tmp_path / "encoder", seed=0)
    zoo = [str(make_tiny_image_model(tmp_path / f"m{i}", seed=i)) for i in range(3)]
    tasks = planted_tasks(20, num_models=3, task_dim=16)
    config = SelectorConfig(name="t/img", modality="image", task_encoder=str(encoder), shots_per_class=2,
                            fitness=FitnessConfig(task_dim=16, token_dim=8, num_heads=2, num_layers=1))
    selector = SpiderSelector.train(tasks, config=config, zoo=zoo, training=TrainingConfig(epochs=3), verbose=False)
    ranking = selector.rank(image_dataset(), verbose=False)
    assert sorted(m.model_id for m in ranking) == sorted(zoo)
    assert ranking[0].load().config.num_labels == 3
    with pytest.raises(InvalidInputError, match="image models"):
        selector.rank(text_dataset(), verbose=False)


def _fill_cache(cache: Path, repo_id: str, folder: Path, sha: str) -> None:
    """Lay out a folder as huggingface_hub's cache does: models--org--name/{refs/main, snapshots/<sha>/...}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)


def test_from_pretrained_offline_from_prefilled_hf_cache(text_zoo, tmp_path):
    """The zoo and the selector live only in an HF cache, as Hub repos; HF_HUB_OFFLINE=1 must be enough."""
    hub_ids = [f"test-org/tiny-text-{i}" for i in range(len(text_zoo))]
    selector = _train(hub_ids, name="test-org/spider-text")
    cache = tmp_path / "hub"
    for i, (repo_id, folder) in enumerate(zip(hub_ids, text_zoo)):
        staged = tmp_path / "staged" / repo_id
        shutil.copytree(folder, staged)
        if i < 2:  # half the zoo carries its own token; the rest is read from the selector's mirror
            selector.write_token(repo_id, repo=str(staged))
        _fill_cache(cache, repo_id, staged, sha=f"{i:040x}")
    selector.save_pretrained(tmp_path / "sel")
    _fill_cache(cache, "test-org/spider-text", tmp_path / "sel", sha="a" * 40)

    script = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import text_dataset
from hf_spider import SpiderSelector
sel = SpiderSelector.from_pretrained("test-org/spider-text")
ranking = sel.rank(text_dataset(), verbose=False)
model = ranking[0].load()
print(json.dumps({{"revision": sel.revision, "top": ranking[0].model_id, "labels": model.config.num_labels,
                  "ids": [m.model_id for m in ranking]}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["revision"] == "a" * 40
    assert sorted(result["ids"]) == sorted(hub_ids) and result["labels"] == 3


def test_write_token_is_idempotent_and_keeps_the_card(trained, text_zoo, tmp_path):
    repo = tmp_path / "model"
    shutil.copytree(text_zoo[0], repo)
    model_id = str(text_zoo[0])
    trained.write_token(model_id, repo=str(repo))
    first = (repo / "README.md").read_text()
    trained.write_token(model_id, repo=str(repo))
    second = (repo / "README.md").read_text()
    assert first == second
    assert first.count(TOKEN_START) == 1 and first.count(TOKEN_END) == 1
    assert "license: apache-2.0" in first and "# tiny-0" in first and "A tiny test model." in first
    assert "spider:" in first and trained.zoo[0].token_sha256 in first
    from hf_spider.tokens import parse_token

    assert (repo / TOKEN_FILENAME).read_bytes() == trained.token_file(model_id)  # same token, same bytes
    token, meta = parse_token((repo / TOKEN_FILENAME).read_bytes(), expected_sha256=trained.zoo[0].token_sha256)
    assert torch.equal(token, trained.model_tokens[0])
    assert meta["selector"] == "test-org/spider-text" and meta["dim"] == "16" and meta["format_version"] == "1"


def test_tampered_token_is_refused(trained, tmp_path):
    trained.save_pretrained(tmp_path / "sel")
    entry = trained.zoo[1]
    from hf_spider.tokens import token_bytes

    forged = token_bytes(trained.model_tokens[1] + 0.01, model_id=entry.model_id, selector=trained.config.name)
    (tmp_path / "sel" / entry.mirror).write_bytes(forged)
    with pytest.raises(TokenIntegrityError, match="does not match zoo.json"):
        SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True, token_source="mirror")
    (tmp_path / "sel" / entry.mirror).write_bytes(forged[:50])
    with pytest.raises(TokenIntegrityError, match="not a valid safetensors"):
        SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True, token_source="mirror")


def test_tampered_token_in_model_repo_falls_back_to_mirror(trained, text_zoo, tmp_path):
    trained.save_pretrained(tmp_path / "sel")
    model_dir = Path(trained.model_ids[0])
    token_path = model_dir / TOKEN_FILENAME
    token_path.parent.mkdir(exist_ok=True)
    token_path.write_bytes(b"\x00" * 64)  # garbage in the model repo: the mirror copy must win
    try:
        loaded = SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True)
        assert torch.equal(loaded.model_tokens, trained.model_tokens)
        with pytest.raises(TokenIntegrityError):
            SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True, token_source="model")
    finally:
        shutil.rmtree(token_path.parent)


def test_zoo_json_path_escape_and_bad_config_are_refused(trained, tmp_path):
    trained.save_pretrained(tmp_path / "sel")
    zoo_path = tmp_path / "sel" / "zoo.json"
    zoo = json.loads(zoo_path.read_text())
    zoo["models"][0]["mirror"] = "../../etc/passwd"
    zoo_path.write_text(json.dumps(zoo))
    with pytest.raises(ZooError, match="tokens/"):
        SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True)
    trained.save_pretrained(tmp_path / "sel")
    cfg = json.loads((tmp_path / "sel" / "config.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "sel" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="format_version 99"):
        SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True)


def test_rank_argument_errors(trained):
    with pytest.raises(InvalidInputError, match="without the re-ranking stage"):
        trained.rank(text_dataset(), rerank=2)
    with pytest.raises(InvalidInputError, match="rerank must be"):
        trained.rank(text_dataset(), rerank=-1)
    with pytest.raises(InvalidInputError, match="top_k"):
        trained.rank(text_dataset(), top_k=0)
    with pytest.raises(InvalidInputError, match="available columns"):
        trained.rank(text_dataset(), label_column="nope")
    with pytest.raises(ZooError, match="not in this selector's zoo"):
        trained.write_token("nobody/nothing")


def test_push_to_hub_is_one_upload_of_the_saved_folder(trained, monkeypatch):
    """push_to_hub goes through huggingface_hub's mixin: create_repo, then one upload_folder commit."""
    from huggingface_hub import HfApi

    calls = {}

    def fake_create_repo(self, repo_id, **kwargs):
        from huggingface_hub.hf_api import RepoUrl

        calls["create_repo"] = repo_id
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def fake_upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload"] = (repo_id, sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*")
                                           if p.is_file()))
        calls["config"] = json.loads((Path(folder_path) / "config.json").read_text())
        return "https://huggingface.co/test-org/spider-text/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    url = trained.push_to_hub("test-org/spider-text")
    assert url.endswith("/commit/abc") and calls["create_repo"] == "test-org/spider-text"
    repo_id, files = calls["upload"]
    assert {"config.json", "model.safetensors", "zoo.json", "README.md"} <= set(files)
    assert calls["config"]["name"] == "test-org/spider-text" and calls["config"]["fitness"]["token_dim"] == 16


def test_write_token_to_hub_repo_opens_a_pull_request(trained, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import CommitInfo

    from hf_spider import hub

    seen = {}

    def fake_create_commit(self, repo_id, operations, *, commit_message, create_pr=None, repo_type=None, **kw):
        seen.update(repo_id=repo_id, files={op.path_in_repo: op.path_or_fileobj for op in operations},
                    create_pr=create_pr, repo_type=repo_type)
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/1", commit_message=commit_message,
                          commit_description="", oid="1" * 40, pr_url=f"https://huggingface.co/{repo_id}/discussions/7")

    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(hub, "read_card_text", lambda repo, **kw: "---\nlicense: mit\n---\n# Someone's model\n")
    url = trained.write_token(trained.model_ids[2], repo="someone/their-model", create_pr=True)
    assert url.endswith("/discussions/7") and seen["create_pr"] is True and seen["repo_id"] == "someone/their-model"
    assert set(seen["files"]) == {TOKEN_FILENAME, "README.md"}
    card = seen["files"]["README.md"].decode()
    assert "license: mit" in card and "# Someone's model" in card and card.count(TOKEN_START) == 1
