"""Ground truth over fine-tuning seeds: the mean, per-target reliability and the noise ceiling.

* **Ground truth** of a task: each model's test accuracy averaged over the fine-tuning seeds.
* **Reliability** of a task: the weighted τ between the model rankings of two seed-disjoint halves of the seeds,
  averaged over every way of cutting the seeds into a smaller half and the rest (3 seeds: {0} vs {1, 2}, {1} vs
  {0, 2}, {2} vs {0, 1}). It is how well one measurement of the ground truth predicts another.
* **Noise ceiling**: the mean reliability over the targets. A method's τ against the ground truth is read against
  it. (A half holds fewer seeds than the full mean, so this is a conservative, lower estimate.)
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def split_half_tau(acc: np.ndarray) -> float:
    """Mean weighted τ between the seed-mean rankings of two seed-disjoint halves; ``acc`` is (seeds, models)."""
    from hf_spider.evaluation import weighted_tau

    acc = np.asarray(acc, dtype=np.float64)
    seeds = acc.shape[0]
    if seeds < 2:
        return float("nan")
    taus = []
    for half in combinations(range(seeds), seeds // 2):
        rest = [s for s in range(seeds) if s not in half]
        if seeds % 2 == 0 and half > tuple(rest):  # even: each cut once
            continue
        taus.append(weighted_tau(acc[list(half)].mean(0), acc[rest].mean(0)))
    return float(np.nanmean(taus))


def noise_ceiling(per_task: dict[str, np.ndarray]) -> dict:
    """``{"weighted_tau": mean reliability, "per_task": {task: reliability}}`` over tasks of (seeds, models)."""
    per = {t: split_half_tau(a) for t, a in per_task.items()}
    finite = [v for v in per.values() if np.isfinite(v)]
    return {"weighted_tau": float(np.mean(finite)) if finite else float("nan"), "per_task": per,
            "definition": "mean over targets of the weighted tau between seed-disjoint halves of the fine-tuning "
                          "seeds (3 seeds: each seed vs the mean of the other two, averaged)"}
