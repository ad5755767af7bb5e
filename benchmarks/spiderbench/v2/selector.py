"""The SpiderBench v2 selector, trained on the measured fine-tuning of the training tasks.

    python -m benchmarks.spiderbench.v2.selector --modality image      # cross-validate, fit, save (+ the bundle)

Score of zoo model ``m`` on a task: ``prior_m + lam * fitness_m(task) / sigma`` (``hf_spider.task_inputs`` with
``prior_scale = 1``): ``prior_m`` is the model's mean rank-normalised accuracy over the training tasks, ``fitness``
the attention network over (model token, task prototypes) trained with ListMLE on the measured accuracies, and
``sigma`` the typical spread of its scores across the zoo. Every setting (the network's epochs, ``lam``) is chosen
by **leave-one-class-group-out** cross-validation over the training tasks: a task's primary group is the group most
of its classes come from (a source; glyphs by script); fold ``g`` validates on the tasks whose primary group is
``g`` and trains on the tasks with *no* class of ``g``, so no validation class was ever seen in training. Targets
are never read here. ``lam = 0`` (the prior alone) is kept unless the network raises the cross-validated mean
weighted tau by ``TOLERANCE``.

The cross-validation also gives every training task an out-of-fold score, which the cascade's fusion weights are
fitted on (``report.py``), so those weights never see a score made with the task in training.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..common import WORK, read_json, save_selector, set_threads, write_json
from .ground_truth import SEEDS, seed_accuracies, zoo
from .tasks import all_tasks, class_group

logger = logging.getLogger("spiderbench.v2.selector")

# the task encoder of each side: an ``encoders.py`` variant (image) or a zoo model whose train-split features the
# ground truth caches (text). Images: Lite0 at 32 px, chosen for speed (issue 14, item 6; RESULTS.md has the cost in
# tau of each encoder). ENCODER_ID: the same encoder as a user's selector loads it, through the library.
ENCODER = {"image": "lite0-32", "text": "all-minilm-l6-v2"}
ENCODER_ID = {"image": "hf-spider/efficientnet-lite0-32px", "text": "sentence-transformers/all-MiniLM-L6-v2"}
EPOCHS = 200  # upper bound of the epoch curve
LAMBDAS = (0.0, 0.05, 0.1, 0.2, 0.4, 1.0, 2.0, 5.0, float("inf"))  # network weight in prior units; inf: network alone
LABEL_ESTIMATORS = ("leep", "nce", "gbc", "parc", "transrate")  # the ablation's labels (v1's)
CASCADE_ESTIMATORS = ("logme", "parc", "leep", "nce")  # the cascade's candidates (cheap at 1280-d)
# spider's own cost in zoo forward passes (encoder load + pass + scoring): measured 0.7 (SPEED.md) to 1.35 (the
# report's timing loop on a loaded machine) passes of the mean zoo model; budgeted as 2
SPIDER_PASSES = 2
TOLERANCE = 0.005  # cross-validated mean-tau gain the network must show to be kept
OUT = WORK / "v2" / "selector"
BUNDLE = Path(__file__).resolve().parents[3] / "hf_spider" / "bundled"
NAME = "hf-spider/spiderbench-{}"


@dataclass
class Item:
    """One training task: its class-group structure, encoder prototypes and measured accuracies."""

    name: str
    groups: frozenset[str]  # every class group it draws from
    primary: str  # the group most of its classes come from
    prototypes: torch.Tensor  # (C, d)
    accuracy: np.ndarray  # (M,) mean over the measured seeds
    seeds: int


def prototypes(modality: str, task: str, encoder: str | None = None) -> torch.Tensor:
    """Class means of the task encoder's features of the task's train split. ``(C, d)``.

    ``encoder``: a variant of ``encoders.py`` (its cached features) instead of the default encoder, for the
    speed-vs-tau ablation of item 6.
    """
    from hf_spider.tokens import class_prototypes

    from .encoders import read_features
    from .estimates import load_features

    encoder = encoder or ENCODER[modality]
    z = read_features(encoder, task) if modality == "image" else load_features(modality, task, encoder)
    return class_prototypes(torch.from_numpy(z["features"]).float(), z["labels"], int(z["labels"].max()) + 1)


def measured(modality: str, task: str) -> np.ndarray | None:
    """``(seeds, M)`` accuracies over the seeds measured for every model so far (None if not even one)."""
    rows = [a for s in SEEDS if (a := seed_accuracies(modality, task, [s])) is not None]
    return np.concatenate(rows) if rows else None


def training_items(modality: str, labels: str = "measured", encoder: str | None = None) -> list[Item]:
    """Every training task with at least one seed measured for the whole zoo and its encoder features cached.

    ``labels="estimators"`` (the ablation, v1's way) replaces the measured accuracies by the mean rank of the
    ``LABEL_ESTIMATORS`` on the task's train split, i.e. what the zoo's forward passes say without fine-tuning.
    """
    items = []
    for spec in all_tasks(modality, "train"):
        acc = measured(modality, spec.name)
        if acc is None:
            continue
        groups = [class_group(r) for r in spec.classes]
        target = acc.mean(0) if labels == "measured" else estimator_labels(modality, spec.name)
        items.append(Item(spec.name, frozenset(groups), Counter(groups).most_common(1)[0][0],
                          prototypes(modality, spec.name, encoder), target, len(acc)))
    return items


def estimator_labels(modality: str, task: str) -> np.ndarray:
    """The estimator-aggregate label of a task: mean rank over ``LABEL_ESTIMATORS`` (NaN scores rank last)."""
    from hf_spider.estimators import aggregate_rankings

    from .estimates import estimator_scores

    scores = {n: estimator_scores(modality, task, n)[0] for n in LABEL_ESTIMATORS}
    return aggregate_rankings({n: np.nan_to_num(s, nan=-1e30) for n, s in scores.items()})


def rank_normalise(acc: np.ndarray) -> np.ndarray:
    """Per task (row), each model's rank in [0, 1] (1 = best; ties share the mean rank)."""
    from scipy.stats import rankdata

    acc = np.atleast_2d(acc)
    return (rankdata(acc, axis=1) - 1) / max(acc.shape[1] - 1, 1)


def prior(items: list[Item]) -> np.ndarray:
    """Each model's mean rank-normalised accuracy over ``items``. ``(M,)``."""
    return rank_normalise(np.stack([i.accuracy for i in items])).mean(0)


def train_network(items: list[Item], num_models: int, *, epochs: int, val: list[Item] | None = None, seed: int = 0):
    """ListMLE on measured accuracies; with ``val``, the val-tau curve is recorded (``history``) for every epoch."""
    from hf_spider.fitness import FitnessConfig
    from hf_spider.training import TrainingConfig, TrainingTask, train_spider

    def tasks(group: list[Item]) -> list:
        return [TrainingTask(i.name, i.prototypes, torch.as_tensor(i.accuracy, dtype=torch.float32)) for i in group]

    fitness = FitnessConfig(task_dim=items[0].prototypes.shape[1], token_dim=64, num_heads=4, num_layers=2)
    config = TrainingConfig(epochs=epochs, batch_size=16, lr=2e-3, patience=epochs + 1, seed=seed)
    return train_spider(tasks(items), num_models=num_models, fitness_config=fitness, config=config,
                        val_tasks=tasks(val) if val else [], verbose=False)


def network_scores(result, items: list[Item]) -> np.ndarray:
    """The trained network's score of every model on every task. ``(T, M)``."""
    with torch.no_grad():
        return np.stack([result.fitness(result.model_tokens, i.prototypes.unsqueeze(0))[0].numpy() for i in items])


def folds(items: list[Item]) -> list[tuple[str, list[int], list[int]]]:
    """``(group, train indices, validation indices)``: validate on the group's tasks, train on tasks without it."""
    out = []
    for g in sorted({i.primary for i in items}):
        val = [k for k, i in enumerate(items) if i.primary == g]
        train = [k for k, i in enumerate(items) if g not in i.groups]
        if train and val:
            out.append((g, train, val))
    return out


def combine(prior_: np.ndarray, net: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """``prior + lam * net / sigma`` (``lam = inf``: the network alone)."""
    return net if np.isinf(lam) else prior_ + lam * net / sigma


def spread(net: np.ndarray) -> float:
    """Typical spread of the network's scores across the zoo (mean over tasks of the per-task std)."""
    return float(np.mean(net.std(axis=1))) or 1.0


def mean_tau(truth: np.ndarray, scores: np.ndarray) -> float:
    from hf_spider.evaluation import weighted_tau

    return float(np.mean([weighted_tau(t, s) for t, s in zip(truth, scores)]))


def cross_validate(items: list[Item], num_models: int, *, epochs: int = EPOCHS) -> dict:
    """The leave-one-class-group-out choices and every training task's out-of-fold scores."""
    truth = np.stack([i.accuracy for i in items])
    split = folds(items)
    curves = []
    for g, tr, va in split:  # pass 1: the validation curve over epochs, per fold
        result = train_network([items[k] for k in tr], num_models, epochs=epochs, val=[items[k] for k in va])
        curves.append([h["val_weighted_tau"] for h in result.history])
        logger.info("fold %s: %d train / %d val tasks, best epoch %d (val tau %.3f)", g, len(tr), len(va),
                    result.best_epoch, result.best_val_tau)
    weights = np.array([len(va) for _, _, va in split], dtype=float)
    curve = (np.array(curves) * weights[:, None]).sum(0) / weights.sum()  # mean over validation tasks
    best_epochs = int(np.argmax(curve)) + 1
    net, oof_prior, sigma = np.zeros_like(truth), np.zeros_like(truth), np.zeros(len(items))
    for g, tr, va in split:  # pass 2: out-of-fold scores at the chosen epoch count
        result = train_network([items[k] for k in tr], num_models, epochs=best_epochs)
        net[va] = network_scores(result, [items[k] for k in va])
        oof_prior[va] = prior([items[k] for k in tr])
        sigma[va] = spread(network_scores(result, [items[k] for k in tr]))
    by_lambda = {}
    for lam in LAMBDAS:
        scores = np.stack([combine(p, n, lam, s) for p, n, s in zip(oof_prior, net, sigma)])
        by_lambda[str(lam)] = mean_tau(truth, scores)
    best = max(LAMBDAS, key=lambda lam: by_lambda[str(lam)])
    lam = best if by_lambda[str(best)] >= by_lambda["0.0"] + TOLERANCE else 0.0
    oof = np.stack([combine(p, n, lam, s) for p, n, s in zip(oof_prior, net, sigma)])
    return {"folds": [{"group": g, "train": len(tr), "val": len(va)} for g, tr, va in split],
            "epoch_curve": [round(float(v), 4) for v in curve], "epochs": best_epochs,
            "tau_by_lambda": {k: round(v, 4) for k, v in by_lambda.items()},
            "lambda": lam if np.isfinite(lam) else "inf",  # JSON has no infinity
            "tau_prior": by_lambda["0.0"], "tau_chosen": mean_tau(truth, oof),
            "oof_scores": {i.name: s.tolist() for i, s in zip(items, oof)},
            "oof_network": {i.name: s.tolist() for i, s in zip(items, net)}}


def fit(modality: str, items: list[Item], cv: dict):
    """The selector on every training task with the cross-validated settings."""
    from hf_spider.hub import ZooEntry, mirror_name
    from hf_spider.selector import SelectorConfig, SpiderSelector
    from hf_spider.task_inputs import TaskInputs, TaskInputsConfig
    from hf_spider.tokens import token_sha256

    models, _ = zoo(modality)
    result = train_network(items, len(models), epochs=cv["epochs"])
    sigma = spread(network_scores(result, items))
    lam = float(cv["lambda"])
    inputs = TaskInputsConfig(prior_scale=0.0 if np.isinf(lam) else 1.0, shrinkage=1.0,
                              network_weight=1.0 if np.isinf(lam) else lam / sigma,
                              chosen_by="leave-one-class-group-out CV over SpiderBench v2 training tasks "
                                        f"(epochs {cv['epochs']}, lambda {cv['lambda']})")
    config = SelectorConfig(name=NAME.format(modality), modality=modality,
                            task_encoder=ENCODER_ID[modality], shots_per_class=16,
                            fitness=result.fitness.config, task_inputs=asdict(inputs))
    labels = ("measured fine-tuning (SpiderBench v2)" if cv.get("labels", "measured") == "measured"
              else "estimator-aggregate labels (ablation)")
    config.training = {"labels": labels, "task encoder features": cv.get("encoder", ENCODER[modality]),
                       "training tasks": len(items),
                       "seeds per task": sorted({i.seeds for i in items}), "epochs": cv["epochs"],
                       "validation": "leave-one-class-group-out over training tasks",
                       "cross-validated weighted tau": round(cv["tau_chosen"], 4),
                       "cross-validated weighted tau, prior alone": round(cv["tau_prior"], 4)}
    task_inputs = TaskInputs(inputs, torch.as_tensor(prior(items), dtype=torch.float32), torch.zeros(0), {})
    entries = [ZooEntry(model_id=f"spiderbench/{m}", revision=None, task_type=f"{modality}-classification",
                        token_sha256=token_sha256(t), mirror=mirror_name(f"spiderbench/{m}"))
               for m, t in zip(models, result.model_tokens)]
    return SpiderSelector(config, result.fitness, entries, result.model_tokens, task_inputs=task_inputs)


def fit_cascade_weights(modality: str, cv: dict):
    """The cascade's estimator, fusion weights and default k (``hf_spider.cascade.CascadeConfig``), all from the
    training tasks' out-of-fold selector scores and measured accuracies: no score made with a task in training.

    Per estimator of ``CASCADE_ESTIMATORS``, ``fit_cascade`` learns a weight for every k; the default k is the best
    training tau among the k whose cost stays within a third of the estimator's (M forward passes): k passes plus
    spider's own, ``SPIDER_PASSES``, ≤ M/3. The estimator is the one with the best tau there.
    """
    from hf_spider.cascade import fit_cascade

    from .estimates import estimator_scores

    names = cv["tasks"]
    token = np.array([cv["oof_scores"][t] for t in names])
    truth = np.stack([measured(modality, t).mean(0) for t in names])
    num_models = token.shape[1]
    fits = {}
    for name in CASCADE_ESTIMATORS:
        est = np.nan_to_num(np.stack([estimator_scores(modality, t, name)[0] for t in names]), nan=-1e30)
        config, curve = fit_cascade(token, est, truth, estimator=name)
        affordable = range(1, max(1, num_models // 3 - SPIDER_PASSES) + 1)
        best_k = max(affordable, key=lambda k: (curve["best_tau"][k], -k))
        fits[name] = (config, curve, best_k)
    chosen = max(fits, key=lambda n: fits[n][1]["best_tau"][fits[n][2]])
    config, _, best_k = fits[chosen]
    config.default_k = best_k
    config.trained_on.update({
        "chosen_by": "training tasks' out-of-fold selector scores; default k: best among k <= M/3 - "
                     f"{SPIDER_PASSES} (a third of the estimator's cost, spider's own included); estimator: best of "
                     f"{list(CASCADE_ESTIMATORS)} there",
        "by_estimator": {n: {"default_k": k, "weighted_tau_by_k": {str(j): round(v, 4)
                                                                   for j, v in c["best_tau"].items()}}
                         for n, (_, c, k) in fits.items()}})
    return config


def _variant(labels: str, encoder: str | None) -> str:
    return "".join([f"-{labels}-labels" if labels != "measured" else "", f"-encoder-{encoder}" if encoder else ""])


def cv_path(modality: str, labels: str = "measured", encoder: str | None = None) -> Path:
    return OUT / modality / f"cv{_variant(labels, encoder)}.json"


def selector_path(modality: str, labels: str = "measured", encoder: str | None = None) -> Path:
    return OUT / modality / f"selector{_variant(labels, encoder)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=["image", "text"], default="image")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--no-bundle", action="store_true", help="save to .work only, not to hf_spider/bundled")
    parser.add_argument("--labels", choices=["measured", "estimators"], default="measured",
                        help="estimators: the ablation trained on estimator-aggregate labels (never bundled)")
    parser.add_argument("--encoder", help="a task-encoder variant of encoders.py (ablation; never bundled)")
    parser.add_argument("--fit-only", action="store_true", help="reuse the saved cross-validation; fit and save")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    items = training_items(args.modality, args.labels, args.encoder)
    if not items:
        raise SystemExit("No training task has measured ground truth yet; run v2.ground_truth --role train.")
    logger.info("%d training tasks (seeds: %s)", len(items), dict(Counter(i.seeds for i in items)))
    models, _ = zoo(args.modality)
    if args.fit_only:
        cv = load_cv(args.modality, args.labels, args.encoder)
        if cv["tasks"] != [i.name for i in items]:
            raise SystemExit("The training tasks changed since the saved cross-validation; run without --fit-only.")
    else:
        cv = cross_validate(items, len(models), epochs=args.epochs)
        cv["tasks"] = [i.name for i in items]
        cv["labels"] = args.labels
        cv["encoder"] = args.encoder or ENCODER[args.modality]
        write_json(cv_path(args.modality, args.labels, args.encoder), cv)
    logger.info("chosen: %d epochs, lambda %s; CV tau %.4f (prior alone %.4f)", cv["epochs"], cv["lambda"],
                cv["tau_chosen"], cv["tau_prior"])
    selector = fit(args.modality, items, cv)
    if args.labels == "measured" and not args.encoder:
        selector.config.cascade = fit_cascade_weights(args.modality, cv).to_dict()
    ablation = args.labels != "measured" or args.encoder
    bundle = None if args.no_bundle or ablation else BUNDLE / f"spiderbench-{args.modality}"
    save_selector(selector, selector_path(args.modality, args.labels, args.encoder), bundle)
    print(json.dumps({k: v for k, v in cv.items() if not k.startswith("oof")}, indent=1))


def load_cv(modality: str, labels: str = "measured", encoder: str | None = None) -> dict:
    return read_json(cv_path(modality, labels, encoder))


if __name__ == "__main__":
    main()
