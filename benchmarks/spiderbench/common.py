"""Paths, sizes and small helpers shared by the SpiderBench build scripts.

Everything a script produces goes under ``WORK`` (git-ignored), one file or folder per unit of work, written
atomically, so an interrupted build resumes where it stopped. ``HF_SPIDER_BENCH_WORK`` moves it elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("HF_SPIDER_BENCH_WORK", HERE / ".work"))
ZOO_DIR = WORK / "zoo"  # one Transformers repo folder per zoo model
RESOLUTION = 64  # every benchmark forward pass and fine-tune reads 64x64 RGB images


def set_threads() -> None:
    """Use the cores we were given (``SPIDERBENCH_THREADS``, default 2)."""
    import torch

    torch.set_num_threads(int(os.environ.get("SPIDERBENCH_THREADS", "2")))


def cached_image_splits(path: Path, build) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``build()``'s ``{split: (images, labels)}``, cached at ``path`` (``.npz``, written atomically) on first use."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        splits = build()
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")  # per process: parallel shards may build the same task
        np.savez_compressed(tmp, **{f"{s}_{k}": v for s, (x, y) in splits.items() for k, v in (("x", x), ("y", y))})
        tmp.replace(path)
    z = np.load(path)
    return {s: (z[f"{s}_x"], z[f"{s}_y"]) for s in ("train", "val", "test")}


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (a crash never leaves half a file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def score_zoo(name: str, features: list[np.ndarray], labels: np.ndarray,
              source_probs: list[np.ndarray | None]) -> list[float]:
    """One estimator's score of each zoo model; NaN for a model it cannot score (LEEP / NCE need a classification
    head), which the reports rank last."""
    from hf_spider.estimators import get_estimator, needs_source_probs

    fn = get_estimator(name)
    return [float("nan") if needs_source_probs(name) and p is None else
            float(fn(f.astype(np.float64), labels, source_probs=None if p is None else p.astype(np.float64)))
            for f, p in zip(features, source_probs)]


def ranking_metrics(gt: np.ndarray, pred: np.ndarray, seconds: float) -> dict[str, float]:
    """Weighted τ, Pearson r and top-1 regret of ``pred`` against measured accuracies; NaN scores rank last."""
    from hf_spider.evaluation import pearson, regret_at_k, weighted_tau

    pred = np.nan_to_num(np.asarray(pred, dtype=np.float64), nan=-np.inf, posinf=np.finfo(float).max)
    pred = np.where(np.isneginf(pred), np.finfo(float).min, pred)
    return {"weighted_tau": weighted_tau(gt, pred), "pearson": pearson(gt, pred), "regret": regret_at_k(gt, pred, 1),
            "seconds": seconds}


def mean_metric(per_task: dict[str, dict], tasks: list[str], key: str) -> float:
    """Mean of one metric over the tasks a method has a finite value for (NaN if none)."""
    vals = [per_task[t][key] for t in tasks if t in per_task]
    vals = [v for v in vals if v is not None and np.isfinite(v)]  # None: not measured (e.g. seconds)
    return float(np.mean(vals)) if vals else float("nan")


def fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def record_ground_truth(out: Path, task: str, model: str, runs: dict[str, dict], lr_grid: list[float],
                        started: float, **details: Any) -> dict:
    """Pick the learning rate on validation (ties: the smaller lr), report its test accuracy, write ``out``."""
    chosen = max(lr_grid, key=lambda lr: (runs[str(lr)]["val_accuracy"], -lr))
    result = {"task": task, "model": model, "accuracy": runs[str(chosen)]["test_accuracy"], "chosen_lr": chosen,
              "runs": runs, **details, "seconds": time.perf_counter() - started}
    write_json(out, result)
    logging.getLogger(__name__).info("%s / %s: %.1f%% (lr %g) in %.0fs", task, model, result["accuracy"], chosen,
                                     result["seconds"])
    return result


def save_selector(selector, out: Path, bundle: Path | None) -> None:
    """Save a trained selector to ``out`` and, unless ``bundle`` is None, replace the copy shipped in the package."""
    import shutil

    selector.save_pretrained(out)
    if bundle is None:
        logging.getLogger(__name__).info("selector saved to %s; %s", out, selector.config.training)
        return
    if bundle.exists():
        shutil.rmtree(bundle)
    selector.save_pretrained(bundle)
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    logging.getLogger(__name__).info("selector saved to %s and %s (%d bytes); %s", out, bundle, size,
                                     selector.config.training)

