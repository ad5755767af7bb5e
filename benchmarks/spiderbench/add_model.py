"""Leave-one-model-out on SpiderBench: how well a model added *after* training is ranked, against retraining.

    python -m benchmarks.spiderbench.add_model          # ~1 min per zoo model on 2 cores; resumes per model

For each zoo model j: train a selector on the other M-1 models (same tasks, labels aggregated over those M-1, same
settings and seed as the default token-only selector), then give j a token three ways and rank the full zoo on every
target task against the measured ground truth:

- ``retrained``: the selector trained with j in the zoo from the start (one for all j: ``.work/selector-token-only``,
  from ``train_selector train --rerank-prob 0 --out-name selector-token-only``);
- ``add_model``: ``fit_model_token`` with the network frozen, on ``PROBE_TASKS`` training tasks whose estimator
  labels include j (what ``selector.probe_tasks`` computes for new datasets);
- ``cold_start``: no labels, no optimisation: CKA-weighted mean of j's 3 nearest zoo tokens, from features of
  ``PROBE_IMAGES`` unlabelled pool images;
- ``average``: the mean of the M-1 tokens, the floor a method must beat.

Reports mean weighted tau and top-1 regret over targets, and the placement error of j (|true rank - predicted rank|
among the M on each target); writes ``benchmarks/spiderbench/ADD_MODEL.md`` and ``add_model.json``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from .build_zoo import ZOO
from .common import GT_DIR, HERE, WORK, measured_accuracies, read_json, set_threads, write_json
from .rerank import target_prototypes
from .tasks import TARGETS
from .train_selector import pool_features, settings, training_tasks

logger = logging.getLogger(__name__)
PROBE_TASKS = 40
PROBE_IMAGES = 256
OUT = WORK / "add_model"
METHODS = ["retrained", "add_model", "cold_start", "average"]


def ground_truth_matrix() -> np.ndarray:
    rows = [measured_accuracies(GT_DIR, t.name, ZOO) for t in TARGETS]
    if any(r is None for r in rows):
        raise SystemExit("Ground truth is incomplete; finish it first (benchmarks/spiderbench/gt_loop.sh).")
    return np.array(rows)


def _train_without(j: int):
    from hf_spider.training import train_spider

    keep = [m for m in range(len(ZOO)) if m != j]
    fitness, training = settings()  # the token-only selector's settings, as the `retrained` reference
    return train_spider(training_tasks(models=keep), num_models=len(keep), fitness_config=fitness, config=training,
                        verbose=False), keep


def _insert(tokens: torch.Tensor, token: torch.Tensor, j: int) -> torch.Tensor:
    """Zoo-order tokens with j's token back in its place."""
    return torch.cat([tokens[:j], token.unsqueeze(0), tokens[j:]])


def tokens_for(j: int) -> dict:
    """j's token by each method, with the M-1 selector it goes with (cached per model as JSON)."""
    from hf_spider.cold_start import cold_start_token
    from hf_spider.training import TrainingTask, fit_model_token

    result, keep = _train_without(j)
    all_tasks = training_tasks()  # labels over the full zoo: the probe tasks' estimator ranking includes j
    pick = np.random.default_rng(j).choice(len(all_tasks), PROBE_TASKS, replace=False)
    probes = [TrainingTask(all_tasks[i].name, all_tasks[i].prototypes,
                           torch.cat([all_tasks[i].performance[keep], all_tasks[i].performance[[j]]])) for i in pick]
    start = time.perf_counter()
    fitted = fit_model_token(result.fitness, result.model_tokens, probes, steps=300, seed=0)
    fit_seconds = time.perf_counter() - start
    rows = np.random.default_rng(0).choice(len(pool_features(ZOO[0])["features"]), PROBE_IMAGES, replace=False)
    feats = [torch.from_numpy(pool_features(ZOO[m])["features"][rows]) for m in keep]
    start = time.perf_counter()
    cold = cold_start_token(torch.from_numpy(pool_features(ZOO[j])["features"][rows]), feats, result.model_tokens)
    cold_seconds = time.perf_counter() - start
    return {"fitness": result.fitness, "tokens": result.model_tokens,
            "add_model": fitted, "cold_start": cold, "average": result.model_tokens.mean(0),
            "fit_seconds": fit_seconds, "cold_seconds": cold_seconds}


def evaluate_model(j: int, prototypes: list[torch.Tensor], gt: np.ndarray, reference: np.ndarray) -> dict:
    from hf_spider.evaluation import regret_at_k, weighted_tau
    from hf_spider.training import score_tasks

    got = tokens_for(j)
    scores = {"retrained": reference}
    for method in ("add_model", "cold_start", "average"):
        scores[method] = score_tasks(got["fitness"], _insert(got["tokens"], got[method], j), prototypes).numpy()
    out = {"model": ZOO[j], "fit_seconds": got["fit_seconds"], "cold_seconds": got["cold_seconds"]}
    for method, s in scores.items():
        true_rank = (gt > gt[:, [j]]).sum(1)
        pred_rank = (s > s[:, [j]]).sum(1)
        out[method] = {"weighted_tau": float(np.mean([weighted_tau(g, p) for g, p in zip(gt, s)])),
                       "regret": float(np.mean([regret_at_k(g, p, 1) for g, p in zip(gt, s)])),
                       "placement_error": float(np.abs(true_rank - pred_rank).mean())}
    return out


def render(rows: list[dict]) -> str:
    lines = ["# Adding a model without retraining: leave-one-model-out on SpiderBench", "",
             "Produced by `python -m benchmarks.spiderbench.add_model` (method in its docstring). Each zoo model in "
             f"turn is left out of training and added afterwards; {len(TARGETS)} target tasks, measured ground "
             f"truth; add_model uses {PROBE_TASKS} estimator-labelled probe tasks, cold start {PROBE_IMAGES} "
             "unlabelled images.", "",
             "## Mean over the 15 left-out models", "",
             "| method | weighted τ (full zoo) | top-1 regret | placement error of the added model (ranks) |",
             "|---|---|---|---|"]
    for method in METHODS:
        vals = {k: np.mean([r[method][k] for r in rows]) for k in ("weighted_tau", "regret", "placement_error")}
        lines.append(f"| {method} | {vals['weighted_tau']:.3f} | {vals['regret']:.1f} | "
                     f"{vals['placement_error']:.2f} |")
    lines += ["", f"Seconds to place a model (excluding forward passes): add_model "
                  f"{np.mean([r['fit_seconds'] for r in rows]):.1f}, cold start "
                  f"{np.mean([r['cold_seconds'] for r in rows]):.3f}.", "",
              "## Placement error per left-out model", "", "| model | " + " | ".join(METHODS) + " |",
              "|---" * (len(METHODS) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[m]['placement_error']:.2f}" for m in METHODS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    from hf_spider.selector import SpiderSelector
    from hf_spider.training import score_tasks

    prototypes = [target_prototypes(spec) for spec in TARGETS]
    gt = ground_truth_matrix()
    full = SpiderSelector.from_pretrained(WORK / "selector-token-only", token_source="mirror")
    reference = score_tasks(full.fitness, full.model_tokens, prototypes).numpy()
    rows = []
    for j, name in enumerate(ZOO):
        path = OUT / f"{name}.json"
        if not path.is_file():
            write_json(path, evaluate_model(j, prototypes, gt, reference))
            logger.info("%s done", name)
        rows.append(read_json(path))
    text = render(rows)
    (HERE / "ADD_MODEL.md").write_text(text)
    write_json(HERE / "add_model.json", rows)
    print(text)


if __name__ == "__main__":
    main()
