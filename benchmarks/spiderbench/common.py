"""Paths, sizes and small helpers shared by the SpiderBench build scripts.

Everything a script produces goes under ``WORK`` (git-ignored), one file or folder per unit of work, written
atomically, so an interrupted build resumes where it stopped. ``HF_SPIDER_BENCH_WORK`` moves it elsewhere.
"""

from __future__ import annotations

import json
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


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start
