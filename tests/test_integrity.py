"""Issue 16, items 1-6: concurrent writers lose nothing, a killed save leaves a loadable folder, card writes keep what
they should, and a hostile selector cannot inject code, Markdown or paths, nor make hf-spider unpickle weights."""

from __future__ import annotations

import ast
import json
import os
import random
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synthetic import planted_tasks

from hf_spider import (
    ArtifactError,
    FitnessConfig,
    InvalidInputError,
    RankedModel,
    Ranking,
    SelectorConfig,
    SpiderSelector,
    TrainingConfig,
    ZooError,
)
from hf_spider.cards import TOKEN_END, TOKEN_START, upsert_block, with_token_section
from hf_spider.cli import main
from hf_spider.files import atomic_write_bytes
from hf_spider.widget import WIDGET_END, WIDGET_START, load_code, render_widget, upsert_widget

ROOT = Path(__file__).resolve().parents[1]


def _selector(name: str, zoo: list[str], *, token_dim: int = 8, task_dim: int = 16) -> SpiderSelector:
    config = SelectorConfig(name=name, modality="text", task_encoder="unused",
                            fitness=FitnessConfig(task_dim=task_dim, token_dim=token_dim, num_heads=2, num_layers=1))
    return SpiderSelector.train(planted_tasks(6, num_models=len(zoo), task_dim=task_dim), config=config, zoo=zoo,
                                training=TrainingConfig(epochs=1), verbose=False)


@pytest.fixture(scope="module")
def small() -> SpiderSelector:
    return _selector("org/small", ["org/m0", "org/m1", "org/m2"])


# --- 1. concurrent writers --------------------------------------------------------------------------------------

ADD_FIVE = """
import sys, time, torch
from pathlib import Path
from hf_spider import SpiderSelector
folder, tag, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
selector = SpiderSelector.from_pretrained(folder, token_source="mirror")
Path(f"{go}.{tag}").touch()
while not go.exists():
    time.sleep(0.01)
for i in range(5):
    selector.add_model(f"org/{tag}-{i}", token=torch.full((8,), float(i)), save_directory=folder)
print(len(selector.zoo))
"""


def test_two_processes_adding_models_keep_all_of_them(small, tmp_path):
    """Two processes each add 5 models to one selector folder at the same time: all 10 are kept (before: each
    process wrote its own view of zoo.json, the last writer won and 5 models were lost, both reporting success)."""
    folder = tmp_path / "sel"
    small.save_pretrained(folder)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, "-c", ADD_FIVE, str(folder), tag, str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{tag}").exists() for tag in ("a", "b")) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()  # both loaded: start adding at the same moment
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    loaded = SpiderSelector.from_pretrained(folder, token_source="mirror")  # every token checked by sha256
    added = sorted(m for m in loaded.model_ids if m not in small.model_ids)
    assert added == sorted(f"org/{t}-{i}" for t in "ab" for i in range(5))
    assert loaded.model_ids[:3] == small.model_ids
    for model_id, token in zip(loaded.model_ids[3:], loaded.model_tokens[3:]):
        assert torch.equal(token, torch.full((8,), float(model_id[-1])))
    # the last process to finish saw every model (its in-memory zoo was brought up to date under the lock)
    assert max(int(out.strip().splitlines()[-1]) for out, _ in outs) == 13


def test_write_token_waits_for_the_folder_lock(small, tmp_path):
    """``write_token`` into a folder reads the card under the folder's lock (before: no lock, so a concurrent
    writer's card edit was lost)."""
    import threading

    from hf_spider.files import folder_lock

    repo = tmp_path / "model"
    repo.mkdir()
    (repo / "README.md").write_text("# model\n")
    with folder_lock(repo):
        writer = threading.Thread(target=small.write_token, args=("org/m0",), kwargs={"repo": str(repo)})
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive()  # blocked on the lock
        (repo / "README.md").write_text("# model\n\nEdited by someone holding the lock.\n")
    writer.join(timeout=30)
    card = (repo / "README.md").read_text()
    assert "Edited by someone holding the lock." in card and card.count(TOKEN_START) == 1


# --- 2. crash-safe save_pretrained ------------------------------------------------------------------------------

_MUTATIONS = ("replace", "rename", "unlink", "remove", "rmdir", "fsync")


def _identity(folder: Path):
    """What is loaded from ``folder``: ``(model ids, token dim)``, or the error."""
    try:
        sel = SpiderSelector.from_pretrained(folder, token_source="mirror")
    except Exception as err:  # noqa: BLE001 - any failure to load is the finding
        return f"{type(err).__name__}: {err}"
    return tuple(sel.model_ids), sel.config.fitness.token_dim


def _fork_save(selector: SpiderSelector, folder: Path, crash_at: int | None) -> int:
    """Save ``selector`` over ``folder`` in a forked child that dies like ``kill -9`` (``os._exit``: no cleanup, no
    finally) just before its ``crash_at``-th file-system mutation. Returns the child's exit status."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            count = [0]

            def wrap(fn):
                def crashing(*args, **kwargs):
                    count[0] += 1
                    if count[0] == crash_at:
                        os._exit(137)
                    return fn(*args, **kwargs)
                return crashing

            for name in _MUTATIONS:
                setattr(os, name, wrap(getattr(os, name)))
            try:
                from hf_spider import files
                files._exchange = wrap(files._exchange)
            except (ImportError, AttributeError):
                pass
            selector.save_pretrained(folder)
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_save_pretrained_killed_at_any_step_leaves_old_or_new(tmp_path):
    """A save over an existing selector, killed before each of its file-system steps in turn, always leaves a
    folder that loads as the old selector or the new one (before: killed after the mixin deleted config.json, the
    folder was unloadable: "config.json is missing")."""
    old_sel = _selector("org/old", ["org/a", "org/b", "org/c"], token_dim=8)
    new_sel = _selector("org/new", ["org/x", "org/y"], token_dim=4)  # every file differs, shapes too
    pristine = tmp_path / "pristine"
    old_sel.save_pretrained(pristine)
    (pristine / "NOTES.md").write_text("the user's own file")
    old, new = _identity(pristine), (tuple(new_sel.model_ids), 4)
    folder = tmp_path / "sel"
    outcomes = []
    for crash_at in range(1, 200):
        shutil.rmtree(folder, ignore_errors=True)
        for stale in tmp_path.glob(".sel.*"):
            shutil.rmtree(stale)
        shutil.copytree(pristine, folder)
        code = _fork_save(new_sel, folder, crash_at)
        state = _identity(folder)
        outcomes.append((crash_at, code, "old" if state == old else "new" if state == new else state))
        assert state in (old, new), outcomes[-1]
        if code == 0:  # the save ran to the end: every crash point was tried
            break
    assert code == 0 and state == new and len(outcomes) > 5, outcomes
    assert (folder / "NOTES.md").read_text() == "the user's own file"  # files hf-spider does not own are kept
    assert not (folder / "tokens" / old_sel.zoo[0].mirror.split("/")[1]).exists()  # stale tokens dropped


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_save_pretrained_under_real_sigkill(tmp_path):
    """The same with real ``SIGKILL`` at random moments of a child re-saving two versions in a loop."""
    sel_a = _selector("org/a", ["org/a0", "org/a1", "org/a2"], token_dim=8)
    sel_b = _selector("org/b", ["org/b0", "org/b1"], token_dim=4)
    folder = tmp_path / "sel"
    sel_a.save_pretrained(folder)
    states = {_identity(folder)}
    sel_b.save_pretrained(tmp_path / "b")
    states.add(_identity(tmp_path / "b"))
    rng = random.Random(0)
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    sel_b.save_pretrained(folder)
                    sel_a.save_pretrained(folder)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert _identity(folder) in states


def test_save_pretrained_keeps_a_symlinked_folder_and_its_mode(small, tmp_path):
    real = tmp_path / "real"
    small.save_pretrained(real)
    real.chmod(0o750)
    link = tmp_path / "link"
    link.symlink_to(real)
    small.save_pretrained(link)
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o750
    assert SpiderSelector.from_pretrained(link, token_source="mirror").model_ids == small.model_ids


# --- 3. card writes ---------------------------------------------------------------------------------------------

SAMPLE = ("# Model\n\nHow the hf-spider block looks:\n\n```markdown\n{start}\nan example, not a real block\n{end}\n"
          "```\n\nMore text.\n")


def test_markers_inside_code_fences_are_text():
    """Markers quoted in a fenced code block are not hf-spider's block (before: the block was written into the
    user's code sample)."""
    card = SAMPLE.format(start=WIDGET_START, end=WIDGET_END)
    out = upsert_widget(card, "the real block")
    assert out.startswith(card) and out.endswith(f"{WIDGET_START}\nthe real block\n{WIDGET_END}\n")
    assert upsert_widget(out, "updated") == card + f"\n{WIDGET_START}\nupdated\n{WIDGET_END}\n"
    for fence in ("~~~~", "````"):
        tilde = card.replace("```", fence)
        assert upsert_widget(tilde, "x").startswith(tilde)
    token_card = SAMPLE.format(start=TOKEN_START, end=TOKEN_END)
    out = with_token_section(token_card, selector="org/s", selector_revision=None, dim=8, sha256="0" * 64)
    assert token_card in out and out.count(TOKEN_START) == 2
    assert with_token_section(out, selector="org/s", selector_revision=None, dim=8, sha256="1" * 64).count(
        "1" * 64) == 2  # the real section (and the header) updated; the sample untouched
    with pytest.raises(ValueError, match="markers"):  # a real stray marker outside fences still refused
        upsert_block(token_card + TOKEN_START + "\n", "x", start=TOKEN_START, end=TOKEN_END)


def test_crlf_cards_stay_crlf(small, tmp_path):
    """A CRLF README keeps CRLF through the token section and the dataset widget (before: converted to LF, or
    mixed)."""
    crlf = "---\r\nlicense: mit\r\n---\r\n# Model\r\n\r\nText.\r\n"
    repo = tmp_path / "model"
    repo.mkdir()
    (repo / "README.md").write_bytes(crlf.encode())
    small.write_token("org/m0", repo=str(repo))
    out = (repo / "README.md").read_bytes().decode()
    assert "\n" not in out.replace("\r\n", "") and "license: mit\r\n" in out and "# Model\r\n\r\nText.\r\n" in out
    widget = upsert_widget(crlf, "line 1\nline 2")
    assert widget.startswith(crlf) and "\n" not in widget.replace("\r\n", "")


def test_atomic_writes_keep_the_file_mode(small, tmp_path):
    """Re-writing a file keeps its permission bits; a new file gets 0666 & ~umask (before: always 0600)."""
    path = tmp_path / "f.txt"
    path.write_text("x")
    path.chmod(0o644)
    atomic_write_bytes(path, b"y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == b"y"
    path.chmod(0o640)
    atomic_write_bytes(path, b"z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "new.txt", b"n")
        repo = tmp_path / "model"
        repo.mkdir()
        (repo / "README.md").write_text("# m\n")
        (repo / "README.md").chmod(0o664)
        small.write_token("org/m0", repo=str(repo))
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((repo / "README.md").stat().st_mode) == 0o664
    assert stat.S_IMODE((repo / "spider" / "token.safetensors").stat().st_mode) == 0o644


def test_write_token_keeps_yaml_comments_and_formatting(small, tmp_path):
    """Only the ``spider`` key of the YAML header is written; comments, order and quoting stay (before: the header
    was re-dumped and every comment dropped)."""
    header = ("# Model card metadata — edited by hand\n"
              "license:   apache-2.0   # our licence\n"
              "tags: [a,  'b']\n"
              "spider:\n  selector: org/old\n  dim: 3\n"
              "# trailing comment\n"
              "pipeline_tag: text-classification\n")
    repo = tmp_path / "model"
    repo.mkdir()
    (repo / "README.md").write_text(f"---\n{header}---\n# Model\n")
    small.write_token("org/m0", repo=str(repo))
    card = (repo / "README.md").read_text()
    kept = [line for line in header.splitlines() if not line.startswith(("spider:", "  "))]
    for line in kept:
        assert line + "\n" in card
    import yaml

    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["spider"]["selector"] == "org/small" and meta["spider"]["sha256"] == small.zoo[0].token_sha256
    assert meta["license"] == "apache-2.0" and meta["tags"] == ["a", "b"] and "dim: 3" not in card
    small.write_token("org/m0", repo=str(repo))
    assert (repo / "README.md").read_text() == card  # idempotent


# --- 4. hostile selector: code, Markdown and shell injection ----------------------------------------------------

INJECT = 'x"); __import__("os").system("touch /tmp/pwned") #'


def _save_with(selector: SpiderSelector, folder: Path, *, model_id: str | None = None, name: str | None = None):
    selector.save_pretrained(folder)
    if model_id is not None:
        zoo = json.loads((folder / "zoo.json").read_text())
        zoo["models"][0]["model_id"] = model_id
        (folder / "zoo.json").write_text(json.dumps(zoo))
    if name is not None:
        config = json.loads((folder / "config.json").read_text())
        config["name"] = name
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("model_id", [INJECT, f"org/a{WIDGET_END}", "org/a`b", "org/a|b", "org/a](javascript:x)"])
def test_hostile_zoo_ids_are_refused_at_load(small, tmp_path, model_id):
    """Before: accepted, and written unescaped into cards and the ``from_pretrained("...")`` snippet."""
    folder = _save_with(small, tmp_path / "sel", model_id=model_id)
    with pytest.raises(ZooError, match="model id .* is refused"):
        SpiderSelector.from_pretrained(folder, token_source="mirror")


def test_an_id_holding_a_card_marker_is_refused_even_with_local_models(small, tmp_path):
    folder = _save_with(small, tmp_path / "sel", model_id=f"/data/x{WIDGET_END}")
    with pytest.raises(ZooError, match="HTML comment marker"):
        SpiderSelector.from_pretrained(folder, token_source="mirror", local_models=True)


@pytest.mark.parametrize("name", ["org/x; rm -rf ~", "org/x`id`", "org/x\nforged", "org/x$(id)", WIDGET_END])
def test_hostile_selector_names_are_refused_at_load(small, tmp_path, name):
    """Before: the name went unquoted into the "Reproduce" shell line and the cards."""
    folder = _save_with(small, tmp_path / "sel", name=name)
    with pytest.raises(ArtifactError, match="selector name .* is refused"):
        SpiderSelector.from_pretrained(folder, token_source="mirror")


def test_ids_are_python_literals_and_escaped_markdown_where_written():
    """Defence in depth for rankings built in Python: the snippet is one Python string literal, the table cell and
    link cannot be broken out of, and the shell line parses back to the same arguments."""
    odd = ["/data/my models/a|b`c", INJECT]
    code = load_code(INJECT, "text-classification")
    call = ast.parse(code).body[0].value
    assert isinstance(call, ast.Call) and [ast.literal_eval(a) for a in call.args] == [INJECT]
    models = [RankedModel(rank=i + 1, model_id=m, revision=None, score=0.5, task_type="text-classification")
              for i, m in enumerate(odd)]
    ranking = Ranking(models, selector="org/x; rm -rf ~", selector_revision=None, dataset="d", seconds=0.0)
    block = render_widget(ranking, dataset_id="org/my ds; echo", space=None, date="2026-01-01")
    rows = [line for line in block.splitlines() if line.startswith("| ") and "from_pretrained" in line]
    assert len(rows) == 2
    header = next(line for line in block.splitlines() if line.startswith("| rank |"))
    for row in rows:  # as many cells as the header: no unescaped pipe added one
        cells = [c for c in row.replace("\\|", "").split("|")[1:-1]]
        assert len(cells) == len(header.split("|")[1:-1]) == 6, row
    reproduce = block.split("Reproduce: ")[1].strip().strip("`").strip()
    assert shlex.split(reproduce) == ["hf-spider", "rank", "org/my ds; echo", "--selector", "org/x; rm -rf ~"]
    section = with_token_section("", selector="org/s", selector_revision=None, dim=8, sha256="0" * 64)
    assert 'SpiderSelector.from_pretrained("org/s")' in section


# --- 5. path-like ids, and writes into folders a zoo names ------------------------------------------------------

PATHS = ["../../../../etc", "/root", "org/a\nforged-row 9.99", "org/a\u200b", "\u043erg/a", "org/a b", "tokens/../x"]


@pytest.mark.parametrize("model_id", PATHS)
@pytest.mark.parametrize("token_source", ["mirror", "auto"])
def test_path_like_and_invisible_ids_are_refused(small, tmp_path, model_id, token_source):
    """Before: ranked, and ``load()`` / the CLI would open that folder or print a forged row."""
    folder = _save_with(small, tmp_path / "sel", model_id=model_id)
    with pytest.raises(ZooError, match="is refused"):
        SpiderSelector.from_pretrained(folder, token_source=token_source)
    assert main(["rank", "bundled:fashion-mnist", "--selector", str(folder), "--token-source", token_source]) == 2


@pytest.mark.parametrize("model_id", ["../../../../etc", "org/a\nforged", "org/a\u200b", "/x/\u2028y"])
def test_local_models_opt_in_still_refuses_climbing_and_invisible_ids(small, tmp_path, model_id):
    folder = _save_with(small, tmp_path / "sel", model_id=model_id)
    with pytest.raises(ZooError, match="is refused"):
        SpiderSelector.from_pretrained(folder, token_source="mirror", local_models=True)


def test_local_folder_ids_load_only_when_asked(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    sel = _selector("org/local", [str(victim), "org/m1"])
    sel.save_pretrained(tmp_path / "sel")
    with pytest.raises(ZooError, match="local_models=True"):
        SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror")
    loaded = SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror", local_models=True)
    assert loaded.model_ids == [str(victim), "org/m1"]


def test_tokenize_all_never_writes_into_a_folder_the_zoo_names(tmp_path, monkeypatch, capsys):
    """``tokenize --all --create-pr``: a zoo id that is a local folder is refused, and a Hub id that also exists
    as a folder under the working directory goes to the Hub as a pull request (before: both folders were rewritten
    in place and the pull request bypassed)."""
    from huggingface_hub import HfApi

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "README.md").write_text("# the victim's card\n")
    (victim / "README.md").chmod(0o644)
    lookalike = tmp_path / "cwd" / "org" / "m1"
    lookalike.mkdir(parents=True)
    (lookalike / "README.md").write_text("# a folder named like a Hub repo\n")
    before = {p: p.read_bytes() for p in (victim / "README.md", lookalike / "README.md")}
    monkeypatch.chdir(tmp_path / "cwd")
    commits = []
    monkeypatch.setattr(HfApi, "create_commit", lambda self, repo, ops, **kw: commits.append((repo, kw)) or
                        type("Info", (), {"pr_url": f"https://hub/{repo}/discussions/1", "commit_url": None})())
    monkeypatch.setattr("hf_spider.hub.read_card_text", lambda repo, **kw: "" if not kw.get("local") else
                        (Path(repo) / "README.md").read_text())
    _selector("org/mixed", ["org/m1", "org/m2"]).save_pretrained(tmp_path / "hub-sel")
    assert main(["tokenize", "--all", "--create-pr", "--selector", str(tmp_path / "hub-sel"), "--json"]) == 0
    assert [repo for repo, _ in commits] == ["org/m1", "org/m2"] and commits[0][1]["create_pr"] is True
    _selector("org/local", [str(victim), "org/m2"]).save_pretrained(tmp_path / "local-sel")
    code = main(["tokenize", "--all", "--create-pr", "--selector", str(tmp_path / "local-sel"), "--local-models"])
    assert code == 2 and "not a Hub repo id" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before and not (victim / "spider").exists()
    assert not (lookalike / "spider").exists()
    # a folder the user names on the command line is written into (without --create-pr: a folder has no PRs)
    assert main(["tokenize", str(victim), "--selector", str(tmp_path / "local-sel"), "--local-models",
                 "--create-pr"]) == 2
    assert main(["tokenize", str(victim), "--selector", str(tmp_path / "local-sel"), "--local-models"]) == 0
    assert (victim / "spider" / "token.safetensors").is_file()
    assert stat.S_IMODE((victim / "README.md").stat().st_mode) == 0o644


# --- 6. safetensors only ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bin_only(tmp_path_factory, text_zoo) -> Path:
    """A tiny model whose only weights are ``pytorch_model.bin`` (a pickle)."""
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("bin-only") / "model"
    shutil.copytree(text_zoo[0], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_a_bin_only_repo_is_never_unpickled(bin_only, monkeypatch):
    """``load()``, the task encoder / feature extractor and re-ranking read safetensors only; a ``.bin``-only repo is
    a clear error (before: loaded through ``torch.load``)."""
    from hf_spider.features import FeatureExtractor

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called on a repo file")

    monkeypatch.setattr(torch, "load", refuse)
    model = RankedModel(rank=1, model_id=str(bin_only), revision=None, score=1.0, task_type="text-classification")
    with pytest.raises(ArtifactError, match="no safetensors weights"):
        model.load()
    with pytest.raises(ArtifactError, match="no safetensors weights"):
        FeatureExtractor(str(bin_only), modality="text")


def test_rerank_of_a_bin_only_zoo_model_is_a_clear_error(bin_only, text_zoo, monkeypatch):
    from conftest import MINILM, text_dataset

    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("torch.load called")))
    config = SelectorConfig(name="t/bin", modality="text", task_encoder=MINILM, shots_per_class=2,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1,
                                                  ptm_widths=[16]))
    tasks = planted_tasks(6, num_models=2, task_dim=384)
    for t in tasks:  # tiny BERTs have 16-d features
        t.ptm_prototypes = {m: torch.randn(t.prototypes.shape[0], 16) for m in range(2)}
    selector = SpiderSelector.train(tasks, config=config, zoo=[str(bin_only), str(text_zoo[1])], verbose=False,
                                    training=TrainingConfig(epochs=1, rerank_prob=1.0, rerank_max_k=2))
    # both models are re-ranked; the re-ranking stage wraps it in a ZooError that also names --rerank 0
    with pytest.raises((ArtifactError, ZooError), match="no safetensors weights"):
        selector.rank(text_dataset(), rerank=2, verbose=False)


def test_error_messages_say_what_to_do():
    with pytest.raises(InvalidInputError, match="local_models=True"):
        from hf_spider.ids import check_model_id

        check_model_id("/root", where="zoo.json models[0]")


def test_save_pretrained_into_the_working_directory(small, tmp_path, monkeypatch):
    """``save_pretrained(".")`` from inside a selector folder (a git clone of its repo): the process stays in a
    live folder that holds the new version, and .git survives."""
    folder = tmp_path / "clone"
    small.save_pretrained(folder)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    monkeypatch.chdir(folder)
    small.save_pretrained(".")
    assert Path(os.getcwd()) == folder.resolve() and Path(".git/HEAD").read_text() == "ref: refs/heads/main\n"
    assert SpiderSelector.from_pretrained(".", token_source="mirror").model_ids == small.model_ids


def test_save_pretrained_without_rename_exchange(small, tmp_path, monkeypatch):
    """Where ``renameat2(RENAME_EXCHANGE)`` is unsupported, the two-rename fallback still replaces the folder and
    leaves nothing behind."""
    from hf_spider import files

    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    folder = tmp_path / "sel"
    _selector("org/other", ["org/q", "org/r"]).save_pretrained(folder)
    (folder / "NOTES.md").write_text("mine")
    small.save_pretrained(folder)
    assert SpiderSelector.from_pretrained(folder, token_source="mirror").model_ids == small.model_ids
    assert (folder / "NOTES.md").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["sel"]
