"""Measured ground truth of the text zoo: test accuracy of every zoo model on every text target after fine-tuning.

    python -m benchmarks.spiderbench.text.ground_truth [--shard 0/2] [--tasks NAME ...]

Protocol (``models.fine_tune``): the model's backbone + a new linear classifier on mask-mean pooled tokens; every
weight but the word-embedding matrix is trained (AdamW, one-cycle, batch ``BATCH_SIZE``, ``EPOCHS`` epochs, the
classifier at 10x the learning rate, max_length 64) at each learning rate of ``LR_GRID`` on the train split; the
learning rate with the best final validation accuracy is kept and its test accuracy recorded. One JSON per
(task, model) under ``.work/text/ground_truth/<task>/`` with the command that produced it; existing files are skipped,
so the script resumes. The same pass caches each model's features and source-class probabilities of the train split
(what the estimators read, via ``hf_spider.features.FeatureExtractor``) with the seconds of load + forward.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time

import numpy as np

from ..common import read_json, record_ground_truth, set_threads, write_json
from .build_zoo import ZOO
from .common import FEATURE_DIR, GT_DIR, TEXT_WORK, ZOO_DIR
from .models import encode, fine_tune, load_backbone
from .tasks import SPLITS, TARGETS, target_splits

logger = logging.getLogger(__name__)

LR_GRID = [5e-5, 2e-4]
EPOCHS = 5
BATCH_SIZE = 8


def target_texts(spec) -> dict[str, tuple[list[str], np.ndarray]]:
    """The task's splits, drawn once and cached (``.work/text/targets/<task>.json``)."""
    path = TEXT_WORK / "targets" / f"{spec.name}.json"
    if not path.is_file():
        write_json(path, {s: {"texts": x, "labels": y.tolist()} for s, (x, y) in target_splits(spec).items()})
    rec = read_json(path)
    return {s: (rec[s]["texts"], np.array(rec[s]["labels"])) for s in SPLITS}


def target_features(spec, model_name: str) -> dict:
    """Cached features / source probabilities of the train split and the seconds their forward pass took."""
    path = FEATURE_DIR / "targets" / spec.name / f"{model_name}.npz"
    if not path.is_file():
        texts, y = target_texts(spec)["train"]
        feats, probs, seconds = encode(ZOO_DIR / model_name, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, features=feats, labels=y, seconds=seconds,
                 **({} if probs is None else {"source_probs": probs}))
        tmp.replace(path)
    z = np.load(path)
    return {"features": z["features"], "labels": z["labels"], "seconds": float(z["seconds"]),
            "source_probs": z["source_probs"] if "source_probs" in z.files else None}


def measure(spec, model_name: str, command: str) -> dict:
    out = GT_DIR / spec.name / f"{model_name}.json"
    if out.is_file():
        return read_json(out)
    start = time.perf_counter()
    forward_seconds = target_features(spec, model_name)["seconds"]
    splits = target_texts(spec)
    backbone, tokenizer = load_backbone(ZOO_DIR / model_name)
    runs = {str(lr): fine_tune(backbone, tokenizer, splits, len(spec.classes), lr=lr, epochs=EPOCHS, seed=0,
                               batch_size=BATCH_SIZE) for lr in LR_GRID}
    return record_ground_truth(
        out, spec.name, model_name, runs, LR_GRID, start, epochs=EPOCHS, batch_size=BATCH_SIZE, max_length=64,
        protocol="fine-tuning of all weights but the word embeddings + new mean-pool linear classifier (10x lr), "
                 "AdamW one-cycle; lr chosen on val",
        splits={s: len(y) for s, (_, y) in splits.items()}, forward_seconds_train_split=forward_seconds,
        command=command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th (task, model) pair")
    parser.add_argument("--tasks", nargs="*", help="target task names (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    i, n = (int(v) for v in args.shard.split("/"))
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks.spiderbench.text.ground_truth " + " ".join(shlex.quote(a) for a in given)
    specs = [t for t in TARGETS if not args.tasks or t.name in args.tasks]
    pairs = [(spec, m) for spec in specs for m in ZOO]
    missing = sorted({m for m in ZOO if not (ZOO_DIR / m / "train_info.json").is_file()})
    for k, (spec, m) in enumerate(pairs):
        if k % n == i and m not in missing:
            measure(spec, m, command)
    if missing:
        logger.warning("Zoo models not built yet, skipped: %s", missing)


if __name__ == "__main__":
    main()
