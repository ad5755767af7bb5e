"""Loading large zoos: the bulk token reader (hf_spider.token_store) and parse_zoo, against the strict checks."""

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save as st_save

from benchmarks.scale import make_zoo  # the 100k-model benchmark's builder, at test size
from hf_spider import SpiderSelector, hub
from hf_spider.errors import ArtifactError, TokenIntegrityError, ZooError
from hf_spider.tokens import TaskToken, token_bytes, token_sha256


def load(folder):
    return SpiderSelector.from_pretrained(str(folder), token_source="mirror")


@pytest.fixture
def small(tmp_path):
    folder = tmp_path / "sel"
    return folder, *make_zoo(folder, 12)


def test_five_thousand_model_zoo_loads_in_order_and_ranks(tmp_path):
    tokens, entries = make_zoo(tmp_path / "sel", 5000)
    selector = load(tmp_path / "sel")
    assert selector.model_ids == [e.model_id for e in entries]
    assert torch.equal(selector.model_tokens, tokens)
    task = TaskToken(torch.randn(7, 384), [f"c{i}" for i in range(7)], "x")
    ranking = selector.rank_task(task, top_k=10)
    assert len(ranking) == 10 and ranking[0].score >= ranking[9].score


def test_a_changed_token_value_names_its_file(small):
    folder, _, entries = small
    path = folder / entries[7].mirror
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TokenIntegrityError, match=rf"{entries[7].mirror}.*does not match zoo.json"):
        load(folder)


def test_nan_token_with_a_matching_hash_is_refused(small):
    folder, _, entries = small
    bad = torch.full((32,), float("nan"))
    path = folder / entries[2].mirror
    path.write_bytes(token_bytes(bad, model_id=entries[2].model_id, selector="s"))
    zoo = json.loads((folder / "zoo.json").read_text())
    zoo["models"][2]["token_sha256"] = token_sha256(bad)
    (folder / "zoo.json").write_text(json.dumps(zoo))
    with pytest.raises(TokenIntegrityError, match="NaN or inf"):
        load(folder)


def test_token_file_from_another_safetensors_writer_is_accepted(small):
    """A header laid out differently (the safetensors library's own writer) takes the strict path and loads."""
    folder, tokens, entries = small
    (folder / entries[3].mirror).write_bytes(st_save({"token": tokens[3].clone()}, metadata={"model_id": "m"}))
    assert torch.equal(load(folder).model_tokens, tokens)


def test_header_that_is_not_utf8_is_refused(small):
    """The fast header match accepts any byte in a metadata string; the strict parser decides on non-UTF-8."""
    folder, tokens, entries = small
    data = token_bytes(tokens[8], model_id="caf\u00e9", selector="s")
    bad = data.replace(b"caf\\u00e9", b"caf\xff\xfe\xfd\xfc\xfb\xfa")  # same length: the header stays consistent
    assert bad != data
    (folder / entries[8].mirror).write_bytes(bad)
    with pytest.raises(TokenIntegrityError, match="not a valid safetensors file"):
        load(folder)


def test_token_file_with_a_second_tensor_is_refused(small):
    folder, tokens, entries = small
    data = st_save({"token": tokens[4].clone(), "zz": torch.zeros(1)})
    (folder / entries[4].mirror).write_bytes(data)
    with pytest.raises(TokenIntegrityError, match="expected one float32 vector"):
        load(folder)


def test_oversized_token_file_is_refused_without_reading_it_whole(small):
    folder, _, entries = small
    (folder / entries[0].mirror).write_bytes(b"\0" * (5 << 20))
    with pytest.raises(TokenIntegrityError, match="over hf-spider's limit"):
        load(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_mirror_that_is_a_fifo_is_refused_not_waited_on(small):
    folder, _, entries = small
    path = folder / entries[5].mirror
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ArtifactError, match="not a regular file"):
        load(folder)


def test_missing_mirror_file(small):
    folder, _, entries = small
    (folder / entries[6].mirror).unlink()
    with pytest.raises(ArtifactError, match=rf"Token of {entries[6].model_id} is neither in its repo"):
        load(folder)


def test_links_inside_the_cache_repo_resolve_and_links_out_are_refused(tmp_path):
    """HF cache layout: snapshot files link to ../../blobs; a chain of links inside is followed, one out is not."""
    repo = tmp_path / "models--org--sel"
    snap = repo / "snapshots" / "abc"
    tokens, entries = make_zoo(tmp_path / "plain", 6)
    (repo / "blobs").mkdir(parents=True)
    (snap / "tokens").mkdir(parents=True)
    for path in (tmp_path / "plain").rglob("*"):
        if path.is_file():
            rel = path.relative_to(tmp_path / "plain")
            blob = repo / "blobs" / rel.name
            shutil.copy(path, blob)
            (snap / rel).symlink_to(os.path.relpath(blob, (snap / rel).parent))
    hop = repo / "blobs" / "hop"  # a chain: tokens/x -> ../../../blobs/hop -> the blob
    hop.symlink_to(os.path.relpath(repo / "blobs" / os.path.basename(entries[1].mirror), repo / "blobs"))
    (snap / entries[1].mirror).unlink()
    (snap / entries[1].mirror).symlink_to(os.path.relpath(hop, snap / "tokens"))
    assert torch.equal(load(snap).model_tokens, tokens)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.copy(repo / "blobs" / os.path.basename(entries[2].mirror), outside)
    (snap / entries[2].mirror).unlink()
    (snap / entries[2].mirror).symlink_to(outside)
    with pytest.raises(ZooError, match="links outside the selector folder"):
        load(snap)


def test_tokens_folder_linking_outside_is_refused(small, tmp_path):
    folder, _, _ = small
    shutil.move(folder / "tokens", tmp_path / "stolen")
    (folder / "tokens").symlink_to(tmp_path / "stolen")
    with pytest.raises(ZooError, match="links outside the selector folder"):
        load(folder)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("token_sha256", "ABC", r"models\[3\]: token_sha256 must be 64 lowercase hex"),
    ("token_sha256", 5, r"models\[3\]: token_sha256 must be 64 lowercase hex"),
    ("mirror", "tokens/../x.safetensors", r"models\[3\]: mirror 'tokens/../x.safetensors' must be a file directly"),
    ("mirror", "tokens/a.safetensors\ntokens/b.safetensors", r"models\[3\]: mirror"),
    ("mirror", None, r"models\[3\]: mirror None"),
])
def test_parse_zoo_names_the_bad_entry(small, field, value, message):
    folder, _, _ = small
    zoo = json.loads((folder / "zoo.json").read_text())
    zoo["models"][3][field] = value
    with pytest.raises(ZooError, match=message):
        hub.parse_zoo(json.dumps(zoo))
