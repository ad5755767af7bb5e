"""SpiderBench-offline report: hf-spider vs transferability estimators on the held-out target tasks.

    python benchmarks/run.py                       # default estimators (the ones affordable on 2 CPU cores)
    python benchmarks/run.py --estimators all      # every registered estimator (slow: minutes per task)

Reads the measured ground truth and cached features under ``benchmarks/spiderbench/.work`` (build them with the
scripts in ``benchmarks/spiderbench``, see its README), ranks the zoo on each target task with the trained
selector and with every estimator, and writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``
(``{method: {task: {"weighted_tau", "pearson", "regret", "seconds"}}}``; regret in accuracy points 0–100).
Seconds include forward passes: for the selector, loading the task encoder and encoding the train split; for an
estimator, loading every zoo model and its forward pass over the same split (measured once, when the features were
cached) plus the estimator itself. Estimator scores are cached per (task, estimator) under ``.work/estimator_scores``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.spiderbench.build_zoo import ZOO  # noqa: E402
from benchmarks.spiderbench.common import FEATURE_DIR, GT_DIR, WORK, ZOO_DIR, read_json, write_json  # noqa: E402
from benchmarks.spiderbench.ground_truth import target_images  # noqa: E402
from benchmarks.spiderbench.tasks import TARGETS  # noqa: E402
from benchmarks.spiderbench.train_selector import BUNDLE_DIR, TASK_ENCODER  # noqa: E402
from hf_spider.evaluation import pearson, regret_at_k, weighted_tau  # noqa: E402

logger = logging.getLogger("benchmarks.run")
DEFAULT_ESTIMATORS = ["logme", "leep", "nce", "gbc", "parc", "transrate"]


def ground_truth(task: str) -> np.ndarray | None:
    files = [GT_DIR / task / f"{m}.json" for m in ZOO]
    if not all(f.is_file() for f in files):
        return None
    return np.array([read_json(f)["accuracy"] for f in files])


def spider_scores(selector, spec) -> tuple[np.ndarray, float]:
    """Scores of the zoo and wall-clock seconds, from raw images: encoder load + forward + fitness network."""
    from PIL import Image

    from hf_spider.tokens import TaskEncoder, TaskToken, class_prototypes

    x, y = target_images(spec)["train"]
    images = [Image.fromarray(img) for img in x]
    start = time.perf_counter()
    encoder = TaskEncoder(str(ZOO_DIR / TASK_ENCODER), modality="image", batch_size=64)
    feats = encoder.extractor(images, verbose=False)  # (N, 1280)
    token = TaskToken(class_prototypes(feats, y, len(spec.classes)), [str(c) for c in spec.classes],
                      encoder.model_id)
    scores = selector.score(token)
    return scores, time.perf_counter() - start


def estimator_scores(name: str, spec) -> tuple[np.ndarray, float]:
    """Scores of the zoo by one estimator and its seconds (cached compute + every model's forward pass)."""
    from hf_spider.estimators import get_estimator

    cache = WORK / "estimator_scores" / spec.name / f"{name}.json"
    feats = [np.load(FEATURE_DIR / "targets" / spec.name / f"{m}.npz") for m in ZOO]
    forward = float(sum(float(z["seconds"]) for z in feats))
    if cache.is_file() and read_json(cache)["zoo"] == ZOO:
        rec = read_json(cache)
        return np.array(rec["scores"]), forward + rec["compute_seconds"]
    fn = get_estimator(name)
    start = time.perf_counter()
    scores = [float(fn(z["features"].astype(np.float64), z["labels"],
                       source_probs=z["source_probs"].astype(np.float64))) for z in feats]
    compute = time.perf_counter() - start
    write_json(cache, {"scores": scores, "compute_seconds": compute, "zoo": ZOO})
    return np.array(scores), forward + compute


def metrics(gt: np.ndarray, pred: np.ndarray, seconds: float) -> dict[str, float]:
    pred = np.nan_to_num(np.asarray(pred, dtype=np.float64), nan=-np.inf, posinf=np.finfo(float).max)
    pred = np.where(np.isneginf(pred), np.finfo(float).min, pred)
    return {"weighted_tau": weighted_tau(gt, pred), "pearson": pearson(gt, pred), "regret": regret_at_k(gt, pred, 1),
            "seconds": seconds}


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


def render(results: dict, tasks: list[str], command: str, selector_info: dict, skipped: list[str]) -> str:
    def mean(method: str, key: str) -> float:
        vals = [results[method][t][key] for t in tasks if t in results[method]]
        vals = [v for v in vals if np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    order = sorted(results, key=lambda m: -mean(m, "weighted_tau") if np.isfinite(mean(m, "weighted_tau")) else 9)
    lines = ["# SpiderBench-offline results", "",
             "Produced by:", "", "```", command, "```", "",
             f"Zoo: {len(ZOO)} image models; {len(tasks)} held-out target tasks. Ground truth = test accuracy after "
             "top fine-tuning with a learning rate chosen on validation (see `benchmarks/spiderbench/README.md`).",
             "Targets (held out in sources and classes): Fashion-MNIST classes 5,7,8,9 (t10k file), sklearn digits, "
             "lower-case/digit glyphs in Liberation fonts, patches of colour skimage photos. Training side (zoo "
             "fine-tuning, 240 selector tasks): Fashion-MNIST classes 0-4,6, upper-case DejaVu glyphs, grey skimage "
             "textures.",
             f"Selector: {selector_info}", "",
             "Seconds include forward passes (selector: loading the task encoder and encoding the train split; "
             "estimator: loading each zoo model and its forward pass over the same split, plus the estimator). "
             "2 CPU cores shared with other jobs: times are noisy.",
             *([f"Not run (at 1280-d: 20–80 s per model and task here): {', '.join(skipped)}; "
                "add them with `--estimators all`."] if skipped else []), "",
             "## Mean over target tasks", "",
             "| method | weighted τ | Pearson r | top-1 regret (acc. points) | seconds / task |",
             "|---|---|---|---|---|"]
    for m in order:
        lines.append(f"| {m} | {_fmt(mean(m, 'weighted_tau'))} | {_fmt(mean(m, 'pearson'))} | "
                     f"{mean(m, 'regret'):.1f} | {mean(m, 'seconds'):.1f} |")
    lines += ["", "## Weighted τ per target task", "", "| task | " + " | ".join(order) + " |",
              "|---" * (len(order) + 1) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(_fmt(results[m][t]["weighted_tau"]) for m in order) + " |")
    lines += ["", "## Top-1 regret per target task (accuracy points)", "", "| task | " + " | ".join(order) + " |",
              "|---" * (len(order) + 1) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{results[m][t]['regret']:.1f}" for m in order) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", nargs="*", default=DEFAULT_ESTIMATORS, help="registry names, or `all`")
    parser.add_argument("--selector", default=str(BUNDLE_DIR), help="selector folder (default: %(default)s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"), help="where RESULTS.md and results.json go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    from hf_spider.estimators import ESTIMATORS
    from hf_spider.selector import SpiderSelector

    torch.set_num_threads(2)
    names = list(ESTIMATORS) if args.estimators == ["all"] else args.estimators
    selector = SpiderSelector.from_pretrained(args.selector, token_source="mirror")
    if [e.model_id for e in selector.zoo] != [f"spiderbench/{m}" for m in ZOO]:
        raise SystemExit("The selector ranks a different zoo than build_zoo.ZOO; retrain it (train_selector train).")
    results: dict[str, dict] = {"spider": {}, **{n: {} for n in names}}
    tasks = []
    for spec in TARGETS:
        gt = ground_truth(spec.name)
        if gt is None:
            logger.warning("%s: ground truth incomplete, skipped", spec.name)
            continue
        tasks.append(spec.name)
        scores, seconds = spider_scores(selector, spec)
        results["spider"][spec.name] = metrics(gt, scores, seconds)
        for n in names:
            scores, seconds = estimator_scores(n, spec)
            results[n][spec.name] = metrics(gt, scores, seconds)
        logger.info("%s: spider tau %.3f", spec.name, results["spider"][spec.name]["weighted_tau"])
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in given)
    info = {k: selector.config.training.get(k) for k in ("training tasks", "validation tasks", "best epoch",
                                                          "validation weighted tau")}
    text = render(results, tasks, command, info, [n for n in ESTIMATORS if n not in names])
    out = Path(args.out)
    (out / "RESULTS.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True, default=float) + "\n")
    print(text)


if __name__ == "__main__":
    main()
