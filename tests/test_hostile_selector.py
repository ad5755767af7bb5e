"""A hostile selector folder: every field, file and value is checked before anything is built, allocated or read
without bound, and the refusal names the field or file at fault (issue 16, items 9 and 10)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import MINILM
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from synthetic import planted_tasks

from hf_spider import (
    ArtifactError,
    FitnessConfig,
    FitnessNetwork,
    InvalidInputError,
    SelectorConfig,
    SpiderSelector,
    TokenIntegrityError,
    TrainingConfig,
    hub,
)
from hf_spider.config import FITNESS_FIELDS, SELECTOR_FIELDS, fitness_parameter_count
from hf_spider.tokens import token_bytes, token_sha256

TASK_DIM = 384


@pytest.fixture(scope="module")
def selector() -> SpiderSelector:
    config = SelectorConfig(name="test-org/spider-hostile", modality="text", task_encoder=MINILM,
                            task_token_kind="label_names", label_prompt="a photo of {}.",
                            fitness=FitnessConfig(task_dim=TASK_DIM, token_dim=16, num_heads=2, num_layers=1))
    return SpiderSelector.train(planted_tasks(12, num_models=3, task_dim=TASK_DIM), config=config,
                                zoo=["test-org/a", "test-org/b", "test-org/c"], training=TrainingConfig(epochs=2),
                                verbose=False)


@pytest.fixture
def saved(selector, tmp_path) -> Path:
    folder = tmp_path / "sel"
    selector.save_pretrained(folder)
    return folder


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (TimeoutError) instead of hanging: a read of a FIFO used to block forever."""
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load(folder: Path) -> SpiderSelector:
    with deadline(20):
        return SpiderSelector.from_pretrained(folder, token_source="mirror")


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if key.startswith("fitness."):
            config["fitness"][key.split(".", 1)[1]] = value
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))


# --- config.json fields ----------------------------------------------------------------------------------------

HOSTILE_FIELDS = [
    ("fitness.num_heads", 0, "num_heads"),
    ("fitness.num_heads", 3, "divisible by `num_heads`"),
    ("fitness.task_dim", -5, "task_dim"),
    ("fitness.token_dim", "16", "token_dim.*integer"),
    ("fitness.token_dim", 16.0, "token_dim.*integer"),
    ("fitness.num_layers", True, "num_layers.*integer"),
    ("fitness.token_dim", 65536, "token_dim"),  # 51 GB of attention weights
    ("fitness.ptm_widths", [2e9], "ptm_widths"),  # a float, and 2e9 × token_dim parameters
    ("fitness.ptm_widths", [2_000_000_000], "ptm_widths"),
    ("fitness.ptm_widths", "768", "ptm_widths"),
    ("fitness.num_layers", 200_000, "num_layers"),
    ("fitness.dropout", float("nan"), "dropout"),
    ("fitness.dropout", 1.5, "dropout"),
    ("fitness.ffn_mult", 10**30, "ffn_mult"),
    ("fitness", [], "fitness"),
    ("shots_per_class", "32", "shots_per_class"),
    ("shots_per_class", 0, "shots_per_class"),
    ("rerank_k", -1, "rerank_k"),
    ("name", 7, "name"),
    ("task_encoder", {"id": "x"}, "task_encoder"),
    ("training", "fast", "training"),
    ("label_prompt", "{0}{1}", "label_prompt"),
    ("label_prompt", "{x}", "label_prompt"),
    ("label_prompt", "no placeholder", "label_prompt"),
    ("label_prompt", "{}{}", "label_prompt"),
    ("label_prompt", "{!r}", "label_prompt"),
    ("label_prompt", "{:>9999999999}", "label_prompt"),
    ("label_prompt", "unbalanced {", "label_prompt"),
    ("label_prompt", 3, "label_prompt"),
]


@pytest.mark.parametrize("field, value, message", HOSTILE_FIELDS, ids=[f"{f}={v!r:.20}" for f, v, _ in HOSTILE_FIELDS])
def test_hostile_config_field_is_refused_naming_it(saved, field, value, message):
    """Before: ZeroDivisionError / TypeError / KeyError tracebacks, gigabyte allocations, or a selector that loaded
    and failed later at rank time."""
    edit_config(saved, **{field: value})
    with pytest.raises(ArtifactError, match=message):
        load(saved)


@pytest.mark.parametrize("prompt", ["{}", "a photo of {}.", "{{literal braces}} around {}"])
def test_valid_label_prompts_still_load(saved, prompt):
    edit_config(saved, label_prompt=prompt)
    assert load(saved).config.label_prompt == prompt


def test_every_config_field_has_a_check():
    """A field added to SelectorConfig or FitnessConfig must get a bounds check in config.py before it is read."""
    assert set(SELECTOR_FIELDS) == set(SelectorConfig.__dataclass_fields__)
    assert set(FITNESS_FIELDS) == set(FitnessConfig.__dataclass_fields__)


@pytest.mark.parametrize("sizes", [{}, {"task_dim": 1280, "token_dim": 8, "num_layers": 1, "ptm_widths": [768, 2048]},
                                   {"task_dim": 5, "token_dim": 4, "num_heads": 4, "num_layers": 3, "ffn_mult": 1}])
def test_parameter_bound_counts_the_real_network(sizes):
    config = FitnessConfig(**sizes)
    assert fitness_parameter_count(**asdict(config)) == sum(p.numel() for p in FitnessNetwork(config).parameters())


# --- model.safetensors against config.json -------------------------------------------------------------------


def test_weights_of_another_shape_are_refused_from_the_header(saved):
    state = st_load((saved / "model.safetensors").read_bytes())
    state["type_embed"] = torch.zeros(3, 32)
    (saved / "model.safetensors").write_bytes(st_save(state))
    with pytest.raises(ArtifactError, match=r"'type_embed' is F32 \(3, 32\), config.json implies F32 \(3, 16\)"):
        load(saved)


def test_weights_header_claiming_a_huge_tensor_is_refused(saved):
    data = (saved / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["type_embed"]["shape"] = [3, 2**40]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (saved / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])
    with pytest.raises(ArtifactError, match="type_embed"):
        load(saved)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(saved, value):
    """Before: the selector loaded and every score was NaN (and `--json` printed a bare NaN)."""
    state = st_load((saved / "model.safetensors").read_bytes())
    state["head.1.weight"][0, 3] = value
    (saved / "model.safetensors").write_bytes(st_save(state, metadata={"format": "pt"}))
    with pytest.raises(ArtifactError, match=r"'head.1.weight'.*NaN or inf"):
        load(saved)


def test_non_finite_token_is_refused(selector, saved):
    """Held before the fix too (parse_token checks finiteness): kept as a regression test."""
    entry, token = selector.zoo[1], selector.model_tokens[1].clone()
    token[0] = float("nan")
    (saved / entry.mirror).write_bytes(token_bytes(token, model_id=entry.model_id, selector=selector.config.name))
    zoo = json.loads((saved / "zoo.json").read_text())
    zoo["models"][1]["token_sha256"] = token_sha256(token)  # zoo.json agrees: only the finiteness check is left
    (saved / "zoo.json").write_text(json.dumps(zoo))
    with pytest.raises(TokenIntegrityError, match="NaN or inf"):
        load(saved)


def test_non_finite_tokens_are_refused_when_a_selector_is_built(selector):
    """Before: a selector holding NaN tokens (e.g. from a diverged training) was built and saved."""
    tokens = selector.model_tokens.clone()
    tokens[2, 1] = float("inf")
    with pytest.raises(InvalidInputError, match=r"tokens of \['test-org/c'\] hold NaN or inf"):
        SpiderSelector(selector.config, selector.fitness, selector.zoo, tokens)


# --- files that are not regular files, or are too large ---------------------------------------------------------

ARTIFACTS = ["config.json", "zoo.json", "model.safetensors"]


@pytest.mark.parametrize("name", ARTIFACTS)
def test_artifact_that_is_a_fifo_is_refused_without_blocking(saved, name):
    """Before: the read blocked forever (25 minutes measured, until killed)."""
    (saved / name).unlink()
    os.mkfifo(saved / name)
    with pytest.raises(ArtifactError, match=f"{name}.*FIFO"):
        load(saved)


@pytest.mark.parametrize("name", ARTIFACTS)
def test_artifact_linked_to_dev_zero_is_refused_without_reading(saved, name):
    """Before: an endless read of /dev/zero until memory ran out."""
    (saved / name).unlink()
    (saved / name).symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match=f"{name}.*character device"):
        load(saved)


@pytest.mark.parametrize("name, size", [("config.json", 64 << 20), ("zoo.json", 1 << 30),
                                        ("model.safetensors", 2 << 30)])
def test_oversized_artifact_is_refused_before_reading(saved, name, size):
    """A sparse file: gigabytes by its size, nothing on disk. Before: read whole into memory."""
    with open(saved / name, "r+b") as f:
        f.truncate(size)
    with pytest.raises(ArtifactError, match=f"{name}.*over hf-spider's limit"):
        load(saved)


def test_oversized_or_fifo_mirror_token_is_refused(selector, saved):
    mirror = saved / selector.zoo[0].mirror
    with open(mirror, "r+b") as f:
        f.truncate(64 << 20)
    with pytest.raises(TokenIntegrityError, match="over hf-spider's limit"):
        load(saved)


def test_model_repo_token_that_is_a_fifo_is_named_not_read(tmp_path):
    """A zoo model's folder holding a FIFO as its token: a TokenIntegrityError naming it (with token_source="auto"
    the selector's mirror copy is then used, as for any bad token). Before: silently taken as "no token"."""
    model = tmp_path / "model"
    (model / "spider").mkdir(parents=True)
    os.mkfifo(model / "spider" / "token.safetensors")
    with deadline(20), pytest.raises(TokenIntegrityError, match="FIFO"):
        hub.fetch_model_token(str(model))


# --- the CLI's JSON is always JSON -----------------------------------------------------------------------------


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_cli_json_output_is_strict_json_even_with_non_finite_values(saved, capsys):
    """A training summary holding NaN/Infinity (Python's json reads them) used to be printed as bare NaN."""
    from hf_spider.cli import main

    edit_config(saved, training={"validation weighted tau": float("nan"), "loss": [1.0, float("inf")]})
    assert main(["info", str(saved)]) == 0
    out = strict_json(capsys.readouterr().out)
    assert out["training"] == {"validation weighted tau": None, "loss": [1.0, None]}


def test_cli_reports_a_hostile_config_as_exit_2(saved, capsys):
    from hf_spider.cli import main

    edit_config(saved, **{"fitness.num_heads": 0})
    assert main(["info", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "num_heads" in err and "Traceback" not in err
