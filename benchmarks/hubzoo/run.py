"""Hub-zoo benchmark: rank 185 real Hub image / 164 text models for a held-out target, without any forward pass.

    python -m benchmarks.hubzoo.run --side image|text|both [--quick]

Protocols (both leave one target out; the held-out target's accuracies and scores reach nothing but the metrics):
  * ``loto``: train on the other targets' results, rank every model for the held-out target.
  * ``lmo``: as ``loto`` and, in addition, a seeded 20 % of the models is unseen in training (NaN performance in
    every training task, no free residual): their tokens come from metadata alone.

Methods: published LogME / reg. H-score (forward-pass baselines, where scored), sort by own source accuracy, sort by
parameter count, ``zoo_mean`` (mean rank-normalised accuracy over the training targets; unseen models: a ridge fit
from metadata features on the seen ones), ``label_knn`` (the same, training targets weighted by label-name
similarity, temperature from an inner leave-one-out) and ``spider`` (the average-rank prior + task inputs + fitness
network, every choice by nested leave-one-target-out: ``benchmarks.hubzoo.recipe``). Ablations of ``spider``:
``spider@unrelated_labels`` (target i ranked with target i+1's class names) and ``spider@prior_only`` (nothing that
reads the task). ``_details.<side>.bootstrap``: paired-bootstrap 95 % intervals over targets of the differences;
``_scores``: every model's LOTO score per target for ``spider`` and ``zoo_mean``.

``--quick`` is a smoke test (2 folds, tiny grid, every stage kept) that prints and writes nothing. Otherwise writes
(merging with what is there, so sides can run in separate processes) ``benchmarks/hubzoo.json`` and
``benchmarks/HUBZOO.md``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from hf_spider.evaluation import kendall_tau, pearson, regret_at_k, weighted_tau

from .common import SideData, load_side, loo_folds, models_out_split
from .recipe import Recipe, fit, model_side

logger = logging.getLogger(__name__)
OUT_DIR = Path(__file__).resolve().parents[1]
JSON_PATH, MD_PATH = OUT_DIR / "hubzoo.json", OUT_DIR / "HUBZOO.md"
LMO_FRACTION, LMO_SEED = 0.2, 0


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1] over the finite entries; NaN stays NaN. ``(M,)``."""
    out = np.full(values.shape, np.nan)
    known = np.isfinite(values)
    out[known] = stats.rankdata(values[known]) / max(known.sum(), 1)
    return out


def prior_feature(data: SideData, targets: list[str], seen: np.ndarray | None) -> np.ndarray:
    """``(M, 2)``: mean rank-normalised accuracy over ``targets`` (seen models only), centred, plus a missing flag."""
    acc = np.stack([data.accuracy[data.records.targets.index(t)] for t in targets])  # (T', M)
    if seen is not None:
        acc = np.where(seen[None, :], acc, np.nan)
    ranks = np.stack([rank_normalise(a) for a in acc])
    with np.errstate(all="ignore"), _quiet():
        mean = np.nanmean(ranks, axis=0)
    missing = ~np.isfinite(mean)
    return np.stack([np.where(missing, 0.0, 4 * (mean - 0.5)), missing], axis=1).astype(np.float32)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def zoo_mean(data: SideData, targets: list[str], seen: np.ndarray | None) -> np.ndarray:
    """Mean rank-normalised accuracy over training targets; models without one get a ridge fit from metadata."""
    prior = prior_feature(data, targets, seen)
    score, missing = prior[:, 0].astype(float), prior[:, 1] > 0
    if missing.any():
        x = data.features.astype(float)
        xs, ys = x[~missing], score[~missing]
        w = np.linalg.solve(xs.T @ xs + 10.0 * np.eye(x.shape[1]), xs.T @ (ys - ys.mean()))
        score[missing] = x[missing] @ w + ys.mean()
    return score


KNN_TEMPERATURES = (float("inf"), 0.5, 0.2, 0.1, 0.05)


def _task_embedding(prototypes: torch.Tensor) -> np.ndarray:
    mean = prototypes.mean(0)
    return (mean / mean.norm().clamp_min(1e-8)).numpy()


def label_knn(data: SideData, targets: list[str], query: torch.Tensor, seen: np.ndarray | None,
              temperature: float) -> np.ndarray:
    """Training targets' rank-normalised accuracies, averaged with weights ``softmax(cos(label emb) / temperature)``.

    ``temperature=inf`` is ``zoo_mean``; models without a training run fall back to ``zoo_mean``'s ridge.
    """
    ranks = np.stack([rank_normalise(data.accuracy[data.records.targets.index(t)]) for t in targets])  # (T', M)
    if seen is not None:
        ranks = np.where(seen[None, :], ranks, np.nan)
    sims = np.array([_task_embedding(data.prototypes[t]) @ _task_embedding(query) for t in targets])
    weights = np.ones_like(sims) if np.isinf(temperature) else np.exp((sims - sims.max()) / temperature)
    known = np.isfinite(ranks)
    total = (known * weights[:, None]).sum(0)
    score = (np.nan_to_num(ranks) * weights[:, None]).sum(0) / np.maximum(total, 1e-12)
    fallback = zoo_mean(data, targets, seen)
    # put fallback models on the same scale: zoo_mean's prior column is 4 * (mean rank - 0.5)
    return np.where(total > 0, score, fallback / 4 + 0.5)


def choose_temperature(data: SideData, targets: list[str], seen: np.ndarray | None) -> float:
    """Inner leave-one-out over ``targets`` only: the temperature with the best mean Kendall tau."""
    mean = {}
    for temperature in KNN_TEMPERATURES:
        taus = []
        for held in targets:
            rest = [t for t in targets if t != held]
            pred = label_knn(data, rest, data.prototypes[held], seen, temperature)
            taus.append(kendall_tau(data.accuracy[data.records.targets.index(held)], pred))
        mean[temperature] = float(np.nanmean(taus))
    return max(mean, key=mean.get)


def metrics(truth: np.ndarray, pred: np.ndarray, seen: np.ndarray | None = None,
            scored: np.ndarray | None = None) -> dict[str, float]:
    """Kendall / weighted tau, Pearson, top-1 / top-5 regret (accuracy points) over models with a run.

    ``seen`` adds the Kendall tau among unseen models only; ``scored`` (models with a LogME score on the target)
    adds the Kendall tau on exactly the models LogME ranks.
    """
    out = {
        "kendall_tau": kendall_tau(truth, pred),
        "weighted_tau": weighted_tau(truth, pred),
        "pearson": pearson(truth, pred),
        "regret_at_1": 100 * regret_at_k(truth, pred, 1),
        "regret_at_5": 100 * regret_at_k(truth, pred, 5),
    }
    if seen is not None:
        unseen_truth = np.where(seen, np.nan, truth)
        out["kendall_tau_unseen"] = kendall_tau(unseen_truth, pred)
    if scored is not None and scored.sum() >= 2:
        out["kendall_tau_logme_models"] = kendall_tau(np.where(scored, truth, np.nan), pred)
    return {k: round(float(v), 4) for k, v in out.items()}


UNRELATED_SHIFT = 1  # spider@unrelated_labels: target i is ranked with the class names of target i + 1 (cyclic)
BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED = 10_000, 0


def paired_bootstrap(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Mean of ``a - b`` over the targets both have, with a paired-bootstrap 95 % interval over targets."""
    keys = [t for t in a if t in b and np.isfinite(a[t]) and np.isfinite(b[t])]
    diff = np.array([a[t] - b[t] for t in keys])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = diff[rng.integers(0, len(diff), (BOOTSTRAP_SAMPLES, len(diff)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(diff.mean()), 4), "low": round(float(low), 4), "high": round(float(high), 4),
            "targets": len(keys)}


COMPARISONS = [  # (name, method a, method b, metric): a - b
    ("spider - zoo_mean", "spider", "zoo_mean", "kendall_tau"),
    ("spider@unrelated_labels - spider", "spider@unrelated_labels", "spider", "kendall_tau"),
    ("spider@prior_only - spider", "spider@prior_only", "spider", "kendall_tau"),
    ("spider@lmo - zoo_mean@lmo", "spider@lmo", "zoo_mean@lmo", "kendall_tau"),
    ("spider@lmo - zoo_mean@lmo (unseen models)", "spider@lmo", "zoo_mean@lmo", "kendall_tau_unseen"),
]


def bootstrap(results: dict) -> dict:
    """``_details.<side>.bootstrap``: every comparison of ``COMPARISONS`` over this side's targets."""
    out = {}
    for name, a, b, metric in COMPARISONS:
        if a in results and b in results:
            pick = {m: {t: v[metric] for t, v in results[m].items() if v.get(metric) is not None} for m in (a, b)}
            out[name] = {"metric": metric, **paired_bootstrap(pick[a], pick[b])}
    return out


TIMING_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def ranking_seconds(data: SideData, model, targets: list[str], repeats: int = 5) -> dict:
    """Warm ranking time of a selector built from ``model``, median of ``repeats`` calls, for a 10-class task:
    ``rank_task`` on a ready task token (the zoo's scoring and sorting) and the whole ``label_name_token`` +
    ``rank_task`` (adds the MiniLM encoding of the class names, which grows with the class count, not the zoo)."""
    from .build_bundled import make_selector

    selector = make_selector(data, model, targets)
    token = selector.label_name_token(TIMING_NAMES)  # warm: encoder loaded
    selector.rank_task(token)

    def median(call) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return round(float(np.median(times)), 4)

    return {"rank_task_s": median(lambda: selector.rank_task(token)),
            "names_to_ranking_s": median(lambda: selector.rank_task(selector.label_name_token(TIMING_NAMES))),
            "models": len(selector.zoo), "classes": len(TIMING_NAMES), "repeats": repeats}


def run_side(side: str, *, quick: bool = False, only: list[str] | None = None) -> tuple[dict, dict, dict]:
    """All methods, both protocols, on one side; returns ``({method: {target: metrics}}, details, scores)``.

    ``only``: held-out targets to run (a shard; ``finish_side`` adds the side-wide details once all are in)."""
    data = load_side(side)
    inputs = model_side(data)
    recipe = Recipe()
    if quick:
        recipe.epoch_grid, recipe.net_folds, recipe.seeds = (0, 5), 2, (0,)
        recipe.tolerance = -1.0  # a smoke test exercises every stage: always keep an input and the network
    meta = data.records.model_meta
    static = {
        "source_accuracy": np.nan_to_num(meta["source_accuracy"].to_numpy(float), nan=-1.0),
        "num_parameters": np.nan_to_num(meta["num_parameters"].astype(float).to_numpy(), nan=0.0),
    }
    targets, models = data.records.targets, data.records.models
    unrelated = {t: targets[(i + UNRELATED_SHIFT) % len(targets)] for i, t in enumerate(targets)}
    results: dict[str, dict] = {}
    details: dict[str, dict] = {}
    scores: dict[str, dict] = {}
    folds = loo_folds(targets)[: 2 if quick else None]
    folds = [f for f in folds if only is None or f[0] in only]
    seen_lmo = models_out_split(len(models), LMO_FRACTION, LMO_SEED)
    model = None
    for held, train in folds:
        i = targets.index(held)
        truth = data.accuracy[i]
        for name, baseline in [("logme", data.records.logme[i]), ("reg_hscore", data.records.reg_hscore[i])]:
            if np.isfinite(baseline).sum() >= 2:
                known = np.isfinite(baseline)  # a baseline only ranks the models it scored
                results.setdefault(name, {})[held] = metrics(np.where(known, truth, np.nan), baseline)
        for name, baseline in static.items():
            results.setdefault(name, {})[held] = metrics(truth, baseline)
        for protocol, seen in [("loto", None), ("lmo", seen_lmo)]:
            suffix = "" if protocol == "loto" else "@lmo"
            start = time.perf_counter()
            scored = np.isfinite(data.records.logme[i])
            prior_scores = zoo_mean(data, train, seen)
            results.setdefault("zoo_mean" + suffix, {})[held] = metrics(truth, prior_scores, seen, scored)
            temperature = choose_temperature(data, train, seen)
            knn = label_knn(data, train, data.prototypes[held], seen, temperature)
            results.setdefault("label_knn" + suffix, {})[held] = metrics(truth, knn, seen, scored)
            model = fit(data, inputs, train, seen, recipe)
            pred = model.score(data.prototypes[held])
            results.setdefault("spider" + suffix, {})[held] = metrics(truth, pred, seen, scored)
            if protocol == "loto":
                results.setdefault("spider@unrelated_labels", {})[held] = metrics(
                    truth, model.score(data.prototypes[unrelated[held]]), None, scored)
                results.setdefault("spider@prior_only", {})[held] = metrics(
                    truth, model.score(data.prototypes[held], task_free=True), None, scored)
                scores[held] = {"spider": _rounded(models, pred), "zoo_mean": _rounded(models, prior_scores)}
            details.setdefault(protocol, {})[held] = {
                **model.choice, "knn_temperature": temperature if np.isfinite(temperature) else "inf",
                "seconds": round(time.perf_counter() - start, 1)}
            logger.info("%s %s %s: tau %.3f (zoo_mean %.3f); inputs %s, epochs %d, network weight %.2f", side,
                        protocol, held, results["spider" + suffix][held]["kendall_tau"],
                        results["zoo_mean" + suffix][held]["kendall_tau"], model.choice["groups"],
                        model.choice["epochs"], model.choice["network_weight"])
    details["recipe"] = json.loads(json.dumps(asdict(recipe)))
    details["lmo_unseen_models"] = int((~seen_lmo).sum())
    details["unrelated_labels"] = unrelated
    if only is None or targets[-1] in only:  # the fold of the last target: time a selector built from it
        details["ranking_time"] = ranking_seconds(data, model, folds[-1][1])
    return results, details, scores


def finish_side(shards: list[tuple[dict, dict, dict]]) -> tuple[dict, dict, dict]:
    """Merge the shards of one side (disjoint held-out targets) and add the paired bootstrap."""
    results: dict[str, dict] = {}
    details: dict = {}
    scores: dict = {}
    for r, d, sc in shards:
        for method, per_target in r.items():
            results.setdefault(method, {}).update(per_target)
        for key, value in d.items():
            if key in ("loto", "lmo"):
                details.setdefault(key, {}).update(value)
            else:
                details[key] = value
        scores.update(sc)
    details["bootstrap"] = bootstrap(results)
    return results, details, scores


def _rounded(models: list[str], values: np.ndarray) -> dict[str, float]:
    return {m: round(float(v), 5) for m, v in zip(models, values)}


def merge_json(side: str, results: dict, details: dict, scores: dict) -> dict:
    """Merge one side's results into ``hubzoo.json`` under a file lock (sides may run in parallel)."""
    with open(JSON_PATH.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        payload = json.loads(JSON_PATH.read_text()) if JSON_PATH.is_file() else {}
        payload.setdefault("_details", {})[side] = details
        payload.setdefault("_scores", {})[side] = scores
        for method, per_target in results.items():
            payload.setdefault(method, {}).update(per_target)
        JSON_PATH.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    JSON_PATH.with_suffix(".lock").unlink(missing_ok=True)
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["image", "text", "both"], default="both")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 folds, tiny epoch grid, one seed; prints, writes nothing")
    parser.add_argument("--report-only", action="store_true", help="re-render HUBZOO.md from hubzoo.json")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: small models, no stalls)")
    parser.add_argument("--targets", help="comma-separated held-out targets: run only these folds (a shard) and "
                        "write them to --shard-out instead of the report")
    parser.add_argument("--shard-out", type=Path, help="where a --targets shard is written (JSON)")
    parser.add_argument("--merge-shards", type=Path, nargs="+", help="merge shard files of one --side into the report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    from .report import render

    if args.report_only:
        MD_PATH.write_text(render(json.loads(JSON_PATH.read_text())))
        return
    if args.targets or args.merge_shards:
        _shards(args, render)
        return
    for side in ["image", "text"] if args.side == "both" else [args.side]:
        start = time.perf_counter()
        results, details, scores = finish_side([run_side(side, quick=args.quick)])
        details["seconds"] = round(time.perf_counter() - start)
        details["command"] = f"python -m benchmarks.hubzoo.run --side {args.side}"
        if args.quick:  # a smoke test: print, never overwrite the reported results
            for method, per_target in sorted(results.items()):
                taus = [m["kendall_tau"] for m in per_target.values()]
                print(f"{side} {method:24s} mean kendall tau {np.nanmean(taus):.3f} over {len(taus)} targets")
            print(json.dumps({k: details.get(k) for k in ("bootstrap", "ranking_time")}, indent=1))
            continue
        payload = merge_json(side, results, details, scores)
        MD_PATH.write_text(render(payload))
        print(f"{side}: done in {details['seconds']} s; wrote {JSON_PATH} and {MD_PATH}")


def _shards(args: argparse.Namespace, render) -> None:
    """``--targets`` runs one shard into ``--shard-out``; ``--merge-shards`` merges them into the report."""
    if args.side == "both":
        raise SystemExit("--targets / --merge-shards work on one --side.")
    if args.targets:
        start = time.perf_counter()
        results, details, scores = run_side(args.side, only=args.targets.split(","))
        details["seconds"] = round(time.perf_counter() - start)
        args.shard_out.write_text(json.dumps({"results": results, "details": details, "scores": scores}))
        return
    shards = [json.loads(p.read_text()) for p in args.merge_shards]
    results, details, scores = finish_side([(s["results"], s["details"], s["scores"]) for s in shards])
    details["seconds"] = sum(s["details"]["seconds"] for s in shards)
    details["command"] = (f"python -m benchmarks.hubzoo.run --side {args.side} --targets <a shard> --shard-out "
                          f"<file> (x{len(shards)} in parallel), then --merge-shards <files>")
    payload = merge_json(args.side, results, details, scores)
    MD_PATH.write_text(render(payload))
    print(f"{args.side}: merged {len(shards)} shards; wrote {JSON_PATH} and {MD_PATH}")


if __name__ == "__main__":
    main()
