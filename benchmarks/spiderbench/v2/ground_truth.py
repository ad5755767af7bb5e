"""SpiderBench v2 ground truth: every zoo model fine-tuned on every task with several seeds, one JSON per unit.

    python -m benchmarks.spiderbench.v2.ground_truth --modality image [--role target|train] [--tasks T ...]
        [--seeds 0 1 2] [--shard i/n]
    python -m benchmarks.spiderbench.v2.ground_truth --modality image --summary    # reliability, noise ceiling, cost

A *unit* is one (task, model, seed): the protocol of that modality (image: v1's top fine-tuning, ``..finetune``;
text: the last transformer layer + a new classifier on the lower layers' cached outputs, ``TEXT_PROTOCOL``) at
each learning rate of its grid with that seed, the learning rate chosen on validation, the test accuracy recorded in
``.work/v2/ground_truth/<modality>/<task>/<model>/seed<k>.json`` with the command that produced it. Existing unit
files are skipped, so a run resumes. ``--shard i/n`` takes every n-th (task, model) pair, so the frozen-trunk
outputs (image) or lower-layer states (text) of a pair are computed once for all its seeds; the pair's load +
forward time is stored as ``pair_seconds`` in its units. Each pair also caches the train-split features and
source-class probabilities the estimators read (``.work/v2/features/<modality>/<task>/<model>.npz``).
The seed only changes the fine-tuning (initialisation of the new classifier, batch order); the data are fixed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..common import WORK, read_json, record_ground_truth, set_threads
from .data import task_splits
from .reliability import noise_ceiling
from .tasks import all_tasks

logger = logging.getLogger(__name__)

GT_ROOT = WORK / "v2" / "ground_truth"
FEATURE_ROOT = WORK / "v2" / "features"
SEEDS = [0, 1, 2]
EXPORT = Path(__file__).resolve().parents[2] / "ground_truth.json"  # benchmarks/ground_truth.json


def zoo(modality: str) -> tuple[list[str], object]:
    """The zoo's model names and folder of a modality."""
    if modality == "image":
        from ..build_zoo import ZOO
        from ..common import ZOO_DIR
    else:
        from ..text.build_zoo import ZOO
        from ..text.common import ZOO_DIR
    return list(ZOO), ZOO_DIR


def unit_path(modality: str, task: str, model: str, seed: int):
    return GT_ROOT / modality / task / model / f"seed{seed}.json"


def _runtime() -> dict:
    """Where a unit ran: the numbers are defined by the CPU path (a GPU run must be checked against it)."""
    import torch

    return {"device": "cpu", "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}


def _save_features(path, feats, probs, labels, seconds) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, features=feats, labels=labels, seconds=seconds, **({} if probs is None else {"source_probs": probs}))
    tmp.replace(path)


IMAGE_LR_GRID = [1e-3, 5e-3]
IMAGE_EPOCHS, IMAGE_BATCH_SIZE = 8, 16


def measure_image(spec, model_name: str, seeds: list[int], command: str) -> None:
    from ..finetune import accuracy, features_and_probs, load, train_top, trunk_outputs

    todo = [s for s in seeds if not unit_path("image", spec.name, model_name, s).is_file()]
    if not todo:
        return
    start, cpu_start = time.perf_counter(), time.process_time()
    splits = task_splits(spec)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits["train"], splits["val"], splits["test"]
    model = load(zoo("image")[1] / model_name)
    h_tr, h_va, h_te = trunk_outputs(model, x_tr), trunk_outputs(model, x_va), trunk_outputs(model, x_te)
    feats, probs = features_and_probs(model, h_tr)
    pair_seconds, pair_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    _save_features(FEATURE_ROOT / "image" / spec.name / f"{model_name}.npz", feats, probs, y_tr, pair_seconds)
    for seed in todo:
        started, cpu = time.perf_counter(), time.process_time()
        runs = {}
        for lr in IMAGE_LR_GRID:
            tuned, history = train_top(model, h_tr, y_tr, num_classes=len(spec.classes), lr=lr, epochs=IMAGE_EPOCHS,
                                       seed=seed, batch_size=IMAGE_BATCH_SIZE, h_val=h_va, y_val=y_va)
            runs[str(lr)] = {"val_accuracy": history[-1], "val_history": history,
                             "test_accuracy": accuracy(tuned, h_te, y_te)}
        record_ground_truth(unit_path("image", spec.name, model_name, seed), spec.name, model_name, runs,
                            IMAGE_LR_GRID, started, seed=seed, epochs=IMAGE_EPOCHS, batch_size=IMAGE_BATCH_SIZE,
                            pair_seconds=pair_seconds,
                            cpu_seconds=time.process_time() - cpu, pair_cpu_seconds=pair_cpu, **_runtime(),
                            protocol="top fine-tuning (last stage + head conv + new classifier), frozen trunk; "
                                     "lr chosen on val", splits={s: len(v[1]) for s, v in splits.items()},
                            command=command)


TEXT_LR_GRID = [1e-4, 5e-4]  # the last layer's; the new classifier trains at 10x
TEXT_EPOCHS, TEXT_BATCH_SIZE = 6, 8
TEXT_PROTOCOL = ("top fine-tuning (last transformer layer + new mask-mean-pool linear classifier at 10x lr) on the "
                 "frozen lower layers' cached outputs, AdamW one-cycle; lr chosen on val")


def measure_features(spec, model_name: str) -> None:
    """Only the train-split outputs the estimators read (no fine-tuning): what a fresh clone needs besides the
    committed accuracies to rerun the selector and the report."""
    path = FEATURE_ROOT / spec.modality / spec.name / f"{model_name}.npz"
    if path.is_file():
        return
    x, y = task_splits(spec)["train"]
    folder = zoo(spec.modality)[1] / model_name
    if spec.modality == "text":
        from ..text.models import encode

        feats, probs, seconds = encode(folder, x)
    else:
        from ..finetune import features_and_probs, load, trunk_outputs

        start = time.perf_counter()
        model = load(folder)
        feats, probs = features_and_probs(model, trunk_outputs(model, x))
        seconds = time.perf_counter() - start
    _save_features(path, feats, probs, y, seconds)


def _features_only(spec, model_name: str, seeds: list[int], command: str) -> None:
    measure_features(spec, model_name)


def measure_text(spec, model_name: str, seeds: list[int], command: str) -> None:
    # v1 fine-tuned every layer (19 CPU-s a unit: 9.7 CPU-h for v2's units); v2 tunes the top like the image side
    from ..text.models import fine_tune_top, load_backbone, lower_states

    todo = [s for s in seeds if not unit_path("text", spec.name, model_name, s).is_file()]
    if not todo:
        return
    start, cpu_start = time.perf_counter(), time.process_time()
    splits = task_splits(spec)
    measure_features(spec, model_name)
    backbone, tokenizer = load_backbone(zoo("text")[1] / model_name)
    states = {s: (*lower_states(backbone, tokenizer, x), y) for s, (x, y) in splits.items()}
    pair_seconds, pair_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for seed in todo:
        started, cpu = time.perf_counter(), time.process_time()
        runs = {str(lr): fine_tune_top(backbone, states, len(spec.classes), lr=lr, epochs=TEXT_EPOCHS, seed=seed,
                                       batch_size=TEXT_BATCH_SIZE) for lr in TEXT_LR_GRID}
        record_ground_truth(unit_path("text", spec.name, model_name, seed), spec.name, model_name, runs, TEXT_LR_GRID,
                            started, seed=seed, epochs=TEXT_EPOCHS, batch_size=TEXT_BATCH_SIZE,
                            pair_seconds=pair_seconds, cpu_seconds=time.process_time() - cpu,
                            pair_cpu_seconds=pair_cpu, **_runtime(), protocol=TEXT_PROTOCOL,
                            splits={s: len(v[1]) for s, v in splits.items()}, command=command)


@lru_cache(maxsize=1)
def exported() -> dict:
    """The committed accuracies (``report.export_ground_truth``): ``{modality: {task: {model: {seed: acc}}}}``."""
    if not EXPORT.is_file():
        return {}
    doc = json.loads(EXPORT.read_text())
    return {k.removeprefix("v2/"): {t: {m: {int(seed): r["accuracy"] for seed, r in by_seed.items()}
                                        for m, by_seed in by_model.items()}
                                    for t, by_model in v["accuracy_by_task_model_seed"].items()}
            for k, v in doc.items() if k.startswith("v2/")}


def unit_accuracy(modality: str, task: str, model: str, seed: int) -> float | None:
    """A unit's measured accuracy: its file under ``.work`` or, where this machine has not measured it, the
    committed export, so a fresh clone evaluates every method without the CPU-hours of fine-tuning."""
    path = unit_path(modality, task, model, seed)
    if path.is_file():
        return read_json(path)["accuracy"]
    return exported().get(modality, {}).get(task, {}).get(model, {}).get(seed)


def seed_accuracies(modality: str, task: str, seeds: list[int] = SEEDS) -> np.ndarray | None:
    """``(seeds, models)`` measured accuracies of a task, or None while any unit is missing."""
    models, _ = zoo(modality)
    acc = [[unit_accuracy(modality, task, m, s) for m in models] for s in seeds]
    if any(a is None for row in acc for a in row):
        return None
    return np.array(acc)


def ground_truth(modality: str, task: str, seeds: list[int] = SEEDS) -> np.ndarray | None:
    """Each model's accuracy on ``task``, the mean over the fine-tuning seeds (None while incomplete)."""
    acc = seed_accuracies(modality, task, seeds)
    return None if acc is None else acc.mean(0)


def summary(modality: str, seeds: list[int] = SEEDS) -> dict:
    """What is measured so far: complete tasks, per-target reliability, the noise ceiling, seconds per unit."""
    units = [read_json(p) for p in sorted((GT_ROOT / modality).glob("*/*/seed*.json"))]
    per_target = {t.name: a for t in all_tasks(modality, "target")
                  if (a := seed_accuracies(modality, t.name, seeds)) is not None}
    def mean(key: str, rows: list[dict]) -> float | None:
        vals = [r[key] for r in rows if key in r]
        return float(np.mean(vals)) if vals else None

    pairs = list({(u["task"], u["model"]): u for u in units}.values())
    by_model: dict[str, list[dict]] = {}
    for u in units:
        by_model.setdefault(u["model"], []).append(u)
    return {"modality": modality, "units": len(units), "complete_targets": sorted(per_target),
            "noise_ceiling": noise_ceiling(per_target) if per_target else None,
            "wall_seconds_per_unit": mean("seconds", units), "cpu_seconds_per_unit": mean("cpu_seconds", units),
            "wall_seconds_per_pair_overhead": mean("pair_seconds", pairs),
            "cpu_seconds_per_pair_overhead": mean("pair_cpu_seconds", pairs),
            "wall_seconds_per_unit_by_model": {m: mean("seconds", v) for m, v in sorted(by_model.items())}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=["image", "text"], required=True)
    parser.add_argument("--role", choices=["target", "train"], help="only targets or only training tasks")
    parser.add_argument("--tasks", nargs="*", help="task names (default: all of the modality / role)")
    parser.add_argument("--models", nargs="*", help="zoo model names (default: the whole zoo)")
    parser.add_argument("--seeds", nargs="*", type=int, default=SEEDS)
    parser.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th (task, model) pair")
    parser.add_argument("--summary", action="store_true", help="print what is measured so far (JSON) and exit")
    parser.add_argument("--remaining", action="store_true", help="print how many selected units are missing; exit")
    parser.add_argument("--features-only", action="store_true",
                        help="cache the estimators' train-split features only (accuracies from ground_truth.json)")
    args = parser.parse_args(argv)
    if args.summary:
        print(json.dumps(summary(args.modality, args.seeds), indent=1))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    i, n = (int(v) for v in args.shard.split("/"))
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks.spiderbench.v2.ground_truth " + " ".join(shlex.quote(a) for a in given)
    models, zoo_dir = zoo(args.modality)
    models = [m for m in models if not args.models or m in args.models]
    specs = [t for t in all_tasks(args.modality, args.role) if not args.tasks or t.name in args.tasks]
    if args.tasks and len(specs) != len(set(args.tasks)):
        raise SystemExit(f"Unknown task among {args.tasks}; see benchmarks/spiderbench/v2/tasks.py.")
    if args.remaining:
        print(sum(not unit_path(args.modality, t.name, m, seed).is_file()
                  for t in specs for m in models for seed in args.seeds))
        return
    measure = measure_image if args.modality == "image" else measure_text
    if args.features_only:
        measure = _features_only
    missing = sorted(m for m in models if not any((zoo_dir / m / f).is_file()
                                                  for f in ("conversion.json", "train_info.json")))
    for k, (spec, m) in enumerate((s, m) for s in specs for m in models):
        if k % n == i and m not in missing:
            measure(spec, m, args.seeds, command)
    if missing:
        logger.warning("Zoo models not built yet, skipped: %s", missing)


if __name__ == "__main__":
    main()
