"""Time every registered transferability estimator on random features and print a markdown table (not a test).

    python benchmarks/estimators.py                         # N in {1k, 5k, 20k} x D in {384, 1280}
    python benchmarks/estimators.py --quick                 # N = 1k, D = 384 only
    python benchmarks/estimators.py --skip linear_probe,nleep --cap 60

Features are Gaussian with a weak class signal (10 classes); LEEP and NCE get softmax probabilities over 1000 source
classes. Sizes run smallest first (by N x D); once an estimator takes longer than `--cap` seconds it is not run on
larger sizes. Each cell is one timed call (after a warm-up call on tiny data that pays import costs).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from hf_spider.estimators import ESTIMATORS, needs_source_probs

SIZES = [(n, d) for n in (1_000, 5_000, 20_000) for d in (384, 1280)]


def make_data(n: int, d: int, *, n_classes: int, n_source: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    features = (rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n_classes, d))[labels]).astype(np.float32)
    logits = rng.normal(size=(n, n_source)) + 2.0 * rng.normal(size=(n_classes, n_source))[labels]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return features, labels, probs / probs.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run only N=1000, D=384")
    parser.add_argument("--skip", default="", help="comma-separated estimator names not to run")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds after which an estimator stops growing")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--source-classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    skip = {name for name in args.skip.split(",") if name}
    unknown = skip - set(ESTIMATORS)
    if unknown:
        parser.error(f"unknown estimators in --skip: {sorted(unknown)}; known: {sorted(ESTIMATORS)}")
    sizes = sorted(SIZES[:1] if args.quick else SIZES, key=lambda size: size[0] * size[1])

    warm = make_data(60, 8, n_classes=3, n_source=5, seed=0)
    for name, function in ESTIMATORS.items():  # pay first-call costs (scikit-learn imports) outside the timings
        if name not in skip:
            function(warm[0], warm[1], source_probs=warm[2] if needs_source_probs(name) else None)

    cells: dict[str, list[str]] = {name: [] for name in ESTIMATORS}
    capped: set[str] = set()
    for n, d in sizes:
        features, labels, probs = make_data(n, d, n_classes=args.classes, n_source=args.source_classes, seed=args.seed)
        for name, function in ESTIMATORS.items():
            if name in skip:
                cells[name].append("skipped")
                continue
            if name in capped:
                cells[name].append(f"not run (> {args.cap:g} s before)")
                continue
            start = time.perf_counter()
            function(features, labels, source_probs=probs if needs_source_probs(name) else None)
            seconds = time.perf_counter() - start
            cells[name].append(f"{seconds:.3f}")
            if seconds > args.cap:
                capped.add(name)
            print(f"  {name:>12s}  N={n:>6d} D={d:>5d}  {seconds:8.3f} s", flush=True)

    print(
        f"\nnumpy {np.__version__}, {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; "
        f"{args.classes} classes, {args.source_classes} source classes (leep, nce); seconds per call\n"
    )
    print("| estimator | " + " | ".join(f"N={n // 1000}k D={d}" for n, d in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, row in cells.items():
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
