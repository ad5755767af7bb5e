"""Image sources of SpiderBench's zoo, every one rendered to ``(N, 64, 64, 3)`` uint8 arrays with integer labels.

The zoo (``build_zoo.py``) is fine-tuned on Fashion-MNIST classes 0,1,2,3,4,6 (``FASHION_TRAIN``), upper-case A–Z
in DejaVu fonts (``GLYPH_TRAIN_CHARS``) and patches of grey skimage pictures (``TEXTURE_TRAIN``). v2's image sources
(``v2/image_sources.py``) reuse the Fashion-MNIST, skimage and resizing loaders; its training tasks take the colour
photos of ``TEXTURE_TARGET`` (v1's targets).
"""

from __future__ import annotations

import gzip
import string
from functools import lru_cache
from pathlib import Path

import numpy as np

from .common import RESOLUTION

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
FASHION_TRAIN = [0, 1, 2, 3, 4, 6]
GLYPH_TRAIN_CHARS = list(string.ascii_uppercase)
TEXTURE_TRAIN = ["brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "clock"]
TEXTURE_TARGET = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "colorwheel"]
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]


def _resize(images: np.ndarray) -> np.ndarray:
    """Grey or RGB uint8 images of any size → ``(N, R, R, 3)`` uint8 (bilinear, as the zoo's processors do)."""
    from PIL import Image

    out = np.empty((len(images), RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img).convert("RGB")
        out[i] = np.asarray(pil.resize((RESOLUTION, RESOLUTION), Image.BILINEAR))
    return out


@lru_cache(maxsize=2)
def _fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return images, labels


def fashion(classes: list[int], per_class: int, *, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` Fashion-MNIST images of each class; labels are positions in ``classes``."""
    images, labels = _fashion(split)
    rng = np.random.default_rng(seed)
    idx = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    y = np.repeat(np.arange(len(classes)), per_class)
    return _resize(images[np.concatenate(idx)]), y


def fonts(family: str) -> list[Path]:
    """TrueType files of a font family folder ("dejavu" or "liberation"), sorted."""
    files = sorted(p for d in FONT_DIRS if d.name == family and d.is_dir() for p in d.glob("*.ttf"))
    if family == "dejavu":
        files = [p for p in files if "Math" not in p.name]
    if not files:
        raise FileNotFoundError(f"No {family} fonts; `apt-get install -y fonts-{family}`.")
    return files


def glyphs(chars: list[str], per_class: int, *, seed: int, family: str) -> tuple[np.ndarray, np.ndarray]:
    """Characters rendered in random fonts of ``family`` with random size, offset, rotation and grey levels."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    files = fonts(family)
    out = np.empty((len(chars) * per_class, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    big = 2 * RESOLUTION
    for i, ch in enumerate(np.repeat(chars, per_class)):
        font = ImageFont.truetype(str(files[rng.integers(len(files))]), int(rng.integers(56, 88)))
        bg, fg = (int(v) for v in rng.choice([rng.integers(0, 90), rng.integers(165, 256)], 2, replace=False))
        img = Image.new("L", (big, big), bg)
        ImageDraw.Draw(img).text((big / 2 + rng.normal(0, 6), big / 2 + rng.normal(0, 6)), ch, fill=fg, font=font,
                                 anchor="mm")
        img = img.rotate(float(rng.normal(0, 12)), resample=Image.BILINEAR, fillcolor=bg)
        out[i] = np.asarray(img.resize((RESOLUTION, RESOLUTION), Image.BILINEAR).convert("RGB"))
    return out, np.repeat(np.arange(len(chars)), per_class)


@lru_cache(maxsize=32)
def _texture_image(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return img.astype(np.uint8)


def textures(names: list[str], per_class: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random square patches (side 48–128 px, random flips) of each named skimage image; class = source image."""
    rng = np.random.default_rng(seed)
    patches = []
    for name in names:
        img = _texture_image(name)
        h, w = img.shape[:2]
        for _ in range(per_class):
            side = int(rng.integers(48, min(128, h, w) + 1))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            p = img[y : y + side, x : x + side]
            patches.append(p[:, ::-1] if rng.random() < 0.5 else p)
    return _resize(patches), np.repeat(np.arange(len(names)), per_class)


def to_pixels(images: np.ndarray):
    """``(N, R, R, 3)`` uint8 → ``(N, 3, R, R)`` float32 in [-1, 1]: the zoo processors' rescale + normalise."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0
