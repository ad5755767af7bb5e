"""Against a real Hub-protocol server: olah serving local git repos of a small zoo and a selector, offline.

huggingface_hub's and Transformers' real HTTP code paths run in client subprocesses (``HF_ENDPOINT`` is read at
import time). The zoo has two selector commits: S1 (zoo of 2 models) and S2 at ``main`` (3 models; tiny-text-2 has no
token in its repo, so its token comes from the selector's mirror). Faults: the server stopped mid-run, a token 404,
a revision that no longer exists (through ``RevisionGate``: olah answers 500 there, the Hub 404), offline mode
with and without a cache. After each, the HF cache holds no half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import MINILM
from hubserver import (
    OlahServer,
    RevisionGate,
    cache_problems,
    client_env,
    commit_all,
    find_olah,
    git,
    run_client,
)
from synthetic import planted_tasks

from hf_spider import FitnessConfig, SelectorConfig, SpiderSelector, TrainingConfig
from hf_spider.tokens import TOKEN_FILENAME

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed (apt-get install git)"),
    pytest.mark.skipif(find_olah() is None, reason="olah is not installed: `python3 -m venv .cache/olah-venv && "
                       ".cache/olah-venv/bin/pip install olah==0.5.4` (or pip install it here, or set HF_SPIDER_OLAH "
                       "to an olah-cli)"),
]

ORG = "test-org"
SELECTOR = f"{ORG}/spider-text"
MODELS = [f"{ORG}/tiny-text-{i}" for i in range(3)]
TASK_DIM = 384


def _train(zoo: list[str], seed: int) -> SpiderSelector:
    tasks = planted_tasks(30, num_models=len(zoo), task_dim=TASK_DIM, seed=seed)
    config = SelectorConfig(name=SELECTOR, modality="text", task_encoder=MINILM, shots_per_class=4,
                            fitness=FitnessConfig(task_dim=TASK_DIM, token_dim=16, num_heads=2, num_layers=1))
    return SpiderSelector.train(tasks, config=config, zoo=zoo, training=TrainingConfig(epochs=5, patience=5),
                                verbose=False)


def _publish(selector: SpiderSelector, mirrors: Path, *, with_token: list[str], message: str) -> str:
    """Write tokens into the model repos in ``with_token``, pin every zoo entry to its repo's commit, commit the
    selector repo; returns the selector's commit sha."""
    revisions = {}
    for model_id in selector.model_ids:
        repo = mirrors / "models" / model_id
        if model_id in with_token:
            selector.write_token(model_id, repo=str(repo))
            revisions[model_id] = commit_all(repo, f"{message}: token")
        else:
            revisions[model_id] = git(repo, "rev-parse", "HEAD")
    selector.zoo = [dataclasses.replace(e, revision=revisions[e.model_id]) for e in selector.zoo]
    sel_repo = mirrors / "models" / SELECTOR
    if sel_repo.exists():  # a new version replaces every file, as a push would
        for path in sel_repo.iterdir():
            if path.name != ".git":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    selector.save_pretrained(sel_repo)
    return commit_all(sel_repo, message)


def _dead_commit(repo: Path) -> str:
    """A commit that existed on a branch which was then deleted and garbage-collected."""
    git(repo, "checkout", "-q", "-b", "doomed")
    (repo / "doomed.txt").write_text("gone soon\n")
    sha = commit_all(repo, "doomed")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "doomed")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    gone = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, capture_output=True)
    assert gone.returncode != 0
    return sha


@pytest.fixture(scope="module")
def hubzoo(tmp_path_factory, text_zoo):
    root = tmp_path_factory.mktemp("hubzoo")
    mirrors = root / "mirrors"
    base = {}
    for model_id, folder in zip(MODELS, text_zoo):
        shutil.copytree(folder, mirrors / "models" / model_id)
        base[model_id] = commit_all(mirrors / "models" / model_id, "init")
    old = _train(MODELS[:2], seed=1)
    s1 = _publish(old, mirrors, with_token=MODELS[:2], message="zoo v1")
    new = _train(MODELS, seed=2)
    s2 = _publish(new, mirrors, with_token=MODELS[:2], message="zoo v2")
    dead_selector = _dead_commit(mirrors / "models" / SELECTOR)
    dead_model = _dead_commit(mirrors / "models" / MODELS[0])
    info = {
        "s1": s1, "s2": s2, "dead_selector": dead_selector, "dead_model": dead_model,
        "old_zoo": [dataclasses.asdict(e) for e in old.zoo], "new_zoo": [dataclasses.asdict(e) for e in new.zoo],
    }
    server = OlahServer(mirrors, root / "olah").start(probe_repo=SELECTOR)
    yield {"root": root, "mirrors": mirrors, "server": server, "info": info, "base": base}
    server.stop()


def _homes_are_clean(*homes: Path) -> None:
    for home in homes:
        assert cache_problems(home) == []


def online_body(s1: str) -> str:
    """Client code: load at main and at the old commit ``s1``, rank a dataset and a fixed task, load the top model."""
    return f"""
from conftest import text_dataset
from hf_spider import SpiderSelector
from hf_spider.tokens import TaskToken, token_sha256
def fixed_task():  # a task token without the task encoder: ranking alone never touches the network
    import torch
    return TaskToken(torch.randn(3, {TASK_DIM}, generator=torch.Generator().manual_seed(0)), ["a", "b", "c"], "x")
def load(**kw):
    sel = SpiderSelector.from_pretrained({SELECTOR!r}, **kw)
    return {{"revision": sel.revision, "ids": sel.model_ids, "revisions": [e.revision for e in sel.zoo],
            "token_sha": [token_sha256(t) for t in sel.model_tokens]}}
def rank_and_load(dataset=True, **kw):
    sel = SpiderSelector.from_pretrained({SELECTOR!r}, **kw)
    ranking = sel.rank(text_dataset(), verbose=False) if dataset else sel.rank_task(fixed_task())
    model = ranking[0].load()
    return {{"revision": sel.revision, "top": ranking[0].model_id, "top_revision": ranking[0].revision,
            "labels": model.config.num_labels, "scores": [m.score for m in ranking],
            "ids": [m.model_id for m in ranking]}}
record("main", load)
record("pinned", lambda: load(revision={s1!r}))
record("rank", rank_and_load)
record("rank_fixed", lambda: rank_and_load(dataset=False))
"""


@pytest.fixture(scope="module")
def online(hubzoo):
    """One online client run; its HF cache is reused by the offline test."""
    home = hubzoo["root"] / "home-online"
    body = online_body(hubzoo["info"]["s1"]) + 'record("model_only", lambda: load(token_source="model"))\n'
    return run_client(body, client_env(hubzoo["server"].url, home)), home


def test_from_pretrained_tokens_revisions_and_load_through_olah(hubzoo, online):
    info, (out, home) = hubzoo["info"], online
    new = {e["model_id"]: e for e in info["new_zoo"]}
    main = out["main"]["ok"]
    assert main["revision"] == info["s2"] and main["ids"] == MODELS
    assert main["revisions"] == [new[m]["revision"] for m in MODELS]
    assert main["token_sha"] == [new[m]["token_sha256"] for m in MODELS]

    pinned = out["pinned"]["ok"]  # the old selector commit gives the old zoo and the old tokens
    assert pinned["revision"] == info["s1"] and pinned["ids"] == MODELS[:2]
    assert pinned["token_sha"] == [e["token_sha256"] for e in info["old_zoo"]]
    assert pinned["revisions"] == [e["revision"] for e in info["old_zoo"]] != main["revisions"][:2]

    ranked = out["rank"]["ok"]
    assert sorted(ranked["ids"]) == MODELS and ranked["labels"] == 3
    assert ranked["top_revision"] == new[ranked["top"]]["revision"]

    # tiny-text-2 has no token in its repo (a 404 at its pinned sha): "model" refuses, naming the fix.
    err = out["model_only"]
    assert err["error"] == "ArtifactError" and MODELS[2] in err["message"] and "token_source='auto'" in err["message"]

    # The tokens of tiny-text-0/1 came from their own repos, at the pinned revisions, through the HF cache.
    for model_id in MODELS[:2]:
        cached = home / "hub" / f"models--{model_id.replace('/', '--')}" / "snapshots" / new[model_id]["revision"]
        assert (cached / TOKEN_FILENAME).is_file()
    _homes_are_clean(home)


def test_offline_with_and_without_cache(hubzoo, online):
    """After one online run, HF_HUB_OFFLINE=1 loads (at main and at a pinned sha), ranks and loads the model from
    the cache alone; with an empty cache it raises HubUnreachableError and leaves the cache empty."""
    (first, home), empty = online, hubzoo["root"] / "empty-cache"
    empty.mkdir()
    body = online_body(hubzoo["info"]["s1"]).replace('record("rank", rank_and_load)', "")  # no task encoder
    body += f"""
record("no_cache", lambda: SpiderSelector.from_pretrained({SELECTOR!r}, cache_dir={str(empty)!r}))
"""
    out = run_client(body, client_env(hubzoo["server"].url, home, HF_HUB_OFFLINE="1"))
    for case in ("main", "pinned", "rank_fixed"):
        assert out[case]["ok"] == first[case]["ok"]
    err = out["no_cache"]
    assert err["error"] == "HubUnreachableError" and "not in the local cache" in err["message"]
    assert "HfSpiderError" in err["mro"]
    assert [p for p in empty.rglob("*") if p.is_file()] == []
    _homes_are_clean(home, empty)


def test_server_stopped_mid_run_falls_back_to_the_mirror(hubzoo, tmp_path):
    """The server dies after the selector and the first token were downloaded: the remaining tokens come from the
    selector's mirror (the documented fallback), the ranking is the same, and the cache holds only whole files."""
    info = hubzoo["info"]
    server = OlahServer(hubzoo["mirrors"], tmp_path / "olah").start(probe_repo=SELECTOR)
    home = tmp_path / "home"
    body = f"""
import os, signal, socket, time
import torch
from hf_spider import SpiderSelector, hub
from hf_spider.tokens import TaskToken, token_sha256
task = TaskToken(torch.randn(3, {TASK_DIM}), ["a", "b", "c"], "x")
real_fetch, calls = hub.fetch_model_token, []
def fetch_then_kill(*args, **kwargs):
    calls.append(args[0])
    data = real_fetch(*args, **kwargs)
    if len(calls) == 1:
        os.kill({server.proc.pid}, signal.SIGTERM)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", {server.port}), timeout=0.2).close()
                time.sleep(0.1)
            except OSError:
                break
    return data
hub.fetch_model_token = fetch_then_kill
def go():
    sel = SpiderSelector.from_pretrained({SELECTOR!r})
    ranking = sel.rank_task(task)
    return {{"calls": list(calls), "token_sha": [token_sha256(t) for t in sel.model_tokens],
            "top": ranking[0].model_id}}
record("run", go)
record("load", lambda: SpiderSelector.from_pretrained({SELECTOR!r}).model_ids)
record("load_model", lambda: SpiderSelector.from_pretrained({SELECTOR!r}).rank_task(task)[0].load())
record("fresh_cache", lambda: SpiderSelector.from_pretrained({SELECTOR!r}, cache_dir={str(tmp_path / "fresh")!r}))
"""
    try:
        out = run_client(body, client_env(server.url, home))
    finally:
        server.stop()
    run = out["run"]["ok"]
    # tiny-text-0's token from its repo, tiny-text-1's fetch fails, tiny-text-2 is not even tried: mirror copies.
    assert run["calls"] == MODELS[:2], out
    assert run["token_sha"] == [e["token_sha256"] for e in info["new_zoo"]]
    assert "reading the remaining tokens from the selector's mirror" in out["_stderr"]
    assert out["load"]["ok"] == MODELS  # the cached selector is used while the Hub is down
    err = out["load_model"]  # the model weights were never downloaded: the error names the model and says why
    assert err["error"] == "HubUnreachableError" and "unreachable" in err["message"]
    assert any(repr(m) in err["message"] for m in MODELS) and "HfSpiderError" in err["mro"]
    err = out["fresh_cache"]
    assert err["error"] == "HubUnreachableError" and "cannot be reached" in err["message"]
    assert not (tmp_path / "fresh").exists() or [p for p in (tmp_path / "fresh").rglob("*") if p.is_file()] == []
    _homes_are_clean(home)


def test_revision_that_no_longer_exists(hubzoo, tmp_path):
    """A selector commit and a model commit that were deleted, and a zoo model that does not exist: clear errors,
    or the mirror copy for the token."""
    info = hubzoo["info"]
    gate = RevisionGate(hubzoo["server"].url, hubzoo["mirrors"]).start()
    home = tmp_path / "home"
    zoo = info["new_zoo"]
    body = f"""
from pathlib import Path
from hf_spider import SpiderSelector, hub, RankedModel
from hf_spider.tokens import token_sha256
entries = [hub.ZooEntry(**e) for e in {zoo!r}]
entries[0] = hub.ZooEntry(**{{**{zoo[0]!r}, "revision": {info["dead_model"]!r}}})
entries[2] = hub.ZooEntry(**{{**{zoo[2]!r}, "model_id": "test-org/ghost", "revision": None}})  # an unknown model
def tokens(source):
    folder, _ = hub.snapshot_selector({SELECTOR!r}, revision={info["s2"]!r})
    return [token_sha256(t) for t in hub.load_zoo_tokens(entries, folder, dim=16, token_source=source)]
record("dead_selector", lambda: SpiderSelector.from_pretrained({SELECTOR!r}, revision={info["dead_selector"]!r}))
record("dead_branch", lambda: SpiderSelector.from_pretrained({SELECTOR!r}, revision="doomed"))
record("auto", lambda: tokens("auto"))
record("model", lambda: tokens("model"))
record("load", lambda: RankedModel(rank=1, model_id={MODELS[0]!r}, revision={info["dead_model"]!r}, score=0.0,
                                   task_type="text-classification").load())
record("ghost", lambda: RankedModel(rank=1, model_id="test-org/ghost", revision=None, score=0.0,
                                    task_type="text-classification").load())
"""
    try:
        out = run_client(body, client_env(gate.url, home))
    finally:
        gate.stop()
    for case in ("dead_selector", "dead_branch"):
        err = out[case]
        assert err["error"] == "ArtifactError", err
        assert "does not exist" in err["message"] and "list_repo_refs" in err["message"]
    assert out["auto"]["ok"] == [e["token_sha256"] for e in zoo]  # the mirror copy stands in
    assert "RevisionNotFoundError" in out["_stderr"]
    err = out["model"]
    assert err["error"] == "ArtifactError" and info["dead_model"] in err["message"]
    err = out["load"]  # Transformers' OSError, wrapped: the model, the revision and the fix
    assert err["error"] in ("ArtifactError", "RevisionNotFoundError") and info["dead_model"] in err["message"]
    assert MODELS[0] in err["message"]
    assert "test-org/ghost" in out["_stderr"]  # the unknown model's token: a warning, then the mirror copy
    err = out["ghost"]
    assert err["error"] in ("ArtifactError", "RepositoryNotFoundError") and "test-org/ghost" in err["message"]
    assert not any((home / "hub").rglob(f"*{info['dead_selector']}*"))
    _homes_are_clean(home)


def test_server_answers_like_the_hub_for_the_fixture(hubzoo):
    """Guards the fixture: the olah quirks the tests rely on (see HUB_TESTING.md)."""
    import urllib.request

    url = hubzoo["server"].url
    with urllib.request.urlopen(f"{url}/api/models/{SELECTOR}/revision/{hubzoo['info']['s1']}") as r:
        assert json.loads(r.read())["sha"] == hubzoo["info"]["s1"]
