"""Project the CPU cost of the whole v2 ground truth from the units measured so far.

    python -m benchmarks.spiderbench.v2.cost --modality image

For each zoo model, the CPU seconds of a unit (one seed: fine-tuning at every learning rate plus the evaluations) are
fitted as ``a + b · n_train`` over the measured units (least squares; one measured task size: proportional to
``n_train``), and a pair's one-off cost (load, frozen-trunk or feature pass of all splits) as ``c · n_examples``.
The projection sums these over every task of the modality, every model and every seed. CPU seconds are
``time.process_time`` of a 1-thread process: on an idle core, wall time ≈ CPU time.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..common import read_json
from .data import MAX_TEST, MIN_TEST, TRAIN, VAL
from .ground_truth import GT_ROOT, SEEDS, zoo
from .tasks import all_tasks


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``y ≈ a + b x``; through the origin when every x is equal."""
    if np.ptp(x) == 0:
        return 0.0, float(np.mean(y) / np.mean(x))
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def _sizes(spec) -> tuple[int, int]:
    """(train examples, all examples) of a task without building it (test: up to ``MAX_TEST`` per class)."""
    c = len(spec.classes)
    test = (343 if spec.name == "drugs-rating" else 379) if spec.name.startswith("drugs-") else c * MAX_TEST
    return c * TRAIN, c * (TRAIN + VAL) + max(test, c * MIN_TEST)


def project(modality: str, assume: dict[str, str] | None = None) -> dict:
    """The projection; ``assume`` maps an unmeasured model to a measured one of the same architecture."""
    assume = assume or {}
    units = [u for u in (read_json(p) for p in sorted((GT_ROOT / modality).glob("*/*/seed*.json")))
             if "cpu_seconds" in u]
    if not units:
        raise SystemExit(f"No measured {modality} unit with cpu_seconds yet; run v2.ground_truth on one target.")
    models = zoo(modality)[0]
    fits = {}
    for m in models:
        rows = [u for u in units if u["model"] == assume.get(m, m)]
        if not rows:
            raise SystemExit(f"No measured unit of {m}; measure it or pass --assume {m}=<measured model>.")
        n_train = np.array([u["splits"]["train"] for u in rows], dtype=float)
        pair = {u["task"]: (sum(u["splits"].values()), u["pair_cpu_seconds"]) for u in rows}
        n_all, pair_cpu = (np.array(v, dtype=float) for v in zip(*pair.values()))
        fits[m] = {"unit": _fit(n_train, np.array([u["cpu_seconds"] for u in rows])),
                   "pair_per_example": float(pair_cpu.sum() / n_all.sum())}
    total, by_role = 0.0, {}
    for spec in all_tasks(modality):
        n_train, n_all = _sizes(spec)
        cost = sum(len(SEEDS) * (f["unit"][0] + f["unit"][1] * n_train) + f["pair_per_example"] * n_all
                   for f in fits.values())
        by_role[spec.role] = by_role.get(spec.role, 0.0) + cost
        total += cost
    return {"modality": modality, "measured_units": len(units), "measured_tasks": sorted({u["task"] for u in units}),
            "tasks": len(all_tasks(modality)), "models": len(models), "seeds": len(SEEDS),
            "cpu_hours_by_role": {r: round(v / 3600, 1) for r, v in by_role.items()},
            "cpu_hours_total": round(total / 3600, 1),
            "wall_hours_on_2_idle_cores": round(total / 3600 / 2, 1),
            "assumed": assume, "fits": {m: {"unit_cpu_s": f"{f['unit'][0]:.2f} + {f['unit'][1]:.4f} * n_train",
                         "pair_cpu_s_per_example": round(f["pair_per_example"], 4)} for m, f in fits.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=["image", "text"], required=True)
    parser.add_argument("--assume", nargs="*", default=[], metavar="MODEL=MEASURED",
                        help="cost an unmeasured model as a measured one of the same architecture")
    args = parser.parse_args(argv)
    print(json.dumps(project(args.modality, dict(a.split("=", 1) for a in args.assume)), indent=1))


if __name__ == "__main__":
    main()
