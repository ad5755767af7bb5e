"""Project the CPU cost of the whole v2 ground truth from the units measured so far.

    python -m benchmarks.spiderbench.v2.cost --modality image

For each zoo model, the CPU seconds of a unit (one seed: fine-tuning at every learning rate plus the evaluations) are
fitted as ``a + b · size_train`` over the measured units (least squares; one measured task size: proportional), and
a pair's one-off cost (load, frozen-trunk or feature pass of all splits) as ``c · size_all``. The size is the number
of examples for images and the number of tokens (MiniLM tokenizer, truncated at 64) for texts, whose lengths differ
by 10× between sources (kaomoji, package descriptions vs drugs.com reviews); text sizes are read from the task
splits, which are built (and cached) for that.
The projection sums these over every task of the modality, every model and every seed. CPU seconds are
``time.process_time`` of a 1-thread process: on an idle core, wall time ≈ CPU time.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..common import read_json
from .data import MAX_TEST, TRAIN, VAL
from .ground_truth import GT_ROOT, SEEDS, zoo
from .tasks import all_tasks


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``y ≈ a + b x``; through the origin when every x is equal."""
    if np.ptp(x) == 0:
        return 0.0, float(np.mean(y) / np.mean(x))
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def _sizes(spec) -> tuple[int, int]:
    """(train size, all size) of a task: examples for images (test: up to ``MAX_TEST`` per class), tokens for texts."""
    c = len(spec.classes)
    if spec.modality == "image":
        return c * TRAIN, c * (TRAIN + VAL) + c * MAX_TEST
    from .data import task_splits

    splits = task_splits(spec)
    tokens = {s: int(sum(_token_counts(texts))) for s, (texts, _) in splits.items()}
    return tokens["train"], sum(tokens.values())


def _token_counts(texts: list[str]) -> list[int]:
    from transformers import AutoTokenizer

    from ..text.common import MAX_LENGTH, base_path

    tokenizer = _TOKENIZER.setdefault("t", AutoTokenizer.from_pretrained(base_path()))
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]


_TOKENIZER: dict = {}


def _unit_sizes(unit: dict, modality: str) -> tuple[float, float]:
    """(train size, all size) of a measured unit's task, in the unit of ``_sizes``."""
    if modality == "image":
        return float(unit["splits"]["train"]), float(sum(unit["splits"].values()))
    from .tasks import get_task

    return tuple(float(v) for v in _sizes(get_task(unit["task"])))


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
        sizes = {u["task"]: _unit_sizes(u, modality) for u in rows}
        n_train = np.array([sizes[u["task"]][0] for u in rows], dtype=float)
        pair = {u["task"]: (sizes[u["task"]][1], u["pair_cpu_seconds"]) for u in rows}
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
            "assumed": assume, "size": "examples" if modality == "image" else "tokens",
            "fits": {m: {"unit_cpu_s": f"{f['unit'][0]:.2f} + {f['unit'][1]:.5f} * train_size",
                         "pair_cpu_s_per_size": round(f["pair_per_example"], 5)} for m, f in fits.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=["image", "text"], required=True)
    parser.add_argument("--assume", nargs="*", default=[], metavar="MODEL=MEASURED",
                        help="cost an unmeasured model as a measured one of the same architecture")
    args = parser.parse_args(argv)
    print(json.dumps(project(args.modality, dict(a.split("=", 1) for a in args.assume)), indent=1))


if __name__ == "__main__":
    main()
