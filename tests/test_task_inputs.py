"""The model prior and task inputs (``hf_spider.task_inputs``) and their place in a saved selector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hf_spider import hub
from hf_spider.bundled import bundled_selector
from hf_spider.config import SelectorConfig
from hf_spider.errors import ArtifactError, InvalidInputError
from hf_spider.fitness import FitnessConfig, FitnessNetwork
from hf_spider.selector import SpiderSelector
from hf_spider.task_inputs import TaskInputs, TaskInputsConfig, fit_linear
from hf_spider.tokens import TaskToken, token_sha256

M, D = 6, 8


def _selector(shrinkage: float = 0.5, network_weight: float = 1.0, groups=("label_match", "model_size")):
    torch.manual_seed(0)
    config = TaskInputsConfig(groups=list(groups), prior_scale=4.0, shrinkage=shrinkage,
                              network_weight=network_weight, feature_mean=[0.0] * len(groups),
                              feature_std=[1.0] * len(groups))
    side = {"label_embedding": torch.nn.functional.normalize(torch.randn(M, D), dim=-1),
            "log_parameters": torch.randn(M)}
    inputs = TaskInputs(config, torch.linspace(0.1, 0.9, M), torch.tensor([1.0, -0.5])[: len(groups)], side)
    fitness_config = FitnessConfig(task_dim=D, token_dim=8, num_heads=2, num_layers=1)
    selector_config = SelectorConfig(name="org/tiny", modality="text", task_encoder="enc", fitness=fitness_config,
                                     task_token_kind="label_names", task_inputs=json.loads(json.dumps(
                                         {k: getattr(config, k) for k in config.__dataclass_fields__})))
    tokens = torch.randn(M, 8)
    zoo = [hub.ZooEntry(model_id=f"org/m{i}", revision=None, task_type="text-classification",
                        token_sha256=token_sha256(t), mirror=hub.mirror_name(f"org/m{i}"))
           for i, t in enumerate(tokens)]
    return SpiderSelector(selector_config, FitnessNetwork(fitness_config), zoo, tokens, task_inputs=inputs)


def _task(classes: int = 3) -> TaskToken:
    return TaskToken(torch.randn(classes, D), [f"c{i}" for i in range(classes)], "enc")


def test_zero_shrinkage_ranks_by_the_prior_alone():
    selector = _selector(shrinkage=0.0)
    for _ in range(3):  # whatever the task, the ranking is the prior's
        assert np.argsort(-selector.score(_task())).tolist() == list(range(M))[::-1]


def test_the_task_moves_the_ranking_when_inputs_are_kept():
    selector = _selector(shrinkage=1.0, network_weight=0.0)
    torch.manual_seed(1)
    a, b = selector.score(_task()), selector.score(_task())
    assert not np.allclose(a, b)
    expected = 4.0 * selector.task_inputs.prior + selector.task_inputs.features(torch.ones(1, D)) @ torch.tensor(
        [1.0, -0.5])
    assert np.allclose(selector.score(TaskToken(torch.ones(1, D), ["x"], "enc")), expected.numpy())


def test_saved_selector_with_task_inputs_scores_identically(tmp_path):
    selector = _selector()
    selector.save_pretrained(tmp_path)
    back = SpiderSelector.from_pretrained(tmp_path, token_source="mirror")
    task = _task()
    assert back.task_inputs is not None
    assert np.array_equal(back.score(task), selector.score(task))
    assert "task_inputs.prior" in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        tmp_path / "model.safetensors")
    assert "4.0 × prior + 0.5 × (task inputs + 1.0 × fitness network)" in (tmp_path / "README.md").read_text()


def test_bad_task_inputs_are_refused(tmp_path):
    _selector().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["task_inputs"]["groups"] = ["label_match", "favourite_colour"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="groups"):
        SpiderSelector.from_pretrained(tmp_path, token_source="mirror")
    with pytest.raises(ArtifactError, match="task_inputs.weights"):
        TaskInputs.from_state(TaskInputsConfig(groups=["model_size"], feature_mean=[0.0], feature_std=[1.0]),
                              {"task_inputs.prior": torch.zeros(M), "task_inputs.weights": torch.zeros(3),
                               "task_inputs.log_parameters": torch.zeros(M)}, M)
    with pytest.raises(ArtifactError, match="lacks"):
        TaskInputs.from_state(TaskInputsConfig(), {"task_inputs.prior": torch.zeros(M)}, M)


def test_label_name_rankings_say_they_read_class_names_only():
    ranking = _selector().rank_task(_task())
    assert "ranked from class names only" in ranking.notes


def test_add_model_extends_the_prior_and_refuses_a_folder_update(tmp_path):
    selector = _selector()
    selector.save_pretrained(tmp_path)
    with pytest.raises(InvalidInputError, match="save_pretrained"):
        selector.add_model("org/new", token=torch.zeros(8), save_directory=tmp_path)
    assert SpiderSelector.from_pretrained(tmp_path, token_source="mirror").task_inputs.num_models == M  # untouched
    selector.add_model("org/new", token=torch.zeros(8))
    assert selector.score(_task()).shape == (M + 1,)


def test_old_selectors_load_without_task_inputs_and_score_with_the_network_alone(tmp_path):
    # an old selector on disk: the bundled one with the task_inputs / cascade entries a v1 file never had taken out
    import shutil

    from safetensors.torch import load_file, save_file

    old = tmp_path / "old"
    shutil.copytree(bundled_selector("spiderbench-image"), old)
    config = json.loads((old / "config.json").read_text())
    for key in ("task_inputs", "cascade"):
        config.pop(key, None)
    (old / "config.json").write_text(json.dumps(config))
    state = load_file(old / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("task_inputs.")}, old / "model.safetensors")
    selector = SpiderSelector.from_pretrained(old, token_source="mirror")
    assert selector.task_inputs is None and selector.config.task_inputs == {}
    task = TaskToken(torch.randn(4, selector.config.fitness.task_dim), list("abcd"), "enc")
    with torch.no_grad():
        raw = selector.fitness(selector.model_tokens, task.prototypes.unsqueeze(0))[0].numpy()
    assert np.array_equal(selector.score(task), raw.astype(np.float64))


def test_fit_linear_finds_an_informative_input():
    torch.manual_seed(0)
    T, n = 5, 40
    prior = torch.rand(T, n)
    signal = torch.randn(T, n, 1)
    performance = prior + 0.5 * signal[..., 0]
    scale, weights = fit_linear(prior, torch.cat([signal, torch.randn(T, n, 1)], 2), performance)
    assert scale > 0 and weights[0] > 5 * abs(weights[1])
