"""Cold-start tokens: a new model placed by representation similarity (linear CKA) on a probe set, no labels."""

import json

import pytest
import torch

from hf_spider import FitnessConfig, InvalidInputError, SelectorConfig, SpiderSelector, TrainingConfig
from hf_spider.cli import main
from hf_spider.cold_start import cold_start_token, linear_cka


def test_linear_cka_is_invariant_to_rotation_scale_and_width():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 12, generator=gen)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen))
    wider = torch.cat([x @ q * 3.0, torch.zeros(50, 5)], dim=1)  # rotated, scaled, padded to another width
    unrelated = torch.randn(50, 12, generator=gen)
    sims = linear_cka(x, [wider, unrelated, x[:, :6]])
    assert sims[0].item() == pytest.approx(1.0, abs=1e-5)
    assert sims[1] < 0.5 and sims[1] < sims[2] < sims[0]
    with pytest.raises(InvalidInputError, match="same"):
        linear_cka(x, [x[:10]])


def test_cold_start_token_follows_the_most_similar_zoo_models():
    gen = torch.Generator().manual_seed(1)
    zoo = [torch.randn(40, 8, generator=gen) for _ in range(4)]
    tokens = torch.eye(4)
    copy_of_2 = zoo[2] @ torch.linalg.qr(torch.randn(8, 8, generator=gen))[0]  # model 2, re-parameterised
    assert torch.allclose(cold_start_token(copy_of_2, zoo, tokens, neighbours=1), tokens[2])
    mixed = cold_start_token(copy_of_2, zoo, tokens, neighbours=3)
    assert mixed.argmax().item() == 2 and mixed.sum().item() == pytest.approx(1.0)  # a convex mix, 2 weighs most
    with pytest.raises(InvalidInputError, match="tokens"):
        cold_start_token(copy_of_2, zoo[:3], tokens)


def test_cold_start_add_model_through_the_cli(text_zoo, tmp_path, capsys):
    """`hf-spider add-model --cold-start`: forward passes on one probe dataset, no estimator, no training."""
    from conftest import MINILM, text_dataset
    from synthetic import planted_tasks

    zoo = [str(p) for p in text_zoo[:3]]
    config = SelectorConfig(name="t/cold", modality="text", task_encoder=MINILM, shots_per_class=6,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    selector = SpiderSelector.train(planted_tasks(8, num_models=3, task_dim=384), config=config, zoo=zoo,
                                    training=TrainingConfig(epochs=1), verbose=False)
    selector.save_pretrained(tmp_path / "sel")
    text_dataset(6).save_to_disk(str(tmp_path / "probe"))
    expected = selector.cold_start_token(str(text_zoo[3]), text_dataset(6), verbose=False)
    code = main(["add-model", str(text_zoo[3]), "--selector", str(tmp_path / "sel"), "--local-models", "--cold-start",
                 str(tmp_path / "probe"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "cold-start" and out["zoo_size"] == 4
    reloaded = SpiderSelector.from_pretrained(tmp_path / "sel", token_source="mirror", local_models=True)
    assert reloaded.model_ids[-1] == str(text_zoo[3])
    assert torch.allclose(reloaded.model_tokens[-1], expected, atol=1e-6)
    # the token lies in the hull of the zoo's tokens: a weighted mean, never an extrapolation
    assert reloaded.model_tokens[-1].abs().max() <= selector.model_tokens.abs().max() + 1e-6
    with pytest.raises(InvalidInputError, match="exactly one"):
        reloaded.add_model("org/other", token=expected, probe_tasks=planted_tasks(2, num_models=5, task_dim=384))
    with pytest.raises(InvalidInputError, match="finite"):
        reloaded.add_model("org/other", token=torch.full((8,), float("nan")))
    assert json.loads((tmp_path / "sel" / "zoo.json").read_text())["models"][-1]["model_id"] == str(text_zoo[3])
