"""Multi-process extraction, run by tests/test_features.py under ``torchrun --nproc_per_node 2`` (gloo, CPU).

Usage: ``accelerate_worker.py CACHE_DIR OUT_DIR MODALITY=MODEL_DIR ...``. For each model, every process extracts the
same sample twice (a cache miss, then a hit) and writes what it got to ``OUT_DIR/<modality>-rank<k>.npz``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main(cache_dir: str, out_dir: str, *jobs: str) -> None:
    from accelerate import PartialState
    from conftest import image_dataset, text_dataset

    from hf_spider.data import sample_task
    from hf_spider.features import extract_features

    state = PartialState(cpu=True)
    assert state.num_processes == 2, state
    for job in jobs:
        modality, model_dir = job.split("=", 1)
        dataset = text_dataset() if modality == "text" else image_dataset()
        sample = sample_task(dataset, shots_per_class=3, seed=1)  # 9 rows: uneven shards (5 + 4, one padded row)
        kwargs = dict(with_source_probs=True, cache_dir=cache_dir, batch_size=2, verbose=False)
        first = extract_features(model_dir, sample, **kwargs)
        second = extract_features(model_dir, sample, **kwargs)
        np.savez(Path(out_dir) / f"{modality}-rank{state.process_index}.npz", features=first.features,
                 probs=first.source_probs, cached_features=second.features, first_cached=first.from_cache,
                 second_cached=second.from_cache)


if __name__ == "__main__":
    main(*sys.argv[1:])
    # Every rank's output is on disk and checked by the test; skip interpreter finalization. torch 2.13's gloo keeps
    # its worker threads past destroy_process_group(), and destroying them during finalization aborts the process
    # now and then (SIGABRT, "terminate called without an active exception": about 1 run in 30 here, also seen in
    # CI). That is torch's teardown, not what this test checks.
    from accelerate import PartialState

    PartialState().wait_for_everyone()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
