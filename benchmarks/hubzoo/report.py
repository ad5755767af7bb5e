"""Render ``benchmarks/hubzoo.json`` into ``benchmarks/HUBZOO.md`` (tables are generated; NOTES is hand-written)."""

from __future__ import annotations

import numpy as np

from hf_spider.hubzoo import load_transfergraph

METHODS = ["logme", "reg_hscore", "source_accuracy", "num_parameters", "zoo_mean", "label_knn", "spider",
           "spider@unrelated_labels", "spider@prior_only"]
LOTO_ONLY = ("spider@unrelated_labels", "spider@prior_only")
LEARNED = ("zoo_mean", "label_knn", "spider")
COLUMNS = ["kendall_tau", "weighted_tau", "pearson", "regret_at_1", "regret_at_5"]
NOTES_PATH_KEY = "_notes"

NOTES = """\
## Methods

- **logme / reg_hscore**: the study's published forward-pass scores (7 of 10 image, 8 of 10 text targets), ranked on
  the models the study scored. **source_accuracy / num_parameters**: sort by the card's own accuracy / size.
- **zoo_mean**: mean rank-normalised accuracy over the training targets (no task token at all); in the
  leave-models-out protocol unseen models get a ridge regression from metadata features fitted on the seen ones.
- **label_knn**: as zoo_mean but training targets weighted by `softmax(cos(mean label-name embedding) / T)`, `T` from
  {inf, 0.5, 0.2, 0.1, 0.05} chosen by an inner leave-one-out on the training targets.
- **spider** (`benchmarks/hubzoo/recipe.py`, stored by `hf_spider.task_inputs`):
  `score_m = s * prior_m + w . x_m(task) + lambda * g_m(task)`.
  - `prior_m`: the model's mean rank over the training targets (zoo_mean). While fitting, every training target's
    prior is computed *without* that target (leave-one-out), so `s`, `w` and `g` learn how far the prior carries to a
    target it has not seen (the previous recipe fed the network a prior that held the training target's own
    accuracies).
  - `x_m(task)`, the task inputs (standardised): `label_match` (cosine between the mean MiniLM embedding of the
    target's class names and of the model's own class names), `description_match` (the same against the model's id
    read as words plus its source dataset), `classes_x_size` (log class count x log parameters), `model_size`.
    `s` and `w` by ListMLE (L-BFGS, L2 1e-2 on `w`).
  - `g`: the fitness network (token_dim 32, 1 layer, 4 heads; metadata model tokens + L2-penalised residual, as
    before; label-name task token; ListMLE, AdamW lr 3e-3, 128 models and <= 32 classes per step) trained on the
    deviation from `s * prior + w . x`; 2 seeds averaged.
  - Nested leave-one-target-out inside every outer fold (the held-out target never enters): inputs by forward
    selection over all inner held-out targets, kept only if the inner mean Kendall tau rises by >= 0.005; network
    epochs {10, 20} and weight lambda {0.25, 0.5, 1} on 4 seeded inner held-out targets, kept only if they beat the
    inputs-only score by >= 0.005 on the inner mean *and* on every one of the 4. Otherwise lambda = 0 (and with no
    input kept the score is the prior's: spider falls back to zoo_mean).
- **spider@unrelated_labels**: the same fold's selector, given the class names of the next target (cyclic order).
- **spider@prior_only**: the same fold's selector without anything that reads the task (prior + model_size term).

Task token = the label names only; no images or texts of the targets are available offline, so no data-derived
(domain) input could be trained here.

## What was tried (mean Kendall tau, leave one target out)

| variant | image | text |
|---|---|---|
| previous recipe (prior as a token feature, leaking the target's own accuracies) | 0.381 | 0.537 |
| zoo_mean / label_knn (for reference) | 0.395 / 0.403 | 0.553 / 0.553 |
| (a) prior + label_match alone, change | +0.002 | -0.000 |
| (a) prior + description_match alone (id words only), change | -0.002 | -0.002 |
| (a) prior + classes_x_size alone, change | +0.011 | +0.000 |
| (a) prior + model_size alone, change | +0.007 | -0.000 |
| (a) prior + 7 inputs (the above, target-name match, same source dataset, log size x log params) | +0.013 | -0.008 |
| (b) network deviation, 10 epochs, weight 1: caltech101 / ag_news | 0.389 (prior 0.556) | 0.396 (prior 0.419) |
| (b) network, best of 9 settings: ag_news / cola / sst2 / dbpedia | - | -0.005 / 0.000 / -0.009 / +0.009 |
| (c) first run: network kept on the inner mean of 3 targets: caltech101 / ag_news | 0.382 (0.556) | 0.354 (0.419) |

(a) exploration script, outer folds, fixed input set, weights fitted on the training targets (features close to but
not identical to the final ones). (b) diagnostic on the first outer folds, fixed epochs {5, 10, 20} x weight
{0.25, 0.5, 1}. (c) the recipe with a laxer network rule, stopped after those folds.
The first run was stopped after those folds: a network kept on a 3-target inner mean fell far below the prior on
the outer target. The final rule (4 inner targets, must win on each) was fixed before the reported run; the
exploration rows above are outer-fold numbers of fixed settings, reported as measured, not used to pick inputs.

## Reading

- **Floor met on both sides, goals missed.** Image +0.014 over zoo_mean (interval straddles 0), 0.016 short of the
  +0.03 goal; text equal to zoo_mean, 0.047 short of 0.60. Tried: the four task inputs above (each one's inner
  effect is listed per side), the fitness network on the deviation (never passed the nested rule; in the
  diagnostics it hurt on held-out targets), and, in exploration, target-name match, same-source-dataset flag,
  set-to-set label similarity, same class count, log size x log parameters: none moved text by more than +-0.01.
- **What the task changes.** Image: the class count (`classes_x_size`, kept in 7 of 10 folds; larger models rise on
  many-class targets: cifar100, dtd, flowers, pets gain, caltech101 and stanfordcars lose). Removing the task inputs
  (`spider@prior_only`) costs 0.039 with an interval excluding 0; wrong class names cost 0.008 (interval includes 0):
  what matters is how many classes there are, not which. Text: nothing; all ablations equal spider.
- **Top-1 regret.** On images spider's mean regret@1 is worse than zoo_mean's (1.5 vs 0.7 accuracy points) even
  though its Kendall tau is higher: the class-count term reorders the very top on some targets.
- **Unseen models (lmo).** Metadata-only ranking of unseen models: image 0.176 vs zoo_mean@lmo's ridge 0.108
  (interval of the difference +0.019 to +0.125); text equal (0.216), since no input was kept there.

## Bundled selectors

    python -m benchmarks.hubzoo.build_bundled --side both

`hf_spider/bundled/hubzoo-{image,text}/`: the spider recipe on all 10 targets of the side, every choice by the same
nested leave-one-target-out (now over the 10 targets); one network seed, stored even when its weight is 0 (the
score then does not use it). `config.json["task_inputs"]` holds `s`, the kept inputs, their standardisation and
lambda; `model.safetensors` holds the prior vector, the input weights and the model-side tensors the kept inputs
read. `task_token_kind="label_names"`, MiniLM task encoder, `label_prompt` "a photo of {}." (image) / "{}" (text);
`rank` notes "ranked from class names only". The image selector keeps `classes_x_size` (no network); the text
selector keeps nothing and ranks by the prior. `python -m benchmarks.hubzoo.build_bundled --effects-only` copies the
measured differences below into the cards; `python -m benchmarks.hubzoo.run --report-only` re-renders this file
from `benchmarks/hubzoo.json`. The image side was run as 4 parallel shards (`--targets`, `--shard-out`,
`--merge-shards`): the same folds, merged before the bootstrap.
"""


GOALS = {"image": ("zoo_mean + 0.03", 0.03, None), "text": ("0.60", None, 0.60)}  # issue 13's goals


def _verdict(side: str, payload: dict, targets: list[str]) -> list[str]:
    """Floor and goal of the issue, measured: spider vs zoo_mean (LOTO) and unseen models (lmo)."""
    spider, prior = (_mean(payload.get(m, {}), targets, "kendall_tau")[0] for m in ("spider", "zoo_mean"))
    if not (np.isfinite(spider) and np.isfinite(prior)):
        return []
    label, margin, absolute = GOALS[side]
    goal = prior + margin if margin is not None else absolute
    unseen = [_mean(payload.get(m, {}), targets, "kendall_tau_unseen")[0] for m in ("spider@lmo", "zoo_mean@lmo")]
    lines = [f"**{side}**: spider {spider:.3f} vs zoo_mean {prior:.3f} (mean Kendall tau, LOTO). Floor (spider >= "
             f"zoo_mean): {'met' if spider >= prior - 1e-9 else f'missed by {prior - spider:.3f}'}. Goal (>= {label} "
             f"= {goal:.3f}): {'met' if spider >= goal else f'missed by {goal - spider:.3f}'}."]
    if all(np.isfinite(unseen)):
        lines[0] += (f" Unseen models (lmo, kendall_tau_unseen): spider@lmo {unseen[0]:.3f} vs zoo_mean@lmo "
                     f"{unseen[1]:.3f} ({'>=' if unseen[0] >= unseen[1] - 1e-9 else 'below'}).")
    return lines + [""]


def _side_details(side: str, d: dict) -> list[str]:
    """Bootstrap intervals, what each fold kept, each input's inner effect and the ranking time."""
    lines = []
    if d.get("bootstrap"):
        lines += [f"### {side}: differences, paired bootstrap over targets (95 %)", "",
                  "| comparison | metric | mean | 95 % interval | targets |", "|---|---|---|---|---|"]
        for name, b in d["bootstrap"].items():
            lines.append(f"| {name} | {b['metric']} | {b['mean']:+.4f} | [{b['low']:+.4f}, {b['high']:+.4f}] | "
                         f"{b['targets']} |")
        lines.append("")
    for protocol in ("loto", "lmo"):
        folds = d.get(protocol, {})
        if not folds or "groups" not in next(iter(folds.values())):
            continue
        lines += [f"### {side} ({protocol}): what each fold's nested leave-one-target-out kept", "",
                  "| held-out target | inputs kept | network epochs / weight | inner tau: prior -> kept inputs |",
                  "|---|---|---|---|"]
        for target, f in folds.items():
            lines.append(f"| {target} | {', '.join(f['groups']) or 'none'} | {f['epochs']} / "
                         f"{f['network_weight']} | {f['inner_tau_prior']:.3f} -> {f['inner_tau_chosen']:.3f} |")
        gains = {}
        for f in folds.values():
            for group, gain in f["inner_gain_alone"].items():
                gains.setdefault(group, []).append(gain)
        lines += ["", "Each input's own effect (inner leave-one-target-out, prior + that input alone minus the "
                  "prior, mean over folds; kept = folds that kept it):", ""]
        lines += [f"- {g}: {np.mean(v):+.4f} (kept in {sum(g in f['groups'] for f in folds.values())} of "
                  f"{len(folds)} folds)" for g, v in gains.items()]
        lines.append("")
    if d.get("ranking_time"):
        t = d["ranking_time"]
        lines += [f"Ranking time, warm, median of {t['repeats']} calls, {t['models']} models, a {t['classes']}-class "
                  f"task: `rank_task` on a ready task token {t['rank_task_s']:.3f} s; class names -> ranking "
                  f"(`label_name_token` + `rank_task`, MiniLM encoding included) {t['names_to_ranking_s']:.3f} s.",
                  ""]
    return lines


def _mean(per_target: dict, targets: list[str], key: str) -> tuple[float, int]:
    values = [per_target[t][key] for t in targets if t in per_target and key in per_target[t]]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return (float(np.mean(values)) if values else float("nan")), len(values)


def _fmt(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.3f}"


def render(payload: dict, notes: str = NOTES) -> str:
    """The whole markdown report from the merged JSON payload."""
    details = payload.get("_details", {})
    lines = ["# Hub zoo benchmark: ranking real Hub models from label names (no forward pass)", ""]
    lines += ["Data: TransferGraph fine-tuning results (`../shared/data/transfergraph`, cleaned by "
              "`hf_spider.hubzoo.load_transfergraph`, diverged runs kept). Task token: MiniLM embeddings of the "
              "target's label names (`benchmarks/hubzoo/label_names.json`). Produced by:", ""]
    for side, d in details.items():
        lines.append(f"    {d.get('command', '?')}    # {side}: {d.get('seconds', '?')} s on 2 shared CPU cores")
    lines.append("")
    for side in ["image", "text"]:
        if side not in details:
            continue
        targets = load_transfergraph(side).targets
        for protocol, suffix in [("leave one target out", ""), ("leave one target out + 20 % models unseen", "@lmo")]:
            lines += [f"## {side}: {protocol}", ""]
            extra = ["kendall_tau_unseen"] if suffix else []
            scored = [t for t in targets if t in payload.get("logme", {})]
            header = COLUMNS + extra + ["kendall_tau, LogME's targets and models"]
            lines.append("| method | targets | " + " | ".join(header) + " |")
            lines.append("|---" * (3 + len(COLUMNS) + len(extra)) + "|")
            for method in METHODS:
                if suffix and method in LOTO_ONLY:
                    continue
                key = method + suffix if method in LEARNED else method
                per_target = payload.get(key, {})
                if not any(t in per_target for t in targets):
                    continue
                cells = [_mean(per_target, targets, c) for c in COLUMNS + extra]
                on_scored = "kendall_tau_logme_models" if method in LEARNED + LOTO_ONLY else "kendall_tau"
                cells.append(_mean(per_target, scored, on_scored))
                lines.append(f"| {key} | {cells[0][1]} | " + " | ".join(_fmt(v) for v, _ in cells) + " |")
            lines.append("")
        lines += [f"LogME / reg. H-score are scored on {len(scored)} of the {len(targets)} targets (and only on the "
                  "models the study scored there): compare them on the last column (zoo_mean / spider there: tau "
                  "over exactly the models LogME scored). Regrets are in accuracy points (0-100). "
                  "The forward-pass and metadata baselines need no training: identical in both protocols.", ""]
        lines += [f"### {side}: Kendall tau per target", ""]
        keys = [m for m in METHODS if any(t in payload.get(m, {}) for t in targets)]
        keys += [m + "@lmo" for m in LEARNED if any(t in payload.get(m + "@lmo", {}) for t in targets)]
        lines.append("| target | " + " | ".join(keys) + " |")
        lines.append("|---" * (1 + len(keys)) + "|")
        for t in targets:
            row = [_fmt(payload.get(k, {}).get(t, {}).get("kendall_tau", float("nan"))) for k in keys]
            lines.append(f"| {t} | " + " | ".join(row) + " |")
        lines.append("")
        lines += _verdict(side, payload, targets) + _side_details(side, details[side])
    lines += [notes]
    return "\n".join(lines) + "\n"
