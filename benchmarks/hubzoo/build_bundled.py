"""Build the bundled Hub-zoo selectors ``hf_spider/bundled/hubzoo-{image,text}/`` from ALL targets' results.

    python -m benchmarks.hubzoo.build_bundled [--side image|text|both]

Same recipe as the benchmark's ``spider`` (``benchmarks.hubzoo.recipe``): average-rank prior + task inputs +
fitness network, every choice (inputs, epochs, shrinkage) by the same nested leave-one-target-out, now over all 10
targets. One network seed (a selector holds one network; the benchmark averages two). When the held-out choice drops
the network (shrinkage or epochs 0) a network is still trained (best inner epoch count) and stored with weight 0, so
the selector keeps Model Spider's artifacts. The stored tokens are the metadata token encoder's outputs (plain free
vectors), so ``SpiderSelector.from_pretrained`` needs nothing from this module. Deterministic on CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from hf_spider import hub
from hf_spider.fitness import FitnessNetwork
from hf_spider.model_meta import train_meta_spider
from hf_spider.selector import SelectorConfig, SpiderSelector
from hf_spider.task_inputs import TaskInputs, TaskInputsConfig
from hf_spider.tokens import token_sha256

from .common import LABEL_PROMPT, TEXT_ENCODER, SideData, load_side, training_tasks
from .recipe import FoldModel, Recipe, _net_config, _offsets, fit, model_side

logger = logging.getLogger(__name__)
BUNDLED = Path(__file__).resolve().parents[2] / "hf_spider" / "bundled"
CHOSEN_BY = ("Inputs, network epochs and shrinkage were chosen by leave-one-target-out over the training targets "
             "(benchmarks/hubzoo/recipe.py); the Hub-zoo training targets' raw data is not available offline, so "
             "no data-derived input (image/text domain embedding) is trained: the ranking reads class names and "
             "model metadata only.")


def make_selector(data: SideData, model: FoldModel, targets: list[str], training: dict | None = None,
                  network=None) -> SpiderSelector:
    """A ``SpiderSelector`` holding ``model`` (its first network, or ``network`` when it has none)."""
    side = data.records.side
    recipe = Recipe()
    result = model.nets[0] if model.nets else network
    if result is not None:
        fitness, tokens = result.fitness, result.model_tokens.detach().clone()
    else:  # no trained network: an untrained one with zero tokens, weight 0 in the score
        fitness, tokens = FitnessNetwork(recipe.fitness), torch.zeros(len(data.records.models),
                                                                      recipe.fitness.token_dim)
    lin = model.linear
    inputs_config = TaskInputsConfig(
        groups=lin.groups, prior_scale=round(lin.scale, 6), shrinkage=1.0 if (lin.groups or model.nets) else 0.0,
        network_weight=model.network_weight if model.nets else 0.0, feature_mean=[float(v) for v in lin.mean],
        feature_std=[float(v) for v in lin.std], chosen_by=CHOSEN_BY)
    needed = {"label_match": "label_embedding", "description_match": "description_embedding",
              "classes_x_size": "log_parameters", "model_size": "log_parameters"}
    stored = {needed[g]: model.side[needed[g]] for g in lin.groups}
    inputs = TaskInputs(inputs_config, lin.prior, lin.weights, stored)
    config = SelectorConfig(
        name=f"hf-spider/hubzoo-{side}", modality=side, task_encoder=TEXT_ENCODER, task_token_kind="label_names",
        label_prompt=LABEL_PROMPT[side], fitness=recipe.fitness, training=training or {},
        task_inputs=asdict(inputs_config))
    params = data.records.model_meta["num_parameters"]
    entries = [hub.ZooEntry(model_id=m, revision=None, task_type=f"{side}-classification",
                            token_sha256=token_sha256(tok), mirror=hub.mirror_name(m),
                            num_parameters=None if pd.isna(params[m]) else int(params[m]),
                            pipeline_tag=f"{side}-classification")
               for m, tok in zip(data.records.models, tokens)]
    return SpiderSelector(config, fitness, entries, tokens, task_inputs=inputs)


def measured_effects(side: str) -> dict[str, str]:
    """The benchmark's measured differences (``benchmarks/hubzoo.json``, LOTO, 95 % bootstrap) for the card."""
    path = Path(__file__).resolve().parents[1] / "hubzoo.json"
    if not path.is_file():
        return {}
    boot = json.loads(path.read_text()).get("_details", {}).get(side, {}).get("bootstrap", {})
    names = {"spider - zoo_mean": "measured: this recipe minus the average-rank prior (Kendall tau, LOTO)",
             "spider@unrelated_labels - spider": "measured: wrong class names minus right ones (how much the "
                                                 "class names move the ranking)",
             "spider@prior_only - spider": "measured: without any task input minus with them"}
    return {label: f"{boot[key]['mean']:+.3f} (95 % interval {boot[key]['low']:+.3f} to {boot[key]['high']:+.3f}, "
                   f"{boot[key]['targets']} targets; benchmarks/HUBZOO.md)"
            for key, label in names.items() if key in boot}


def build(side: str, out: Path | None = None) -> Path:
    """Train on every target of ``side`` and save the selector; returns its folder."""
    data = load_side(side)
    recipe = Recipe()
    targets = list(data.records.targets)
    inputs = model_side(data)
    model = fit(data, inputs, targets, None, recipe)
    network, epochs = None, model.choice["epochs"]
    if not model.nets:
        inner: dict[int, float] = {}  # best inner tau of each trained epoch count, over the network weights > 0
        for key, tau in model.choice["inner_tau"].items():
            e, lam = key.split("/")
            if int(e) and float(lam):
                inner[int(e)] = max(inner.get(int(e), -1.0), tau)
        epochs = max(inner, key=inner.get) if inner else max(recipe.epoch_grid)
        network = train_meta_spider(training_tasks(data, targets), data.features, fitness_config=recipe.fitness,
                                    config=_net_config(recipe, epochs, 0), offsets=_offsets(
                                        data, inputs, targets, None, model.linear))
    training = {
        "data": "TransferGraph fine-tuning results (Li et al., ICDE 2024), all targets: " + ", ".join(targets),
        "recipe": "benchmarks/hubzoo/build_bundled.py (average-rank prior + task inputs + fitness network, ListMLE)",
        "reads": "the dataset's class names (MiniLM embeddings) and each model's metadata; no images or texts",
        "inputs kept (leave-one-target-out)": model.choice["groups"] or "none",
        "inner gain of each input alone (Kendall tau)": model.choice["inner_gain_alone"],
        "network epochs / weight (leave-one-target-out)": f"{model.choice['epochs']} / {model.network_weight}",
        "network": f"{len(model.nets)} seed(s) in the score" if model.nets else "trained, weight 0 in the score",
        **measured_effects(side),
        **{k: v for k, v in asdict(_net_config(recipe, epochs, 0)).items() if k != "probe_epochs"},
    }
    selector = make_selector(data, model, targets, training, network)
    folder = out or BUNDLED / f"hubzoo-{side}"
    if folder.exists():
        shutil.rmtree(folder)
    selector.save_pretrained(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    logger.info("%s: %d models, choice %s, %.0f KB at %s", selector.config.name, len(selector.zoo), model.choice,
                size / 1024, folder)
    return folder


def refresh_effects(side: str, folder: Path | None = None) -> Path:
    """Re-save a built selector with the benchmark's current measured effects in its card (nothing retrained)."""
    folder = folder or BUNDLED / f"hubzoo-{side}"
    selector = SpiderSelector.from_pretrained(folder, token_source="mirror")
    selector.config.training.update(measured_effects(side))
    selector.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["image", "text", "both"], default="both")
    parser.add_argument("--effects-only", action="store_true",
                        help="only refresh the measured effects (from benchmarks/hubzoo.json) in the saved card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    for side in ["image", "text"] if args.side == "both" else [args.side]:
        print(refresh_effects(side) if args.effects_only else build(side))


if __name__ == "__main__":
    main()
