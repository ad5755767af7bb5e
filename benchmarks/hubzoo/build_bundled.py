"""Build the bundled Hub-zoo selectors ``hf_spider/bundled/hubzoo-{image,text}/`` from ALL targets' results.

    python -m benchmarks.hubzoo.build_bundled [--side image|text|both]

Same recipe as the benchmark's ``spider`` (``benchmarks.hubzoo.run.SpiderRecipe``): metadata model tokens plus the
all-targets accuracy prior as a token feature, fitness network of token_dim 32; the epoch count is chosen by an
inner leave-one-out on the targets. One seed (a selector holds one network; the benchmark averages two). The stored
tokens are the per-model outputs of the metadata token encoder (+ residual): plain free vectors, one per model of
the records, so ``SpiderSelector.from_pretrained`` needs nothing from this module. Deterministic on CPU.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from hf_spider import hub
from hf_spider.model_meta import MetaTrainingConfig, train_meta_spider
from hf_spider.selector import SelectorConfig, SpiderSelector
from hf_spider.tokens import token_sha256

from .common import LABEL_PROMPT, TEXT_ENCODER, load_side, training_tasks
from .run import SpiderRecipe, choose_epochs, spider_features

logger = logging.getLogger(__name__)
BUNDLED = Path(__file__).resolve().parents[2] / "hf_spider" / "bundled"


def build(side: str, out: Path | None = None) -> Path:
    """Train on every target of ``side`` and save the selector; returns its folder."""
    data = load_side(side)
    recipe = SpiderRecipe()
    targets = list(data.records.targets)
    choice = choose_epochs(data, targets, None, recipe)
    features = spider_features(data, targets, None)
    config = MetaTrainingConfig(**{**asdict(recipe.training), "epochs": choice["epochs"], "seed": 0})
    result = train_meta_spider(training_tasks(data, targets), features, fitness_config=recipe.fitness,
                               config=config)
    name = f"hf-spider/hubzoo-{side}"
    selector_config = SelectorConfig(
        name=name, modality=side, task_encoder=TEXT_ENCODER, task_token_kind="label_names",
        label_prompt=LABEL_PROMPT[side], fitness=recipe.fitness,
        training={
            "data": "TransferGraph fine-tuning results (Li et al., ICDE 2024), all targets: " + ", ".join(targets),
            "recipe": "benchmarks/hubzoo/build_bundled.py (metadata model tokens + accuracy prior, ListMLE)",
            "epochs (inner leave-one-out)": choice["epochs"],
            "inner tau": {str(k): round(v, 4) for k, v in choice["inner_tau"].items()},
            **{k: v for k, v in asdict(config).items() if k != "probe_epochs"},
        },
    )
    tokens = result.model_tokens.detach().clone()  # (M, D)
    entries = [hub.ZooEntry(model_id=m, revision=None, task_type=f"{side}-classification",
                            token_sha256=token_sha256(tok), mirror=hub.mirror_name(m))
               for m, tok in zip(data.records.models, tokens)]
    selector = SpiderSelector(selector_config, result.fitness, entries, tokens)
    folder = out or BUNDLED / f"hubzoo-{side}"
    if folder.exists():
        shutil.rmtree(folder)
    selector.save_pretrained(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    logger.info("%s: %d models, epochs %d, %.0f KB at %s", name, len(entries), choice["epochs"], size / 1024, folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["image", "text", "both"], default="both")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    for side in ["image", "text"] if args.side == "both" else [args.side]:
        print(build(side))


if __name__ == "__main__":
    main()
