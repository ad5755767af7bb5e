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

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("HF_SPIDER_BENCH_WORK", HERE / ".work"))
ZOO_DIR = WORK / "zoo"  # one Transformers repo folder per zoo model
FEATURE_DIR = WORK / "features"  # (N, d) float32 .npy per (model, image pool)
GT_DIR = WORK / "ground_truth"  # one JSON per (target task, model)
RESOLUTION = 64  # every benchmark forward pass and fine-tune reads 64x64 RGB images
SEED = 0


def set_threads() -> None:
    """Use the cores we were given (``SPIDERBENCH_THREADS``, default 2)."""
    import torch

    torch.set_num_threads(int(os.environ.get("SPIDERBENCH_THREADS", "2")))


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (a crash never leaves half a file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def measured_accuracies(gt_dir: Path, task: str, models: list[str]):
    """The measured test accuracy of each model on ``task`` (zoo order), or ``None`` while any is missing."""
    import numpy as np

    files = [gt_dir / task / f"{m}.json" for m in models]
    if not all(f.is_file() for f in files):
        return None
    return np.array([read_json(f)["accuracy"] for f in files])


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


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start
