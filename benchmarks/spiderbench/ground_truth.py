"""Measured ground truth: the test accuracy of every zoo model on every target task after fine-tuning.

    python -m benchmarks.spiderbench.ground_truth [--shard 0/2] [--tasks NAME ...]

Protocol (``finetune.py``): the frozen trunk's outputs are computed once per (task, model); the last stage, head
convolution and a new classifier are fine-tuned for ``EPOCHS`` epochs at each learning rate of ``LR_GRID`` on the
train split; the learning rate with the best final validation accuracy is chosen and its test accuracy recorded.
One JSON per (task, model) under ``.work/ground_truth/<task>/`` (with the command that produced it); existing files
are skipped, so the script resumes. The same pass caches each model's eval-mode features and source-class
probabilities of the train split (what the estimators read) under ``.work/features/targets/<task>/``, with the
seconds its forward pass took.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time

import numpy as np

from .build_zoo import ZOO
from .common import (
    FEATURE_DIR,
    GT_DIR,
    WORK,
    ZOO_DIR,
    cached_image_splits,
    read_json,
    record_ground_truth,
    set_threads,
)
from .finetune import accuracy, features_and_probs, load, train_top, trunk_outputs
from .tasks import TARGETS, target_splits

logger = logging.getLogger(__name__)

LR_GRID = [1e-3, 5e-3]
EPOCHS = 8
BATCH_SIZE = 16


def target_images(spec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The task's splits, rendered once and cached (``.work/targets/<task>.npz``)."""
    return cached_image_splits(WORK / "targets" / f"{spec.name}.npz", lambda: target_splits(spec))


def measure(spec, model_name: str, command: str) -> dict:
    out = GT_DIR / spec.name / f"{model_name}.json"
    if out.is_file():
        return read_json(out)
    splits = target_images(spec)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits["train"], splits["val"], splits["test"]
    num_classes = len(spec.classes)
    start = time.perf_counter()
    model = load(ZOO_DIR / model_name)
    h_tr = trunk_outputs(model, x_tr)
    feats, probs = features_and_probs(model, h_tr)
    forward_seconds = time.perf_counter() - start  # load + full forward of the train split: what an estimator pays
    feat_path = FEATURE_DIR / "targets" / spec.name / f"{model_name}.npz"
    feat_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(feat_path, features=feats, source_probs=probs, labels=y_tr, seconds=forward_seconds)
    h_va, h_te = trunk_outputs(model, x_va), trunk_outputs(model, x_te)
    runs = {}
    for lr in LR_GRID:
        tuned, history = train_top(model, h_tr, y_tr, num_classes=num_classes, lr=lr, epochs=EPOCHS, seed=0,
                                   batch_size=BATCH_SIZE, h_val=h_va, y_val=y_va)
        runs[str(lr)] = {"val_accuracy": history[-1], "val_history": history,
                         "test_accuracy": accuracy(tuned, h_te, y_te)}
    return record_ground_truth(
        out, spec.name, model_name, runs, LR_GRID, start, epochs=EPOCHS, batch_size=BATCH_SIZE,
        protocol="top fine-tuning: last stage + head conv + new classifier, AdamW one-cycle; lr chosen on val",
        splits={"train": len(y_tr), "val": len(y_va), "test": len(y_te)},
        forward_seconds_train_split=forward_seconds, command=command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th (task, model) pair")
    parser.add_argument("--tasks", nargs="*", help="target task names (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    i, n = (int(v) for v in args.shard.split("/"))
    command = "python -m benchmarks.spiderbench.ground_truth " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    specs = [t for t in TARGETS if not args.tasks or t.name in args.tasks]
    pairs = [(spec, m) for spec in specs for m in ZOO]
    skipped = set()
    for k, (spec, m) in enumerate(pairs):
        if k % n != i:
            continue
        if not any((ZOO_DIR / m / marker).is_file() for marker in ("conversion.json", "train_info.json")):
            skipped.add(m)  # not built yet: a later run picks it up
            continue
        measure(spec, m, command)
    if skipped:
        logger.warning("Zoo models not built yet, skipped: %s", sorted(skipped))


if __name__ == "__main__":
    main()
