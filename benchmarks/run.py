"""SpiderBench-offline report: hf-spider vs transferability estimators on the held-out target tasks.

    python benchmarks/run.py                       # default estimators (the ones affordable on 2 CPU cores)
    python benchmarks/run.py --estimators all      # every registered estimator (slow: minutes per task)

Reads the measured ground truth and cached features under ``benchmarks/spiderbench/.work`` (build them with the
scripts in ``benchmarks/spiderbench``, see its README), ranks the zoo on each target task with the trained
selector and with every estimator, then does the same for the text zoo (``benchmarks/spiderbench/text``) when its
ground truth is built, and writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``
(``{method: {task: {"weighted_tau", "pearson", "regret", "seconds"}}}``; regret in accuracy points 0–100; text tasks
are named ``text/<task>``; plus ``_scores`` and ``_meta``, see ``benchmarks/spiderbench/report_meta.py``). The
measured ground truth itself goes to ``benchmarks/ground_truth.json`` (accuracy and
chosen learning rate per task and model, with the command that measured it), so no one has to re-measure it to check
a number.
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
from benchmarks.spiderbench.common import (  # noqa: E402
    FEATURE_DIR,
    GT_DIR,
    WORK,
    by_mean_tau,
    cached_estimator_scores,
    fmt,
    mean_metric,
    measured_accuracies,
    ranking_metrics,
    read_json,
)
from benchmarks.spiderbench.report_meta import model_scores, results_document  # noqa: E402
from benchmarks.spiderbench.rerank import rerank_scores, target_prototypes, target_ptm  # noqa: E402
from benchmarks.spiderbench.tasks import TARGETS  # noqa: E402
from benchmarks.spiderbench.train_selector import BUNDLE_DIR  # noqa: E402

logger = logging.getLogger("benchmarks.run")
DEFAULT_ESTIMATORS = ["logme", "leep", "nce", "gbc", "parc", "transrate"]


def ground_truth(task: str) -> np.ndarray | None:
    return measured_accuracies(GT_DIR, task, ZOO)


def export_ground_truth(path: Path) -> None:
    """Every measured (task, model) result, image and text, in one committed JSON (per-pair files stay in .work)."""
    from benchmarks.spiderbench.text.common import GT_DIR as TEXT_GT_DIR

    out = {}
    for side, root in (("image", GT_DIR), ("text", TEXT_GT_DIR)):
        recs = [read_json(f) for f in sorted(root.glob("*/*.json"))]
        if not recs:
            continue
        out[side] = {"protocol": sorted({str(r.get("protocol")) for r in recs}),
                     "commands": sorted({str(r.get("command")) for r in recs}),
                     "accuracy": {}, "chosen_lr": {}}
        for r in recs:
            out[side]["accuracy"].setdefault(r["task"], {})[r["model"]] = r["accuracy"]
            out[side]["chosen_lr"].setdefault(r["task"], {})[r["model"]] = r.get("chosen_lr")
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


def text_section(names: list[str], scores_out: dict | None = None) -> tuple[dict, str]:
    """The text zoo's results (task names prefixed ``text/``) and their markdown section; empty if not built.
    Per-model scores go to ``scores_out[f"text/{task}"][method]`` when given."""
    from benchmarks.spiderbench.text import report

    raw_scores: dict = {}
    results, tasks = report.text_results(names, scores_out=raw_scores)
    if scores_out is not None:
        scores_out.update({f"text/{t}": v for t, v in raw_scores.items()})
    if not tasks:
        logger.warning("text zoo: no target with complete ground truth; build it (benchmarks/spiderbench/text)")
        return {}, ""
    body = report.render(results, tasks, "python benchmarks/run.py (text side: text.report.text_results)")
    prefixed = {m: {f"text/{t}": v for t, v in per_task.items()} for m, per_task in results.items()}
    return prefixed, "\n## Text zoo\n\n" + body + (
        "\nGround truth: fine-tuning (every weight but the word embeddings) with lr chosen on validation; see "
        "`benchmarks/spiderbench/text/README.md`. LEEP and NCE cannot score the headless base model (ranked last).\n")


def spider_scores(selector, spec) -> tuple[np.ndarray, float, object]:
    """Scores of the zoo, wall-clock seconds (from raw images: encoder load + forward + fitness network) and the
    task's prototypes."""
    from hf_spider.tokens import TaskToken

    start = time.perf_counter()
    prototypes = target_prototypes(spec)
    scores = selector.score(TaskToken(prototypes, [str(c) for c in spec.classes], selector.config.task_encoder))
    return scores, time.perf_counter() - start, prototypes


def estimator_scores(name: str, spec) -> tuple[np.ndarray, float]:
    """Scores of the zoo by one estimator and its seconds (cached compute + every model's forward pass)."""
    feats = [np.load(FEATURE_DIR / "targets" / spec.name / f"{m}.npz") for m in ZOO]
    return cached_estimator_scores(name, WORK / "estimator_scores" / spec.name / f"{name}.json", feats, ZOO)


def render(results: dict, tasks: list[str], command: str, selector_info: dict, skipped: list[str]) -> str:
    def mean(method: str, key: str) -> float:
        return mean_metric(results[method], tasks, key)

    order = by_mean_tau(results, tasks)
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
             "## Image zoo: mean over target tasks", "",
             "| method | weighted τ | Pearson r | top-1 regret (acc. points) | seconds / task |",
             "|---|---|---|---|---|"]
    for m in order:
        lines.append(f"| {m} | {fmt(mean(m, 'weighted_tau'))} | {fmt(mean(m, 'pearson'))} | "
                     f"{mean(m, 'regret'):.1f} | {mean(m, 'seconds'):.1f} |")
    lines += ["", "## Weighted τ per target task", "", "| task | " + " | ".join(order) + " |",
              "|---" * (len(order) + 1) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(fmt(results[m][t]["weighted_tau"]) for m in order) + " |")
    lines += ["", "## Top-1 regret per target task (accuracy points)", "", "| task | " + " | ".join(order) + " |",
              "|---" * (len(order) + 1) + "|"]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{results[m][t]['regret']:.1f}" for m in order) + " |")
    return "\n".join(lines) + "\n"


def render_sweep(sweep: dict[int, dict], tasks: list[str], val_tau: list[float]) -> str:
    """Quality and time against the re-ranking depth k (k forward passes of zoo models)."""
    lines = ["", "## Re-ranking depth k", "",
             "k = 0 is the token-only ranking; k = M re-scores the whole zoo with each model's own features. "
             "Validation τ is on the selector's validation tasks (estimator-aggregate labels), where the default k "
             "is chosen; the other columns are the target tasks.", "",
             "| k | validation weighted τ | target weighted τ | target top-1 regret | seconds / task |",
             "|---|---|---|---|---|"]
    for k, per_task in sweep.items():
        mean = {key: float(np.nanmean([per_task[t][key] for t in tasks])) for key in ("weighted_tau", "regret",
                                                                                       "seconds")}
        val = fmt(val_tau[k]) if k < len(val_tau) else "n/a"
        lines.append(f"| {k} | {val} | {fmt(mean['weighted_tau'])} | {mean['regret']:.1f} | {mean['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", nargs="*", default=DEFAULT_ESTIMATORS, help="registry names, or `all`")
    parser.add_argument("--selector", default=str(BUNDLE_DIR), help="selector folder (default: %(default)s)")
    parser.add_argument("--no-text", action="store_true", help="skip the text zoo")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"), help="where RESULTS.md and results.json go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from benchmarks.spiderbench.common import set_threads
    from hf_spider.estimators import ESTIMATORS
    from hf_spider.selector import SpiderSelector

    set_threads()  # SPIDERBENCH_THREADS, default 2, as every build script
    names = list(ESTIMATORS) if args.estimators == ["all"] else args.estimators
    selector = SpiderSelector.from_pretrained(args.selector, token_source="mirror")
    if [e.model_id for e in selector.zoo] != [f"spiderbench/{m}" for m in ZOO]:
        raise SystemExit("The selector ranks a different zoo than build_zoo.ZOO; retrain it (train_selector train).")
    can_rerank = bool(selector.config.fitness.ptm_widths)
    # spider_rerank reports the depth with the best validation tau (chosen on validation tasks, never on targets);
    # the shipped default (config.rerank_k) also asks a deeper depth to earn its forward passes, and may be 0.
    val_sweep = selector.config.training.get("validation weighted tau by rerank k", [])
    depth = int(np.argmax(val_sweep)) if val_sweep else selector.config.rerank_k
    spiders = ["spider", "spider_rerank"] if can_rerank else ["spider"]
    results: dict[str, dict] = {m: {} for m in [*spiders, *names]}
    sweep: dict[int, dict[str, dict]] = {k: {} for k in range(len(ZOO) + 1)} if can_rerank else {}
    tasks = []
    scores_out: dict[str, dict] = {}  # results.json `_scores`: {task: {method: {model: score}}}
    for spec in TARGETS:
        gt = ground_truth(spec.name)
        if gt is None:
            logger.warning("%s: ground truth incomplete, skipped", spec.name)
            continue
        tasks.append(spec.name)
        scores, seconds, prototypes = spider_scores(selector, spec)
        results["spider"][spec.name] = ranking_metrics(gt, scores, seconds)
        task_scores = scores_out.setdefault(spec.name, {})
        task_scores["spider"] = model_scores(ZOO, scores)
        if can_rerank:
            ptm, forward = target_ptm(spec)
            for k in sweep:
                reranked, extra = rerank_scores(selector, prototypes, scores, ptm, forward, k)
                sweep[k][spec.name] = ranking_metrics(gt, reranked, seconds + extra)
                if k == depth:
                    task_scores["spider_rerank"] = model_scores(ZOO, reranked)
            results["spider_rerank"][spec.name] = sweep[depth][spec.name]
        for n in names:
            scores, seconds = estimator_scores(n, spec)
            results[n][spec.name] = ranking_metrics(gt, scores, seconds)
            task_scores[n] = model_scores(ZOO, scores)
        logger.info("%s: spider tau %.3f", spec.name, results["spider"][spec.name]["weighted_tau"])
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/run.py", *(shlex.quote(a) for a in given)])
    info = {k: selector.config.training.get(k) for k in ("training tasks", "validation tasks", "best epoch",
                                                          "validation weighted tau")}
    info["spider_rerank depth k (best validation tau)"] = depth if can_rerank else "not trained"
    info["shipped default rerank_k (validation, tolerance 0.005)"] = selector.config.rerank_k
    text = render(results, tasks, command, info, [n for n in ESTIMATORS if n not in names])
    if can_rerank:
        text += render_sweep(sweep, tasks, selector.config.training.get("validation weighted tau by rerank k", []))
    # v1 ground truth is one fine-tuning seed (0): no seed halves, so no noise ceiling (SpiderBench v2 measures it).
    sides = {"image": {"tasks": tasks, "estimators": names, "gt_seeds": [0], "noise_ceiling": None}}
    if not args.no_text:
        text_results, section = text_section(names, scores_out)
        for m, per_task in text_results.items():
            results.setdefault(m, {}).update(per_task)
        text += section
        text_tasks = sorted({t for per_task in text_results.values() for t in per_task})
        if text_tasks:
            sides["text"] = {"tasks": text_tasks, "estimators": names, "gt_seeds": [0], "noise_ceiling": None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export_ground_truth(out / "ground_truth.json")
    (out / "RESULTS.md").write_text(text)
    document = results_document(results, scores_out, sides)
    (out / "results.json").write_text(json.dumps(document, indent=1, sort_keys=True, default=float) + "\n")
    print(text)


if __name__ == "__main__":
    main()
