"""Scale benchmark: fitness-network scoring by zoo size × class count, and loading + ranking a large zoo.

    python benchmarks/scale.py                          # this checkout, writes nothing
    python benchmarks/scale.py --before 24451eb --write # also the code at a git revision; writes benchmarks/SCALE.md

Every cell runs in a fresh Python subprocess, so its peak memory is its own: peak RSS is the child's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the work, the whole process (Python, torch, the selector),
so it includes a baseline of a few hundred MB that the table also shows ("idle": the same child before the measured
call). Seconds are the median of repeated calls after one warm-up call for calls under a second, else one call.

Scoring cells time ``selector.fitness(tokens, prototypes)`` alone (no task encoder) on the bundled selectors: a zoo
of M tokens drawn (with a little noise) from the selector's own tokens and C random class prototypes. Load cells
build a selector folder of M random tokens with the hubzoo-image network (``tokens/`` files plus ``zoo.json``, the
layout ``save_pretrained`` writes) and time ``SpiderSelector.from_pretrained(folder)`` (default token source, with
HF_HUB_OFFLINE=1) plus ``rank_task`` of a 10-class task over the whole zoo (``top_k=None``).

``--before REV`` runs the same cells on ``hf_spider/`` as of git revision REV (extracted with ``git archive``);
cells whose full-attention scoring would need more than ``--budget-gb`` are not run there and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SCORE_GRID = [  # (selector, zoo sizes, class counts)
    ("hubzoo-image", [185, 10_000], [10, 100, 1_000, 10_000]),
    ("hubzoo-text", [10_000], [100, 10_000]),
    ("spiderbench-image", [15], [10, 100, 1_000, 10_000]),
    ("spiderbench-image", [1_000], [10, 100]),
]
LOAD_SIZES = [10_000, 100_000]
CAP_CLASSES = [2_000, 4_000]


# --- child side: one measurement, printed as JSON ------------------------------------------------------------------


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fn, *, budget_s: float = 2.0, max_runs: int = 7) -> float:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > 1.0:
        return first
    runs, spent = [], 0.0
    while len(runs) < max_runs and spent < budget_s:
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
        spent += runs[-1]
    return statistics.median(runs)


def child_score(selector: str, models: int, classes: int, threads: int) -> dict:
    import torch

    from hf_spider import SpiderSelector
    from hf_spider.bundled import bundled_selector

    torch.set_num_threads(threads)
    sel = SpiderSelector.from_pretrained(str(bundled_selector(selector)))
    g = torch.Generator().manual_seed(0)
    pick = torch.randint(0, len(sel.zoo), (models,), generator=g)
    tokens = sel.model_tokens[pick] + 0.01 * torch.randn(models, sel.model_tokens.shape[1], generator=g)
    protos = torch.randn(1, classes, sel.config.fitness.task_dim, generator=g)
    idle = _rss_now_mb()
    with torch.no_grad():
        seconds = _timed(lambda: sel.fitness(tokens, protos))
    return {"seconds": seconds, "peak_mb": _peak_mb(), "idle_mb": idle}


def child_cap(models: int, classes: int, threads: int) -> dict:
    """What the class cap does to a deep selector's scores: capped (default) vs exact (cap lifted) on one task."""
    import torch
    from scipy.stats import kendalltau

    from hf_spider import SpiderSelector
    from hf_spider.bundled import bundled_selector
    from hf_spider.fitness_eval import MAX_EXACT_CLASSES

    torch.set_num_threads(threads)
    sel = SpiderSelector.from_pretrained(str(bundled_selector("spiderbench-image")))
    g = torch.Generator().manual_seed(0)
    tokens = sel.model_tokens[torch.randint(0, len(sel.zoo), (models,), generator=g)]
    tokens = tokens + 0.01 * torch.randn(tokens.shape, generator=g)
    protos = torch.randn(1, classes, sel.config.fitness.task_dim, generator=g)
    with torch.no_grad():
        start = time.perf_counter()
        capped = sel.fitness(tokens, protos)[0]
        capped_s = time.perf_counter() - start
        start = time.perf_counter()
        exact = sel.fitness(tokens, protos, max_classes=classes)[0]
        exact_s = time.perf_counter() - start
    return {"cap": MAX_EXACT_CLASSES, "tau": float(kendalltau(capped, exact).statistic),
            "max_abs_diff": float((capped - exact).abs().max()), "exact_spread": float(exact.max() - exact.min()),
            "capped_s": capped_s, "exact_s": exact_s, "peak_mb": _peak_mb()}


def child_load(folder: str, threads: int) -> dict:
    import torch

    from hf_spider import SpiderSelector
    from hf_spider.tokens import TaskToken

    torch.set_num_threads(threads)
    idle = _rss_now_mb()
    start = time.perf_counter()
    sel = SpiderSelector.from_pretrained(folder)
    loaded = time.perf_counter()
    task = TaskToken(torch.randn(10, sel.config.fitness.task_dim, generator=torch.Generator().manual_seed(0)),
                     [f"class {i}" for i in range(10)], "random")
    top = sel.rank_task(task, top_k=10)  # the CLI's default
    done = time.perf_counter()
    everything = sel.rank_task(task)  # every model as a RankedModel: the worst case
    all_s = time.perf_counter() - done
    assert len(top) == 10 and len(everything) == len(sel.zoo) and everything[0].model_id == top[0].model_id
    return {"load_s": loaded - start, "rank_s": done - loaded, "seconds": done - start, "rank_all_s": all_s,
            "peak_mb": _peak_mb(), "idle_mb": idle}


# --- parent side ---------------------------------------------------------------------------------------------------


def make_zoo(folder: Path, n: int, *, seed: int = 0) -> tuple[Any, list]:
    """A selector folder with the bundled hubzoo-image network and ``n`` random tokens (written plainly, no fsync);
    returns ``(tokens (n, d), zoo entries)``. Also the fixture of ``tests/test_zoo_load.py``."""
    sys.path.insert(0, str(ROOT))  # the parent builds with this checkout; each child imports from its PYTHONPATH
    import torch

    from hf_spider import hub
    from hf_spider.bundled import bundled_selector
    from hf_spider.tokens import token_bytes, token_sha256

    src = bundled_selector("hubzoo-image")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "tokens").mkdir(parents=True)
    # The fitness network alone: the bundled prior (task_inputs) has one row per bundled model, not per zoo model.
    from safetensors.torch import load_file, save_file

    config = json.loads((src / "config.json").read_text())
    config["task_inputs"] = {}
    (tmp / "config.json").write_text(json.dumps(config))
    state = load_file(src / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("task_inputs.")}, tmp / "model.safetensors")
    tokens = torch.randn(n, config["fitness"]["token_dim"], generator=torch.Generator().manual_seed(seed))
    entries = []
    for i, tok in enumerate(tokens):  # building the fixture: one file per model is the format
        model_id = f"org{i % 997}/model-{i}"
        entry = hub.ZooEntry(model_id=model_id, revision="0" * 40, task_type="image-classification",
                             token_sha256=token_sha256(tok), mirror=hub.mirror_name(model_id))
        (tmp / entry.mirror).write_bytes(token_bytes(tok, model_id=model_id, selector=config["name"]))
        entries.append(entry)
    (tmp / "zoo.json").write_text(hub.dump_zoo(entries, selector=config["name"]))
    tmp.rename(folder)
    return tokens, entries


def run_child(pythonpath: str, args: list[str], timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=args[-1])
    try:
        out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_attention_gb(selector: str, models: int, classes: int) -> float:
    """Rough peak of the pre-fitness_eval path: the (M, H, L, L) attention weights, a few copies alive at once."""
    heads = 4
    return 3 * models * heads * (1 + classes) ** 2 * 4 / 2**30


def extract_revision(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "hf_spider"], check=True,
                          capture_output=True).stdout
    tar = into / "src.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return into


def fmt_cell(r: dict | None) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return r["error"]
    if "skipped" in r:
        return r["skipped"]
    s = r["seconds"]
    t = f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"
    return f"{t}, {r['peak_mb'] / 1024:.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="also measure hf_spider/ at this git revision")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cell (default 1)")
    parser.add_argument("--budget-gb", type=float, default=4.0, help="skip 'before' cells estimated above this")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "hf-spider-scale"),
                        help="where the large zoo folders are built (kept between runs)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--write", action="store_true", help="write benchmarks/SCALE.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "score":
            result = child_score(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        elif kind == "cap":
            result = child_cap(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = child_load(rest[0], int(rest[1]))
        print(json.dumps(result))
        return

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/scale.py", *sys.argv[1:]])
    trees = {"after": str(ROOT)}
    scratch = Path(tempfile.mkdtemp(prefix="hf-spider-before-"))
    if args.before:
        trees = {"before": str(extract_revision(args.before, scratch)), **trees}
    threads = str(args.threads)
    lines = [f"# Scale benchmark\n\nCommand: `{command}` (from the repo root).\n",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other "
             f"jobs while measured: load average {os.getloadavg()[0]:.1f} at the start); Python "
             f"{platform.python_version()}; torch threads per cell: {threads}.\n",
             "Each cell: seconds, then the child process's peak RSS (`getrusage` ru_maxrss: Python + torch + "
             "the selector + the work; the idle baseline of each child is in the last column)."
             + (f" 'before' = hf_spider at `{args.before}`." if args.before else "") + "\n"]

    lines += ["## Scoring: `selector.fitness(tokens, prototypes)`, zoo size × class count\n",
              "| selector | models | classes | " + " | ".join(trees) + " | idle RSS |",
              "|---|---:|---:|" + "---:|" * len(trees) + "---:|"]
    for selector, sizes, class_counts in SCORE_GRID:
        for models in sizes:
            for classes in class_counts:
                cells, idle = [], None
                for label, tree in trees.items():
                    est = full_attention_gb(selector, models, classes)
                    if label == "before" and est > args.budget_gb:
                        r = {"skipped": f"not run (≈{est:.0f} GB)"}
                    else:
                        r = run_child(tree, ["score", selector, str(models), str(classes), threads], args.timeout)
                    idle = r.get("idle_mb", idle)
                    cells.append(fmt_cell(r))
                    print(selector, models, classes, label, fmt_cell(r), flush=True)
                idle_s = f"{idle / 1024:.2f} GB" if idle else "—"
                lines.append(f"| {selector} | {models:,} | {classes:,} | " + " | ".join(cells) + f" | {idle_s} |")

    lines += ["\n## The class cap of multi-layer selectors (spiderbench-image, 2 layers)\n",
              "Beyond `MAX_EXACT_CLASSES` classes a multi-layer network scores the task whose class tokens are "
              "replaced by their k-means centroids (see `hf_spider/fitness_eval.py`); one-layer selectors (hubzoo-*) "
              "are exact at any class count. Random prototypes, 15 models; 'exact' lifts the cap.\n",
              "| classes | cap | Kendall tau (capped vs exact) | max abs score change | exact score spread | capped | "
              "exact |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for classes in CAP_CLASSES:
        r = run_child(trees["after"], ["cap", "15", str(classes), threads], args.timeout)
        if "error" in r:
            lines.append(f"| {classes:,} | | {r['error']} | | | | |")
        else:
            lines.append(f"| {classes:,} | {r['cap']:,} | {r['tau']:.3f} | {r['max_abs_diff']:.4f} | "
                         f"{r['exact_spread']:.4f} | {r['capped_s']:.1f} s | {r['exact_s']:.1f} s |")
        print("cap", classes, lines[-1], flush=True)

    lines += ["\n## Loading and ranking a zoo: `from_pretrained(folder)` + `rank_task(top_k=10)` (10 classes)\n",
              "Seconds are load + rank of the top 10 (the CLI default); the parentheses split them and add a ranking "
              "of *all* models (one `RankedModel` each), run after it in the same process and counted in the peak.\n",
              "| models | " + " | ".join(f"{t}" for t in trees) + " | idle RSS |",
              "|---:|" + "---:|" * len(trees) + "---:|"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for n in LOAD_SIZES:
        folder = work / f"zoo-{n}"
        if not (folder / "zoo.json").is_file():
            print(f"building a {n:,}-model zoo in {folder} ...", flush=True)
            make_zoo(folder, n)
        cells, idle = [], None
        for label, tree in trees.items():
            r = run_child(tree, ["load", str(folder), threads], args.timeout)
            idle = r.get("idle_mb", idle)
            detail = (f" ({r['load_s']:.1f} + {r['rank_s']:.1f} s; all models {r['rank_all_s']:.1f} s)"
                      if "load_s" in r else "")
            cells.append(fmt_cell(r) + detail)
            print("load", n, label, cells[-1], flush=True)
        idle_s = f"{idle / 1024:.2f} GB" if idle else "—"
        lines.append(f"| {n:,} | " + " | ".join(cells) + f" | {idle_s} |")
    shutil.rmtree(scratch, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks" / "SCALE.md").write_text(text)


if __name__ == "__main__":
    main()
