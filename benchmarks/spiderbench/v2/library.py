"""The library's own path, timed part by part: ``SpiderSelector.from_pretrained(...).rank(dataset, rerank=0)``.

The dataset is a user's in-memory ``datasets.Dataset`` of the target's train split (an ``Image`` column, stored as
PNG bytes, and a ``ClassLabel`` column), built before timing. The selector's pieces are wrapped, not re-implemented,
so the parts add up to one real ``rank`` call: selector load, encoder load (``task_encoder``, loaded lazily by
``rank``; here touched first so its load is timed on its own), sampling + decoding (``sample_task``), preprocessing
(the image processor), forward (the encoder model), scoring (``score``), and the rest (batching, prototypes, the
ranking's records).

Variants with a library path: ``lite0-32`` is the bundled ``spiderbench-image`` selector as shipped (its encoder,
``hf-spider/efficientnet-lite0-32px``, converted once from the pip weights); ``lite0-64`` the same selector reading
``hf-spider/efficientnet-lite0-64px``; ``resnet-tiny`` a selector whose task encoder is the zoo folder of
``tiny-resnet-scratch-glyphs-upper`` and ``pixels-16`` one reading the weight-free ``hf-spider/pixels-16`` (random
fitness networks of their widths: the cost does not depend on the weights).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..common import ZOO_DIR
from .encoders import train_split
from .tasks import get_task

PARTS = ["selector load", "encoder load", "sample + decode", "preprocessing", "forward", "scoring", "other"]


def image_dataset(images: np.ndarray, labels: np.ndarray, names: list[str]):
    """An in-memory ``datasets.Dataset`` with an ``image`` column (PIL in, PNG bytes stored) and a ``label``."""
    import datasets
    from PIL import Image

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"image": [Image.fromarray(x) for x in images], "label": labels.tolist()},
                                      features=features)


class _Clock:
    """Seconds per named part, summed over calls."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)

    def wrap(self, part: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start

        return timed


def timed_rank(load_selector, dataset) -> dict[str, float]:
    """Seconds of each part of one ``rank(dataset, rerank=0)`` on a freshly loaded selector, and ``total``."""
    clock = _Clock()
    start = time.perf_counter()
    selector = load_selector()
    clock.seconds["selector load"] = time.perf_counter() - start
    start = time.perf_counter()
    extractor = selector.task_encoder.extractor
    clock.seconds["encoder load"] = time.perf_counter() - start
    selector._sample = clock.wrap("sample + decode", selector._sample)
    selector.score = clock.wrap("scoring", selector.score)
    if hasattr(extractor, "model"):  # a Transformers encoder (the weight-free pixel encoder's work is all "other")
        extractor.processor = clock.wrap("preprocessing", extractor.processor)
        began: list[float] = []
        extractor.model.register_forward_pre_hook(lambda *_: began.append(time.perf_counter()))
        extractor.model.register_forward_hook(lambda *_: clock.seconds.__setitem__(
            "forward", clock.seconds["forward"] + time.perf_counter() - began.pop()))
    start = time.perf_counter()
    selector.rank(dataset, rerank=0, verbose=False)
    rank_seconds = time.perf_counter() - start
    named = sum(clock.seconds[p] for p in PARTS[2:-1])
    clock.seconds["other"] = rank_seconds - named
    return {**clock.seconds, "total": clock.seconds["selector load"] + clock.seconds["encoder load"] + rank_seconds}


def _selectors(workdir: Path) -> dict:
    """Variant → a function loading its selector from a folder, as a user would."""
    import torch

    from hf_spider import SpiderSelector
    from hf_spider.bundled import bundled_selector
    from hf_spider.fitness import FitnessNetwork

    bundled_path = bundled_selector("spiderbench-image")
    bundled = SpiderSelector.from_pretrained(bundled_path, token_source="mirror")

    def save(name: str, encoder: str, width: int) -> Path:
        torch.manual_seed(0)
        fitness = dataclasses.replace(bundled.config.fitness, task_dim=width)
        network = bundled.fitness if width == bundled.config.fitness.task_dim else FitnessNetwork(fitness)
        config = dataclasses.replace(bundled.config, task_encoder=encoder, fitness=fitness)
        SpiderSelector(config, network, bundled.zoo, bundled.model_tokens,
                       task_inputs=bundled.task_inputs).save_pretrained(workdir / name)
        return workdir / name

    paths = {"lite0-32": bundled_path, "lite0-64": save("lite0-64", "hf-spider/efficientnet-lite0-64px", 1280),
             "resnet-tiny": save("resnet-tiny", str(ZOO_DIR / "tiny-resnet-scratch-glyphs-upper"), 128),
             "pixels-16": save("pixels-16", "hf-spider/pixels-16", 256)}
    # mirror tokens, as the CLI loads bundled selectors: no Hub lookup per model token
    return {v: (lambda p=p: SpiderSelector.from_pretrained(p, token_source="mirror")) for v, p in paths.items()}


def library_methods(workdir: Path, tasks: list[str]):
    """``{"library/<variant>": fn(task) -> (seconds, parts)}`` timing one real ``rank`` each call; the datasets are
    built here, before any timing."""
    loaders = _selectors(workdir)
    data = {}
    for t in tasks:
        images, labels = train_split(get_task(t))
        data[t] = image_dataset(images, labels, [c.key for c in get_task(t).classes])

    def method(load):
        def once(task: str) -> tuple[float, dict[str, float]]:
            parts = timed_rank(load, data[task])
            return parts.pop("total"), parts

        return once

    return {f"library/{v}": method(load) for v, load in loaders.items()}


def render_library(result: dict, logme: str) -> str:
    """The markdown section: median seconds of each part (over every task and repeat), total and ratio to LogME."""
    names = [m for m in result["seconds"] if m.startswith("library/")]
    if not names:
        return ""
    lines = ["", "## The library's path: `SpiderSelector.from_pretrained(...).rank(dataset, rerank=0)`", "",
             "Timed in the same interleaved loop as the rows above. The dataset is an in-memory `datasets.Dataset` of "
             "the train split (PNG-encoded `Image` column, `ClassLabel`). Parts: median over every task and repeat; "
             "total and ratio: median over tasks of the per-task median. `pixels-*` have no library path (the "
             "library's `TaskEncoder` reads Transformers models).", "",
             "| variant | " + " | ".join(PARTS) + " | total | total / LogME |",
             "|---|" + "---|" * (len(PARTS) + 2)]
    for m in names:
        per_task = {t: float(np.median(v)) for t, v in result["seconds"][m].items()}
        ratio = float(np.median([s / float(np.median(result["seconds"][logme][t])) for t, s in per_task.items()]))
        parts = result["steps"][m]
        lines.append(f"| {m.removeprefix('library/')} | " + " | ".join(f"{np.median(parts[p]):.3f}" for p in PARTS)
                     + f" | {np.median(list(per_task.values())):.3f} | {ratio:.4f} |")
    return "\n".join(lines) + "\n"
