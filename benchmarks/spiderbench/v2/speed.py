"""Token-only selection vs LogME over the whole zoo, timed side by side in one process (issue 14, item 6).

    python -m benchmarks.spiderbench.v2.speed [--tasks T ...] [--variants V ...] [--repeats 3] [--threads 1]
        [--no-library] [--out benchmarks/spiderbench/v2/SPEED.md]

For each target, starting from its train split in memory (``(N, 64, 64, 3)`` uint8, 16 images per class):

* **LogME, whole zoo**: for each of the 15 zoo models, load it from its folder, forward pass over the train split
  (pooled features, ``encoders.zoo_features``: the ground truth's own path), ``hf_spider.estimators.logme``.
* **spider / <variant>**: load the variant's task encoder (``encoders.VARIANTS``), encode the same split, class
  means, score the 15 models with the fitness network. The 1280-d variants use the bundled
  ``spiderbench-image`` selector; other widths a ``FitnessNetwork`` of that ``task_dim`` with random weights and the
  bundled model tokens (scoring costs the same whatever the weights). The selector is loaded once, beforehand (its
  load is timed in the library breakdown).

Methods run interleaved per task, their order reversed on every other repeat, so machine load (this machine's other
jobs) hits them alike; each (method, task) keeps the median over repeats. A warm-up pass over the first task runs
every method once before timing (imports, lazy initialisation, the OS file cache: every repeat then reads model files
from memory, for both sides). The library's own path (``library.py``: ``SpiderSelector.rank`` and its parts) runs in
the same loop as methods ``library/<variant>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..common import ZOO_DIR
from .encoders import VARIANTS, train_split, zoo_features
from .ground_truth import zoo
from .tasks import get_task

logger = logging.getLogger(__name__)

TASKS = ["animals-all", "animals-0-4", "animals-0-2", "digits-all", "digits-0-1-7", "digits-3-5-8-9",
         "glyphs-lower-a-h-liberation", "glyphs-digits-humanist", "glyphs-lower-i-t-handwriting",
         "glyphs-devanagari-a", "glyphs-thai-a", "glyphs-khmer"]  # 3-10 classes, every target source
SPEED_MD = Path(__file__).resolve().parent / "SPEED.md"
LOGME = "LogME (whole zoo)"


def logme_whole_zoo(images: np.ndarray, labels: np.ndarray, models: list[str]) -> np.ndarray:
    """LogME of every zoo model: load, forward pass, estimator, one model after another. ``(M,)``."""
    from hf_spider.estimators import logme

    from ..finetune import load

    scores = []
    for name in models:
        features = zoo_features(load(ZOO_DIR / name), images)
        scores.append(logme(features.astype(np.float64), labels))
    return np.array(scores)


def scorers() -> dict[int, object]:
    """Task-feature width → a selector scoring 15 models: the bundled one at its width, random networks else."""
    from hf_spider import SpiderSelector
    from hf_spider.bundled import bundled_selector
    from hf_spider.fitness import FitnessNetwork

    bundled = SpiderSelector.from_pretrained(bundled_selector("spiderbench-image"))
    out = {bundled.config.fitness.task_dim: bundled}
    for width in sorted({v.width for v in VARIANTS.values()} - set(out)):
        torch.manual_seed(0)
        fitness = dataclasses.replace(bundled.config.fitness, task_dim=width)
        config = dataclasses.replace(bundled.config, fitness=fitness)
        out[width] = SpiderSelector(config, FitnessNetwork(fitness), bundled.zoo, bundled.model_tokens)
    return out


def spider(variant: str, images: np.ndarray, labels: np.ndarray, scorer) -> tuple[np.ndarray, dict[str, float]]:
    """Scores of the zoo from the task token under ``variant``, and the seconds of each step."""
    from hf_spider.tokens import TaskToken, class_prototypes

    t0 = time.perf_counter()
    encode = VARIANTS[variant].load()
    t1 = time.perf_counter()
    features = encode(images)
    t2 = time.perf_counter()
    num_classes = int(labels.max()) + 1
    prototypes = class_prototypes(torch.from_numpy(features), labels, num_classes)
    scores = scorer.score(TaskToken(prototypes, [str(c) for c in range(num_classes)], variant))
    t3 = time.perf_counter()
    return scores, {"load": t1 - t0, "encode": t2 - t1, "prototypes + scoring": t3 - t2}


def run(tasks: list[str], variants: list[str], repeats: int, library: dict | None = None) -> dict:
    """``{"seconds": {method: {task: [s per repeat]}}, "steps": {method: {step: [s]}}}``; ``library`` adds methods
    ``name -> fn(task) -> (seconds, steps)`` (``library.library_methods``) to the same loop."""
    models = zoo("image")[0]
    by_width = scorers()
    data = {t: train_split(get_task(t)) for t in tasks}
    library = library or {}
    methods = [LOGME, *variants, *library]

    def once(method: str, task: str) -> tuple[float, dict]:
        if method in library:
            return library[method](task)
        images, labels = data[task]
        start = time.perf_counter()
        if method == LOGME:
            logme_whole_zoo(images, labels, models)
            return time.perf_counter() - start, {}
        _, steps = spider(method, images, labels, by_width[VARIANTS[method].width])
        return time.perf_counter() - start, steps

    for method in methods:  # warm-up, not recorded
        once(method, tasks[0])
    seconds = {m: {t: [] for t in tasks} for m in methods}
    steps: dict[str, dict[str, list[float]]] = {m: {} for m in methods if m != LOGME}
    for r in range(repeats):
        for task in tasks:
            for method in methods if r % 2 == 0 else methods[::-1]:
                s, parts = once(method, task)
                seconds[method][task].append(s)
                for k, v in parts.items():
                    steps[method].setdefault(k, []).append(v)
            logger.info("repeat %d, %s: LogME %.2f s, %s", r, task, seconds[LOGME][task][-1],
                        ", ".join(f"{m} {seconds[m][task][-1]:.3f} s" for m in methods[1:]))
    return {"seconds": seconds, "steps": steps}


def summarise(result: dict) -> dict[str, dict[str, float]]:
    """Per method: median over tasks of the per-task median seconds, and of the per-task ratio to LogME."""
    med = {m: {t: float(np.median(v)) for t, v in per.items()} for m, per in result["seconds"].items()}
    out = {}
    for m, per in med.items():
        ratios = np.array([per[t] / med[LOGME][t] for t in per])
        out[m] = {"seconds": float(np.median(list(per.values()))), "ratio": float(np.median(ratios)),
                  "worst_ratio": float(ratios.max())}
    return out


def machine() -> str:
    """CPU model, cores, threads, niceness and load averages (now) of this machine."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else "?"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
            f"nice {os.nice(0)}; load average {load}")


def render(result: dict, summary: dict, command: str, before: str, after: str, library: str) -> str:
    goal = 1 / 15
    tasks = list(result["seconds"][LOGME])
    lines = ["# SpiderBench v2: token-only selection vs LogME, timed side by side", "", "```", command, "```", "",
             f"Machine before: {before}  ", f"Machine after: {after}", "",
             f"{len(tasks)} image targets, {len(next(iter(result['seconds'][LOGME].values())))} repeats, methods "
             "interleaved per task (order reversed every other repeat); per task the median over repeats; below, "
             "the median over tasks. Goal: spider ≤ 1/15 = 0.067 of LogME's whole-zoo time.", "",
             "| method | d | seconds / task | spider / LogME | worst task | meets 1/15 |", "|---|---|---|---|---|---|"]
    for m, s in summary.items():
        if m.startswith("library/"):
            continue
        width = "" if m == LOGME else str(VARIANTS[m].width)
        ratio = "1" if m == LOGME else f"{s['ratio']:.4f} (1/{1 / s['ratio']:.0f})"
        worst = "" if m == LOGME else f"{s['worst_ratio']:.4f}"
        meets = "" if m == LOGME else ("yes" if s["worst_ratio"] <= goal else
                                       "median only" if s["ratio"] <= goal else "no")
        lines.append(f"| {m if m == LOGME else 'spider / ' + m} | {width} | {s['seconds']:.3f} | {ratio} | {worst} "
                     f"| {meets} |")
    lines += ["", "Where spider's seconds go (median over every task and repeat):", "",
              "| variant | load encoder | encode | prototypes + scoring |", "|---|---|---|---|"]
    for v, parts in result["steps"].items():
        if v.startswith("library/"):
            continue
        lines.append(f"| {v} | " + " | ".join(f"{np.median(parts[k]):.4f}" for k in
                                               ("load", "encode", "prototypes + scoring")) + " |")
    lines += ["", "Per task (median seconds over repeats):", "",
              "| task | classes | " + " | ".join(result["seconds"]) + " |",
              "|---|---|" + "---|" * len(result["seconds"])]
    for t in tasks:
        lines.append(f"| {t} | {len(get_task(t).classes)} | "
                     + " | ".join(f"{np.median(result['seconds'][m][t]):.3f}" for m in result["seconds"]) + " |")
    lines += ["", "The 1280-d variants score with the bundled `spiderbench-image` fitness network; the other widths "
              "with a randomly initialised `FitnessNetwork` of that `task_dim` (same sizes otherwise, bundled model "
              "tokens): the scoring cost does not depend on the weights, their ranking quality is not measured here "
              "(the lead trains on `encoder_features`)."]
    return "\n".join(lines) + "\n" + library


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=TASKS)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for every method alike")
    parser.add_argument("--no-library", action="store_true", help="skip the SpiderSelector.rank breakdown")
    parser.add_argument("--out", type=Path, default=SPEED_MD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks.spiderbench.v2.speed " + " ".join(shlex.quote(a) for a in given)
    before = machine()
    from .library import library_methods, render_library

    with tempfile.TemporaryDirectory() as tmp:
        library = None if args.no_library else library_methods(Path(tmp), args.tasks)
        result = run(args.tasks, args.variants, args.repeats, library)
    text = render(result, summarise(result), command, before, machine(), render_library(result, LOGME))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
