"""Fit the bundled Hub-zoo selectors' predicted accuracy and measure its error and interval coverage.

    python -m benchmarks.hubzoo.calibrate --side image|text|both

Writes ``hf_spider/bundled/hubzoo-<side>/accuracy.json`` + ``accuracy.safetensors`` (keyed by model id and target
name), sets ``num_parameters`` in its ``zoo.json`` from the TransferGraph model metadata, and re-renders its card
with the measured numbers. The model is ``hf_spider.accuracy`` (task level from the most similar training targets +
an offset by rank percentile, 80 % interval from leave-one-target-out residuals per rank quartile), fitted by
``hf_spider.accuracy_fit`` from:

* the measured accuracies (``hf_spider.hubzoo.load_transfergraph``);
* each target's label embedding, by the bundled selector's own ``label_name_token`` (what ``rank`` sees);
* per-model leave-one-target-out scores of the selector: ``benchmarks/hubzoo.json`` key ``_scores`` =
  ``{side: {target: {"spider": {model_id: score}}}}``. Without it, the zoo_mean scores (mean rank-normalised accuracy
  over the other targets) stand in, and the output says so: re-run once ``_scores`` is written.

Coverage and error are measured nested: for each target, the whole calibration is fitted without it and counted on
it. The inner targets' LOTO scores come from selectors that did see the outer target (one selector per held-out
target); the accuracy levels, the offset curve and the interval never see it. Runs in seconds after the encoder
loads. Deterministic.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from hf_spider.accuracy import ACCURACY_JSON, ACCURACY_TENSORS, normalise_label, task_embedding
from hf_spider.accuracy_fit import fit_accuracy_model, nested_loto, rank_percentiles
from hf_spider.errors import InvalidInputError
from hf_spider.hubzoo import HubZooRecords, load_transfergraph, model_source_labels
from hf_spider.selector import SpiderSelector

from .labels import load_label_names

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "hf_spider" / "bundled"
SCORES_PATH = REPO / "benchmarks" / "hubzoo.json"
LEVEL = 0.8


def loto_scores(records: HubZooRecords, models: list[str], path: Path = SCORES_PATH) -> tuple[np.ndarray, str]:
    """``(T, M)`` leave-one-target-out scores in ``models`` order (NaN: unscored), and where they come from."""
    saved = json.loads(path.read_text()).get("_scores", {}).get(records.side) if path.is_file() else None
    if saved:
        missing = [t for t in records.targets if "spider" not in saved.get(t, {})]
        if missing:
            raise InvalidInputError(f"{path} _scores[{records.side!r}] has no 'spider' scores for {missing}.")
        scores = np.array([[saved[t]["spider"].get(m, np.nan) for m in models] for t in records.targets], float)
        return scores, f"the selector's own leave-one-target-out scores ({path.name} `_scores`, method spider)"
    column = {m: j for j, m in enumerate(records.models)}
    accuracy = records.accuracy[:, [column[m] for m in models]]  # (T, M)
    ranks = _rank_normalise(accuracy)
    known = np.isfinite(ranks)
    totals, counts = np.where(known, ranks, 0).sum(0), known.sum(0)  # (M,): leave one target out by subtraction
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (totals[None, :] - np.where(known, ranks, 0)) / (counts[None, :] - known)
    return scores, (f"STAND-IN: zoo_mean leave-one-target-out scores (mean rank-normalised accuracy over the other "
                    f"targets), because {path.name} has no `_scores`; re-run once the selector's own are saved")


def _rank_normalise(values: np.ndarray) -> np.ndarray:
    """Per row, ranks scaled to (0, 1] over the finite entries (NaN stays NaN)."""
    from scipy import stats

    ranks = stats.rankdata(np.where(np.isfinite(values), values, np.inf), axis=1)  # NaN rows' entries rank last
    counts = np.isfinite(values).sum(1, keepdims=True)
    return np.where(np.isfinite(values), ranks / np.maximum(counts, 1), np.nan)


def calibrate(side: str, folder: Path | None = None, scores_path: Path = SCORES_PATH) -> dict:
    """Fit, measure and write the accuracy model of one bundled selector; returns what was measured."""
    folder = folder or BUNDLED / f"hubzoo-{side}"
    records = load_transfergraph(side)
    selector = _load_uncalibrated(folder)
    models = selector.model_ids
    if set(models) != set(records.models):
        raise InvalidInputError(f"{folder} ranks {len(models)} models, the {side} records hold {len(records.models)}"
                                "; rebuild the selector (python -m benchmarks.hubzoo.build_bundled) first.")
    labels = load_label_names()
    embeddings = np.stack([task_embedding(selector.label_name_token(labels[t]["names"]).prototypes)
                           for t in records.targets])  # (T, d), 10 targets
    column = {m: j for j, m in enumerate(records.models)}
    accuracy = records.accuracy[:, [column[m] for m in models]]
    scores, source = loto_scores(records, models, scores_path)
    percentiles = rank_percentiles(scores)
    measured = nested_loto(embeddings, accuracy, percentiles, level=LEVEL)
    flat = nested_loto(embeddings, accuracy, percentiles, level=LEVEL, rank_curve=False)
    # equal embeddings make every training target equally similar: the plain mean level, the baseline of both parts
    plain = nested_loto(np.ones_like(embeddings), accuracy, percentiles, level=LEVEL, rank_curve=False)
    command = f"python -m benchmarks.hubzoo.calibrate --side {side}"
    calibration = {
        "scores": source,
        "num_targets": len(records.targets),
        "coverage": round(measured["coverage"], 4),
        "coverage_min": round(measured["coverage_min"], 4),
        "coverage_max": round(measured["coverage_max"], 4),
        "mae": round(measured["mae"], 4),
        "mae_task_level_only": round(flat["mae"], 4),
        "mae_mean_level_only": round(plain["mae"], 4),
        "per_target": {records.targets[t]: {"mae": round(e, 4), "coverage": round(c, 4), "models": n}
                       for t, (e, c, n) in measured["per_target"].items()},
        "command": command,
    }
    meta = records.model_meta.loc[models]
    sources = [source_label_names(row, labels) for _, row in meta.iterrows()]
    selector.accuracy = fit_accuracy_model(embeddings, accuracy, percentiles, targets=records.targets,
                                           model_ids=models, task_encoder=selector.config.task_encoder,
                                           source_labels=sources, level=LEVEL, calibration=calibration)
    sizes = meta["num_parameters"]
    selector.zoo = [replace(e, num_parameters=int(sizes[e.model_id]) if not _missing(sizes[e.model_id])
                            else e.num_parameters) for e in selector.zoo]
    selector.save_pretrained(folder)
    return {"side": side, "folder": str(folder), "interval": selector.accuracy.interval.tolist(), **calibration}


def source_label_names(meta_row, label_names: dict[str, dict]) -> list[str]:
    """The class names a model was fine-tuned on; a source given as the name of a benchmark target ("glue/cola")
    becomes that target's class names, so ``same_label_set`` can say yes for it."""
    names = model_source_labels(meta_row)
    by_name = {normalise_label(t): entry["names"] for t, entry in label_names.items()}
    if len(names) == 1 and normalise_label(names[0]) in by_name:
        return list(by_name[normalise_label(names[0])])
    return names


def _load_uncalibrated(folder: Path) -> SpiderSelector:
    """The selector in ``folder`` without its current calibration, which may be of an older format or belong to the
    network it replaces: loaded from a copy, so ``folder`` changes only when the new calibration is saved."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(ACCURACY_JSON, ACCURACY_TENSORS))
        return SpiderSelector.from_pretrained(copy, token_source="mirror")


def _missing(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def report(result: dict) -> str:
    """What was measured, as printed by the command."""
    lines = [f"{result['side']}: {result['folder']}", f"  scores: {result['scores']}",
             f"  nested leave-one-target-out over {result['num_targets']} targets (calibration fitted without the "
             "held-out target, counted on it):",
             f"  MAE {result['mae']:.4f} (task level alone: {result['mae_task_level_only']:.4f}; the training "
             f"targets' mean level alone: {result['mae_mean_level_only']:.4f}); coverage of the "
             f"{LEVEL:.0%} interval {result['coverage']:.1%} (per target {result['coverage_min']:.0%}-"
             f"{result['coverage_max']:.0%})",
             "  shipped interval offsets by rank quartile: "
             + ", ".join(f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in result["interval"]),
             f"  {'target':<32} {'MAE':>7} {'cover':>6} {'models':>6}"]
    lines += [f"  {t:<32} {v['mae']:>7.4f} {v['coverage']:>6.1%} {v['models']:>6}"
              for t, v in result["per_target"].items()]
    lines.append(f"  reproduce: {result['command']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["image", "text", "both"], default="both")
    args = parser.parse_args(argv)
    for side in ["image", "text"] if args.side == "both" else [args.side]:
        print(report(calibrate(side)), flush=True)


if __name__ == "__main__":
    main()
