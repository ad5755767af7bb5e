"""The ``_scores`` and ``_meta`` entries of ``benchmarks/results.json`` (beside ``{method: {task: metrics}}``).

* ``_scores``: ``{task: {method: {model: score}}}``, every method's raw score of every zoo model on every target
  (text tasks prefixed ``text/``; NaN → null), so stacking or a cascade can be evaluated from the file alone.
* ``_meta``: ``{"targets": {side: [task, ...]}, "gt_seeds": {side: [seed, ...]}, "noise_ceiling": {side: value or
  null}, "bootstrap": {side: {"<method> - <best estimator>": {...}}}}``: the paired bootstrap over a side's targets
  of the difference in mean weighted τ between each method and the best single estimator of that side.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SAMPLES = 10_000


def model_scores(models: list[str], scores) -> dict[str, float | None]:
    """``{model: score}`` with NaN / ±inf written as None (JSON has no NaN)."""
    return {m: (float(s) if np.isfinite(s) else None) for m, s in zip(models, np.asarray(scores, dtype=np.float64))}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """Mean of ``a − b`` over tasks and its 95% percentile interval, resampling tasks with replacement (paired)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return {"mean_difference": None, "low": None, "high": None, "targets": 0}
    idx = np.random.default_rng(seed).integers(0, diff.size, size=(samples, diff.size))
    means = diff[idx].mean(axis=1)
    return {"mean_difference": float(diff.mean()), "low": float(np.percentile(means, 2.5)),
            "high": float(np.percentile(means, 97.5)), "targets": int(diff.size), "samples": samples, "seed": seed}


def bootstrap_vs_best_estimator(results: dict, tasks: list[str], estimators: list[str]) -> dict:
    """Each method's paired-bootstrap difference in weighted τ against the side's best estimator (by mean τ)."""
    def taus(method: str) -> np.ndarray:
        return np.array([results[method].get(t, {}).get("weighted_tau", np.nan) for t in tasks], dtype=np.float64)

    present = [e for e in estimators if e in results]
    if not present or not tasks:
        return {}
    best = max(present, key=lambda e: np.nanmean(taus(e)) if np.isfinite(taus(e)).any() else -np.inf)
    return {f"{m} - {best}": paired_bootstrap(taus(m), taus(best)) for m in results
            if m != best and all(t in results[m] for t in tasks)}  # methods of the other side only are skipped


def build_meta(results: dict, sides: dict[str, dict]) -> dict:
    """``_meta`` from ``sides = {side: {"tasks", "estimators", "gt_seeds", "noise_ceiling"}}``."""
    return {"targets": {s: list(v["tasks"]) for s, v in sides.items()},
            "gt_seeds": {s: list(v["gt_seeds"]) for s, v in sides.items()},
            "noise_ceiling": {s: v["noise_ceiling"] for s, v in sides.items()},
            "bootstrap": {s: bootstrap_vs_best_estimator(results, list(v["tasks"]), v["estimators"])
                          for s, v in sides.items()}}


def results_document(results: dict, scores: dict, sides: dict[str, dict]) -> dict:
    """The whole ``results.json``: ``{method: {task: metrics}}`` plus ``_scores`` and ``_meta``."""
    clash = [m for m in results if m.startswith("_")]
    if clash:
        raise ValueError(f"method names may not start with '_': {clash}")
    return {**results, "_scores": scores, "_meta": build_meta(results, sides)}
