"""Task-encoder variants for the v2 image tasks, and every task's train-split features under each, cached.

    python -m benchmarks.spiderbench.v2.encoders [--variants lite0-64 pixels-8 ...] [--role target|train]
        [--tasks T ...]

The selector's task token is the class means of a frozen encoder's features of the task's train split; these
variants trade how much that encoder sees for how fast it runs (``speed.py`` times them against LogME). Each is a
function ``(N, 64, 64, 3) uint8 images -> (N, d) float32 features``:

=====================  ====  ===============================================================================
variant                d     what
=====================  ====  ===============================================================================
``lite0-64``           1280  ``efficientnet-lite0-64px`` (the zoo's ImageNet Lite0) at 64 px: v2's first encoder
``lite0-32``           1280  the same weights on the images resized to 32 px (PIL bilinear, as the library's
                             ``hf-spider/efficientnet-lite0-32px``): 4× fewer FLOPs. TF-"same" padding stays
                             exact: every stride-2 layer sees an even size
``resnet-tiny``        128   pooled features of ``tiny-resnet-scratch-glyphs-upper`` (~0.2M parameters, trained
                             from scratch on 26 upper-case letters, the most varied of the three)
``resnet-tiny-fashion6``, ``resnet-tiny-textures-grey``: the other two from-scratch ResNets (128)
``pixels-8``           64    grey (ITU-R 601 luma) 8×8 area averages, flattened, standardised per image: the
                             library's weight-free ``hf-spider/pixels-8`` (``hf_spider.pixels``)
``pixels-16``          256   the same at 16×16 (``hf-spider/pixels-16``)
=====================  ====  ===============================================================================

Zoo-model variants use the ground truth's own forward path (``finetune.trunk_outputs`` + ``top_features``: eval
mode, pixels scaled to [-1, 1] as the zoo's processors do), i.e. the features LogME reads from that model.

Cache: ``.work/v2/encoder_features/<variant>/<task>.npz`` (written atomically; existing files are skipped, so a run
resumes) with

* ``features``: ``(N, d)`` float32, row ``i`` for train image ``i``;
* ``labels``: ``(N,)`` int64 class ids of the task (``data.task_splits(spec)["train"][1]``);
* ``seconds``: float, wall seconds of the encoder forward pass over this task's train split (load excluded).

Train splits come from the ground truth's cache (``.work/v2/tasks``) when it holds the task; otherwise they are drawn
in memory with the same code (``data.build_splits``: seeded per class, so the same images) and not written there:
that folder belongs to the ground-truth build.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..common import WORK, ZOO_DIR, set_threads
from .data import TASK_DIR, build_splits, task_splits
from .tasks import all_tasks

logger = logging.getLogger(__name__)

ROOT = WORK / "v2" / "encoder_features"

Encode = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Variant:
    """A task encoder: ``load()`` returns the encode function (loading weights, if any, happens there)."""

    name: str
    width: int
    description: str
    load: Callable[[], Encode]
    model: str | None = None  # the zoo model it reads, if any


@torch.inference_mode()
def zoo_features(model, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Pooled eval-mode features ``(N, D)`` float32 of a zoo model on ``(N, R, R, 3)`` uint8 images, any ``R``."""
    from ..finetune import top_features, trunk_outputs

    model.eval()
    h = trunk_outputs(model, images, batch_size=batch_size)
    return torch.cat([top_features(model, h[i : i + batch_size]) for i in range(0, len(h), batch_size)]).numpy()


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """``(N, R, R, 3)`` uint8 → ``(N, side, side, 3)`` uint8 with PIL's BILINEAR, exactly what the library's
    ``hf-spider/efficientnet-lite0-{side}px`` processor does, so a selector trained on these features is served
    the same features by ``SpiderSelector.rank``."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR)) for img in images])


def pixel_features(images: np.ndarray, side: int) -> np.ndarray:
    """The library's weight-free encoder ``hf-spider/pixels-{side}`` (``hf_spider.pixels``): ``(N, side²)``."""
    from hf_spider.pixels import pixel_features as library_pixels

    return library_pixels(images, side).numpy().astype(np.float32)


def _zoo_encoder(model_name: str, side: int | None = None) -> Callable[[], Encode]:
    def load() -> Encode:
        from ..finetune import load as load_model

        model = load_model(ZOO_DIR / model_name)
        return lambda images: zoo_features(model, images if side is None else resize(images, side))

    return load


def _pixels(side: int) -> Callable[[], Encode]:
    return lambda: (lambda images: pixel_features(images, side))


_TINY = "tiny-resnet-scratch-"
VARIANTS = {v.name: v for v in [
    Variant("lite0-64", 1280, "efficientnet-lite0-64px at 64 px (v2's first encoder)",
            _zoo_encoder("efficientnet-lite0-64px"), "efficientnet-lite0-64px"),
    Variant("lite0-32", 1280, "efficientnet-lite0-64px on images resized to 32 px",
            _zoo_encoder("efficientnet-lite0-64px", 32), "efficientnet-lite0-64px"),
    Variant("resnet-tiny", 128, f"{_TINY}glyphs-upper pooled features", _zoo_encoder(_TINY + "glyphs-upper"),
            _TINY + "glyphs-upper"),
    Variant("resnet-tiny-fashion6", 128, f"{_TINY}fashion6 pooled features", _zoo_encoder(_TINY + "fashion6"),
            _TINY + "fashion6"),
    Variant("resnet-tiny-textures-grey", 128, f"{_TINY}textures-grey pooled features",
            _zoo_encoder(_TINY + "textures-grey"), _TINY + "textures-grey"),
    Variant("pixels-8", 64, "8x8 grey pixels, standardised per image", _pixels(8)),
    Variant("pixels-16", 256, "16x16 grey pixels, standardised per image", _pixels(16)),
]}


def train_split(spec) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 64, 64, 3) uint8, labels (N,))`` of a task's train split; drawn in memory when the ground
    truth has not cached the task yet (the same seeded draw; nothing is written to its folder)."""
    if (TASK_DIR / f"{spec.name}.npz").is_file():
        return task_splits(spec)["train"]
    return build_splits(spec)["train"]


def feature_path(variant: str, task: str):
    return ROOT / variant / f"{task}.npz"


def read_features(variant: str, task: str) -> dict[str, np.ndarray | float]:
    """A cached entry: ``{"features": (N, d) float32, "labels": (N,) int64, "seconds": float}``."""
    with np.load(feature_path(variant, task)) as z:
        return {"features": z["features"], "labels": z["labels"], "seconds": float(z["seconds"])}


def _save(path, features: np.ndarray, labels: np.ndarray, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, features=features.astype(np.float32), labels=labels.astype(np.int64), seconds=np.float64(seconds))
    tmp.replace(path)


def encode_tasks(variants: list[str], specs: list) -> int:
    """Encode every (variant, task) not cached yet; each encoder is loaded once and each train split drawn once.
    Returns how many files were written."""
    todo = {s.name: [v for v in variants if not feature_path(v, s.name).is_file()] for s in specs}
    encoders = {v: VARIANTS[v].load() for v in variants if any(v in missing for missing in todo.values())}
    written = 0
    for spec in specs:
        if not todo[spec.name]:
            continue
        images, labels = train_split(spec)
        for variant in todo[spec.name]:
            start = time.perf_counter()
            features = encoders[variant](images)
            seconds = time.perf_counter() - start
            width = VARIANTS[variant].width
            if features.shape != (len(images), width) or not np.isfinite(features).all():
                raise RuntimeError(f"{variant} on {spec.name}: features of shape {features.shape} (finite: "
                                   f"{np.isfinite(features).all()}), expected ({len(images)}, {width})")
            _save(feature_path(variant, spec.name), features, labels, seconds)
            written += 1
        logger.info("%s: %s", spec.name, ", ".join(todo[spec.name]))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--role", choices=["target", "train"], help="only targets or only training tasks")
    parser.add_argument("--tasks", nargs="*", help="task names (default: every v2 image task of the role)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    specs = [t for t in all_tasks("image", args.role) if not args.tasks or t.name in args.tasks]
    if args.tasks and len(specs) != len(set(args.tasks)):
        raise SystemExit(f"Unknown image task among {args.tasks}; see benchmarks/spiderbench/v2/tasks.py.")
    encode_tasks(args.variants, specs)
    print(f"{len(specs)} tasks x {len(args.variants)} variants cached under {ROOT}")


if __name__ == "__main__":
    main()
