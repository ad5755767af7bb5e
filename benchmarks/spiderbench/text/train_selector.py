"""Train the SpiderBench text selector on sampled training-side text tasks.

    python -m benchmarks.spiderbench.text.train_selector features   # zoo + task-encoder features of the pool
    python -m benchmarks.spiderbench.text.train_selector labels     # estimator scores per training task (resumable)
    python -m benchmarks.spiderbench.text.train_selector train      # ListMLE training, saves the selector

As on the image side: training tasks are class subsets of the training-side pool (``tasks.training_pool``); a task's
label is the zoo's approximated performance, the mean rank of ``LABEL_ESTIMATORS`` on each model's pool features (PCA
to ``LABEL_DIM``). all-MiniLM-L6-v2 has no classification head, so, as ``hf_spider.score_models`` does, LEEP and NCE
(which need source-class probabilities) give it no score (NaN); its mean rank is then taken over the estimators that
scored it, each estimator's ranks rescaled to [1, M] (with every model scored this equals ``aggregate_rankings``).
The task token is the class prototypes of the library's default text task encoder, all-MiniLM-L6-v2 (mask-mean).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from ..common import pca, read_json, save_selector, score_zoo, set_threads, task_indices, write_json
from .build_zoo import ZOO
from .common import BUNDLE_DIR, FEATURE_DIR, TASK_ENCODER_ID, TEXT_WORK, ZOO_DIR, base_path
from .models import encode
from .tasks import POOL_PER_CLASS, sample_training_tasks, training_pool

logger = logging.getLogger(__name__)

NUM_TASKS = 240
LABEL_ESTIMATORS = ["leep", "nce", "gbc", "parc", "transrate"]
LABEL_DIM = 128
LABEL_SHOTS = 10
SELECTOR_NAME = "hf-spider/spiderbench-text"


def pool() -> tuple[list[str], np.ndarray, list[str], list[str]]:
    path = TEXT_WORK / "pool.json"
    if not path.is_file():
        texts, y, names, sources = training_pool()
        write_json(path, {"texts": texts, "labels": y.tolist(), "names": names, "sources": sources})
    rec = read_json(path)
    return rec["texts"], np.array(rec["labels"]), rec["names"], rec["sources"]


def pool_features(model_name: str) -> dict:
    path = FEATURE_DIR / "pool" / f"{model_name}.npz"
    if not path.is_file():
        texts = pool()[0]
        feats, probs, _ = encode(ZOO_DIR / model_name, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, features=feats, **({} if probs is None else {"source_probs": probs}))
        tmp.replace(path)
        logger.info("pool features of %s: %s", model_name, feats.shape)
    z = np.load(path)
    return {"features": z["features"], "source_probs": z["source_probs"] if "source_probs" in z.files else None}


def encoder_features() -> np.ndarray:
    """Pool features of the task encoder exactly as the selector computes them at ranking time."""
    path = FEATURE_DIR / "pool" / "task-encoder.npy"
    if not path.is_file():
        from hf_spider.tokens import TaskEncoder

        feats = TaskEncoder(base_path(), modality="text", batch_size=64).extractor(pool()[0], verbose=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, feats.numpy().astype(np.float32))
    return np.load(path)


def mean_rank(scores: dict) -> np.ndarray:
    """``aggregate_rankings`` (mean rank, higher = better), leaving out the estimators that could not score a model."""
    from scipy.stats import rankdata

    from hf_spider.estimators import aggregate_rankings

    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    if all(np.isfinite(a).all() for a in arrays.values()):
        return aggregate_rankings(arrays)
    ranks = []
    for a in arrays.values():
        ok, r = np.isfinite(a), np.full(len(a), np.nan)
        r[ok] = 1 + (rankdata(a[ok]) - 1) * (len(a) - 1) / max(ok.sum() - 1, 1)
        ranks.append(r)
    return np.nanmean(np.stack(ranks), axis=0)


def labels_step() -> None:
    _, y, _, sources = pool()
    tasks = sample_training_tasks(sources, NUM_TASKS, seed=0)
    zoo = {m: pool_features(m) for m in ZOO}
    reduced = {m: pca(z["features"], LABEL_DIM) for m, z in zoo.items()}
    for t, classes in enumerate(tasks):
        path = TEXT_WORK / "train_labels" / f"task{t:03d}.json"
        if path.is_file():
            continue
        idx = task_indices(classes, y, LABEL_SHOTS, seed=t)
        labels = np.unique(y[idx], return_inverse=True)[1]
        feats = [reduced[m][idx] for m in ZOO]
        probs = [None if zoo[m]["source_probs"] is None else zoo[m]["source_probs"][idx] for m in ZOO]
        scores = {name: score_zoo(name, feats, labels, probs) for name in LABEL_ESTIMATORS}
        write_json(path, {"classes": list(classes), "scores": scores, "zoo": ZOO})
        if t % 40 == 0:
            logger.info("labels: task %d/%d", t, len(tasks))


def training_tasks():
    from hf_spider.training import TrainingTask

    _, y, names, _ = pool()
    encoder = encoder_features()
    tasks = []
    for path in sorted((TEXT_WORK / "train_labels").glob("task*.json")):
        rec = read_json(path)
        if rec["zoo"] != ZOO:
            raise SystemExit(f"{path} was scored for another zoo; delete .work/text/train_labels and rerun `labels`.")
        classes = rec["classes"]
        protos = np.stack([encoder[y == c][:POOL_PER_CLASS].mean(0) for c in classes])  # (C, 384)
        perf = mean_rank(rec["scores"])
        name = "train:" + "+".join(names[c] for c in classes)
        tasks.append(TrainingTask(name, torch.from_numpy(protos), torch.as_tensor(perf, dtype=torch.float32)))
    return tasks


def train_step(epochs: int, seed: int = 0, out_name: str | None = None) -> None:
    from hf_spider.fitness import FitnessConfig
    from hf_spider.selector import SelectorConfig, SpiderSelector
    from hf_spider.training import TrainingConfig

    tasks = training_tasks()
    logger.info("%d training tasks", len(tasks))
    config = SelectorConfig(
        name=SELECTOR_NAME, modality="text", task_encoder=TASK_ENCODER_ID, shots_per_class=16,
        fitness=FitnessConfig(task_dim=384, token_dim=64, num_heads=4, num_layers=2))
    training = TrainingConfig(epochs=epochs, batch_size=16, lr=2e-3, patience=40, seed=seed)
    selector = SpiderSelector.train(tasks, config=config, zoo=[f"spiderbench/{m}" for m in ZOO], training=training,
                                    verbose=False)
    save_selector(selector, TEXT_WORK / (out_name or "selector"), None if out_name else BUNDLE_DIR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["features", "labels", "train"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="train: seed (variance runs)")
    parser.add_argument("--out-name", help="train: save only to .work/text/<name>, not to the bundle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    if args.step == "features":
        for m in ZOO:
            if (ZOO_DIR / m / "train_info.json").is_file():
                pool_features(m)
        encoder_features()
    elif args.step == "labels":
        labels_step()
    else:
        train_step(args.epochs, args.seed, args.out_name)


if __name__ == "__main__":
    main()
