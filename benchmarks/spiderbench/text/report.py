"""SpiderBench-offline, text side: hf-spider vs transferability estimators on the held-out text target tasks.

    python -m benchmarks.spiderbench.text.report [--estimators leep nce ...]     # prints a markdown table

``text_results(estimators)`` returns ``({method: {task: {"weighted_tau", "pearson", "regret", "seconds"}}}, tasks)``
(regret in accuracy points 0–100), the same layout as ``benchmarks/run.py``. Seconds include forward passes: for the
selector, loading the task encoder (all-MiniLM-L6-v2) and encoding the train split; for an estimator, loading every
zoo model and its forward pass over the same split (measured once, when ``ground_truth`` cached the features) plus the
estimator itself. A model an estimator cannot score (LEEP / NCE need a classification head; all-MiniLM-L6-v2 has
none) gets NaN, ranked last, as in ``benchmarks/run.py``. Estimator scores are cached under
``.work/text/estimator_scores``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from ..common import by_mean_tau, cached_estimator_scores, fmt, mean_metric, measured_accuracies, ranking_metrics
from .build_zoo import ZOO
from .common import BUNDLE_DIR, GT_DIR, TEXT_WORK, base_path
from .ground_truth import target_features, target_texts
from .tasks import TARGETS

DEFAULT_ESTIMATORS = ["logme", "leep", "nce", "gbc", "parc", "transrate"]


def ground_truth(task: str) -> np.ndarray | None:
    return measured_accuracies(GT_DIR, task, ZOO)


def spider_scores(selector, spec) -> tuple[np.ndarray, float]:
    """Scores of the zoo and wall-clock seconds, from raw texts: encoder load + forward + fitness network."""
    from hf_spider.tokens import TaskEncoder, TaskToken, class_prototypes

    texts, y = target_texts(spec)["train"]
    start = time.perf_counter()
    encoder = TaskEncoder(base_path(), modality="text", batch_size=64)
    feats = encoder.extractor(texts, verbose=False)  # (N, 384)
    token = TaskToken(class_prototypes(feats, y, len(spec.classes)), [str(c) for c in spec.classes],
                      encoder.model_id)
    scores = selector.score(token)
    return scores, time.perf_counter() - start


def estimator_scores(name: str, spec) -> tuple[np.ndarray, float]:
    """Scores of the zoo by one estimator and its seconds (cached compute + every model's forward pass)."""
    feats = [target_features(spec, m) for m in ZOO]
    return cached_estimator_scores(name, TEXT_WORK / "estimator_scores" / spec.name / f"{name}.json", feats, ZOO)


def text_results(estimators: list[str], *, selector: str | None = None,
                 scores_out: dict | None = None) -> tuple[dict, list[str]]:
    """Per-method, per-task metrics on every text target whose ground truth is complete, and those tasks; with
    ``scores_out``, also every method's score of each model (``{task: {method: {model: score}}}``)."""
    from hf_spider.selector import SpiderSelector

    from ..report_meta import model_scores

    spider = SpiderSelector.from_pretrained(str(selector or BUNDLE_DIR), token_source="mirror")
    if [e.model_id for e in spider.zoo] != [f"spiderbench/{m}" for m in ZOO]:
        raise SystemExit("The text selector ranks a different zoo than text.build_zoo.ZOO; retrain it.")
    results: dict[str, dict] = {"spider": {}, **{n: {} for n in estimators}}
    tasks = []
    for spec in TARGETS:
        gt = ground_truth(spec.name)
        if gt is None:
            continue
        tasks.append(spec.name)
        scores, seconds = spider_scores(spider, spec)
        results["spider"][spec.name] = ranking_metrics(gt, scores, seconds)
        task_scores = {"spider": model_scores(ZOO, scores)}
        for n in estimators:
            scores, seconds = estimator_scores(n, spec)
            results[n][spec.name] = ranking_metrics(gt, scores, seconds)
            task_scores[n] = model_scores(ZOO, scores)
        if scores_out is not None:
            scores_out[spec.name] = task_scores
    return results, tasks


def render(results: dict, tasks: list[str], command: str) -> str:
    def mean(method: str, key: str) -> float:
        return mean_metric(results[method], tasks, key)

    order = by_mean_tau(results, tasks)
    lines = [f"Produced by `{command}`: {len(ZOO)} text models, {len(tasks)} held-out text target tasks.", "",
             "| method | weighted τ | Pearson r | top-1 regret (acc. points) | seconds / task |",
             "|---|---|---|---|---|"]
    for m in order:
        lines.append(f"| {m} | {fmt(mean(m, 'weighted_tau'))} | {fmt(mean(m, 'pearson'))} | "
                     f"{mean(m, 'regret'):.1f} | {mean(m, 'seconds'):.1f} |")
    lines += ["", "| task (weighted τ) | " + " | ".join(order) + " |", "|---" * (len(order) + 1) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(fmt(results[m][t]["weighted_tau"]) for m in order) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", nargs="*", default=DEFAULT_ESTIMATORS)
    parser.add_argument("--selector", default=None, help=f"selector folder (default: {BUNDLE_DIR})")
    args = parser.parse_args(argv)
    from ..common import set_threads

    set_threads()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    results, tasks = text_results(args.estimators, selector=args.selector)
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks.spiderbench.text.report " + " ".join(shlex.quote(a) for a in given)
    print(render(results, tasks, command.strip()))


if __name__ == "__main__":
    main()
