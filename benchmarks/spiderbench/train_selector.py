"""Train the default SpiderBench image selector on sampled training tasks.

    python -m benchmarks.spiderbench.train_selector features   # zoo features of the training pool (resumable)
    python -m benchmarks.spiderbench.train_selector labels     # estimator scores per training task (resumable)
    python -m benchmarks.spiderbench.train_selector train      # ListMLE training, saves the selector

Training tasks are class subsets of the *training-side* pool (``tasks.training_pool``), never of target sources.
A task's label is the zoo's approximated performance (Model Spider's recipe for tasks without fine-tuning results):
the mean rank of ``LABEL_ESTIMATORS``, computed on the pool features of each model (PCA to ``LABEL_DIM`` dimensions
per model for the feature-based estimators, to fit a 2-core budget). The task token is the class prototypes of the
task encoder, ``efficientnet-lite0-64px`` (the converted ImageNet Lite0 base).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from .build_zoo import ZOO
from .common import (
    FEATURE_DIR,
    HERE,
    WORK,
    ZOO_DIR,
    pca,
    read_json,
    save_selector,
    score_zoo,
    set_threads,
    task_indices,
    write_json,
)
from .finetune import features_and_probs, load, trunk_outputs
from .tasks import POOL_PER_CLASS, sample_training_tasks, training_pool

logger = logging.getLogger(__name__)

TASK_ENCODER = "efficientnet-lite0-64px"
NUM_TASKS = 240
LABEL_ESTIMATORS = ["leep", "nce", "gbc", "parc", "transrate"]  # the fast ones; LogME took 0.5 s per call here
LABEL_DIM = 128
LABEL_SHOTS = 10  # images per class an estimator reads for a training task
SELECTOR_NAME = "hf-spider/spiderbench-image"
# shipped in the package (`bundled:spiderbench-image`): fitness network + tokens; its task encoder is converted from
# the pip-installed Lite0 weights on first use (hf_spider.lite), so ranking with it needs no network
BUNDLE_DIR = HERE.parents[1] / "hf_spider" / "bundled" / "spiderbench-image"


def pool() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    path = WORK / "pool.npz"
    if not path.is_file():
        x, y, names, sources = training_pool()
        tmp = WORK / "pool.tmp.npz"
        np.savez_compressed(tmp, x=x, y=y, names=np.array(names), sources=np.array(sources))
        tmp.replace(path)
    z = np.load(path)
    return z["x"], z["y"], [str(s) for s in z["names"]], [str(s) for s in z["sources"]]


def pool_features(model_name: str) -> dict[str, np.ndarray]:
    path = FEATURE_DIR / "pool" / f"{model_name}.npz"
    if not path.is_file():
        x, _, _, _ = pool()
        model = load(ZOO_DIR / model_name)
        feats, probs = features_and_probs(model, trunk_outputs(model, x))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=feats, source_probs=probs)
        logger.info("pool features of %s: %s", model_name, feats.shape)
    z = np.load(path)
    return {"features": z["features"], "source_probs": z["source_probs"]}


def labels_step() -> None:
    _, y, _, sources = pool()
    tasks = sample_training_tasks(sources, NUM_TASKS, seed=0)
    zoo = {m: pool_features(m) for m in ZOO}
    reduced = {m: pca(z["features"], LABEL_DIM) for m, z in zoo.items()}
    out_dir = WORK / "train_labels"
    for t, classes in enumerate(tasks):
        path = out_dir / f"task{t:03d}.json"
        if path.is_file():
            continue
        idx = task_indices(classes, y, LABEL_SHOTS, seed=t)
        labels = np.unique(y[idx], return_inverse=True)[1]
        scores = {name: score_zoo(name, [reduced[m][idx] for m in ZOO], labels,
                                  [zoo[m]["source_probs"][idx] for m in ZOO]) for name in LABEL_ESTIMATORS}
        write_json(path, {"classes": list(classes), "scores": scores, "zoo": ZOO})
        if t % 20 == 0:
            logger.info("labels: task %d/%d", t, len(tasks))


def training_tasks(rerank: bool = False, models: list[int] | None = None):
    """The labelled training tasks; with ``rerank``, each also holds every zoo model's own class prototypes (the
    re-ranking stage's input), from the same pool images as its task token. ``models`` keeps a subset of the zoo
    (by index, in that order), with the labels aggregated over that subset only."""
    from hf_spider.estimators import aggregate_rankings
    from hf_spider.tokens import standardized_prototypes
    from hf_spider.training import TrainingTask

    _, y, names, sources = pool()
    encoder = pool_features(TASK_ENCODER)["features"]
    keep = list(range(len(ZOO))) if models is None else list(models)
    zoo_features = [torch.from_numpy(pool_features(ZOO[m])["features"]) for m in keep] if rerank else []
    tasks = []
    for path in sorted((WORK / "train_labels").glob("task*.json")):
        rec = read_json(path)
        if rec["zoo"] != ZOO:
            raise SystemExit(f"{path} was scored for another zoo; delete .work/train_labels and rerun `labels`.")
        classes = rec["classes"]
        protos = np.stack([encoder[y == c][:POOL_PER_CLASS].mean(0) for c in classes])  # (C, 1280)
        perf = aggregate_rankings({k: np.asarray(v)[keep] for k, v in rec["scores"].items()})  # higher = better
        name = "train:" + "+".join(names[c] for c in classes)
        rows = np.concatenate([np.flatnonzero(y == c)[:POOL_PER_CLASS] for c in classes])
        task_labels = np.repeat(np.arange(len(classes)), [min(POOL_PER_CLASS, int((y == c).sum())) for c in classes])
        ptm = {m: standardized_prototypes(f[rows], task_labels, len(classes)) for m, f in enumerate(zoo_features)}
        tasks.append(TrainingTask(name, torch.from_numpy(protos), torch.as_tensor(perf, dtype=torch.float32),
                                  ptm_prototypes=ptm))
    return tasks


def ptm_widths() -> list[int]:
    return sorted({int(pool_features(m)["features"].shape[1]) for m in ZOO})


def settings(epochs: int = 300, seed: int = 0, rerank_prob: float = 0.0):
    """The selector's network and training settings: the shipped selector's, and what ``add_model.py``'s
    leave-one-model-out retrains with (token-only: ``rerank_prob=0``)."""
    from hf_spider.fitness import FitnessConfig
    from hf_spider.training import TrainingConfig

    fitness = FitnessConfig(task_dim=1280, token_dim=64, num_heads=4, num_layers=2,
                            ptm_widths=ptm_widths() if rerank_prob > 0 else [])
    training = TrainingConfig(epochs=epochs, batch_size=16, lr=2e-3, patience=40, seed=seed, rerank_prob=rerank_prob,
                              rerank_max_k=len(ZOO))
    return fitness, training


def train_step(epochs: int, seed: int = 0, out_name: str | None = None, rerank_prob: float = 0.0) -> None:
    """Train and save; the default run (seed 0, no ``out_name``) also writes the bundled copy."""
    from hf_spider.selector import SelectorConfig, SpiderSelector

    tasks = training_tasks(rerank=rerank_prob > 0)
    logger.info("%d training tasks", len(tasks))
    fitness, training = settings(epochs, seed, rerank_prob)
    config = SelectorConfig(name=SELECTOR_NAME, modality="image", task_encoder=f"hf-spider/{TASK_ENCODER}",
                            shots_per_class=16, fitness=fitness)
    selector = SpiderSelector.train(tasks, config=config, zoo=[f"spiderbench/{m}" for m in ZOO], training=training,
                                    verbose=False)
    save_selector(selector, WORK / (out_name or "selector"), None if out_name else BUNDLE_DIR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["features", "labels", "train"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="train: seed (variance runs)")
    parser.add_argument("--out-name", help="train: save only to .work/<name>, not to the bundle")
    parser.add_argument("--rerank-prob", type=float, default=0.5,
                        help="train: share of batches trained with the re-ranking stage (0: token-only selector)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    if args.step == "features":
        for m in ZOO:
            if any((ZOO_DIR / m / f).is_file() for f in ("conversion.json", "train_info.json")):
                pool_features(m)
    elif args.step == "labels":
        labels_step()
    else:
        train_step(args.epochs, args.seed, args.out_name, args.rerank_prob)


if __name__ == "__main__":
    main()
