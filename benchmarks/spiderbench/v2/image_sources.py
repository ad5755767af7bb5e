"""Image classes of SpiderBench v2: each ``ClassRef`` → a deterministic, ordered stack of 64×64 RGB uint8 images.

The same class gives the same images in every task that uses it (each class is seeded by its own name), so two
tasks that share a class share its train / val / test images and never mix them.

Glyph font groups (Debian packages; ``apt-get install -y`` them first):

==============  ================================================================================================
group           fonts
==============  ================================================================================================
dejavu          (the zoo's) fonts-dejavu
free-urw        (training) fonts-freefont-ttf, fonts-urw-base35
liberation      fonts-liberation
crosextra       fonts-crosextra-carlito, fonts-crosextra-caladea
humanist        fonts-lato, fonts-open-sans, fonts-cantarell, fonts-sil-andika
rounded         fonts-comic-neue, fonts-quicksand
handwriting     fonts-dancingscript, fonts-femkeklaver, fonts-breip, fonts-dkg-handwriting
noto            fonts-noto-core (Noto Sans / Serif)
noto-<script>   fonts-noto-core (Noto Sans / Serif <Script>, Noto Looped Thai), fonts-lohit-deva (Devanagari)
==============  ================================================================================================
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import data as image_data
from ..common import RESOLUTION
from .classes import ClassRef

FONT_ROOT = Path("/usr/share/fonts")
FONT_GROUPS = {  # group -> glob patterns under FONT_ROOT
    "dejavu": ["truetype/dejavu/DejaVu*.ttf"],
    "free-urw": ["truetype/freefont/Free*.ttf", "opentype/urw-base35/*.otf"],
    "liberation": ["truetype/liberation/Liberation*.ttf"],
    "crosextra": ["truetype/crosextra/*.ttf"],
    "humanist": ["truetype/lato/Lato-*.ttf", "truetype/open-sans/*.ttf", "opentype/cantarell/*.otf",
                 "truetype/andika/*.ttf"],
    "rounded": ["opentype/comic-neue/*.otf", "truetype/quicksand/*.ttf"],
    "handwriting": ["opentype/dancingscript/*", "truetype/femkeklaver/*", "truetype/breip/*",
                    "truetype/fifthhorseman/*"],
    "noto": ["truetype/noto/NotoSans-*.ttf", "truetype/noto/NotoSerif-*.ttf"],
}
_THIN = ("Thin", "Hairline", "ExtraLight", "Light")  # strokes too faint at 64 px


def class_seed(ref: ClassRef) -> int:
    """A seed of the class alone (stable across Python runs, unlike ``hash``)."""
    return zlib.crc32(f"{ref.source_key}|{ref.label}".encode())


@lru_cache(maxsize=None)
def font_files(group: str) -> tuple[Path, ...]:
    """The font files of a group, sorted; thin weights and symbol/dingbat faces left out."""
    if group.startswith("noto-"):
        script = group.removeprefix("noto-").capitalize()
        patterns = [f"truetype/noto/Noto{kind}{script}-*.ttf" for kind in ("Sans", "Serif", "Looped")]
        patterns += ["truetype/lohit-devanagari/*.ttf"] if script == "Devanagari" else []
    else:
        patterns = FONT_GROUPS[group]
    files = sorted({p for pat in patterns for p in FONT_ROOT.glob(pat)})
    files = [p for p in files if not any(t in p.name for t in _THIN) and p.suffix in (".ttf", ".otf")
             and not any(s in p.name for s in ("Symbol", "D050000L", "Math"))]
    if not files:
        raise FileNotFoundError(f"No fonts for group {group!r} under {FONT_ROOT}; install the packages listed in "
                                "benchmarks/spiderbench/v2/image_sources.py.")
    return tuple(files)


@lru_cache(maxsize=None)
def _covers(path: Path, char: str) -> bool:
    """Whether the font draws ``char`` (not its 'missing glyph' box): compare with a surely missing code point."""
    from PIL import ImageFont

    font = ImageFont.truetype(str(path), 48)
    mask = font.getmask(char)
    if mask.getbbox() is None:
        return False
    missing = font.getmask("\U0010fffd")
    return bytes(mask) != bytes(missing) or mask.size != missing.size


def fonts_for(group: str, char: str) -> list[Path]:
    files = [p for p in font_files(group) if _covers(p, char)]
    if not files:
        raise FileNotFoundError(f"No font of group {group!r} draws {char!r}.")
    return files


def glyph_images(ref: ClassRef, n: int) -> np.ndarray:
    """``n`` renderings of one character in random fonts of its group, sizes, offsets, rotations and grey levels."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(class_seed(ref))
    files = fonts_for(ref.variant, ref.label)
    big = 2 * RESOLUTION
    out = np.empty((n, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    for i in range(n):
        font = ImageFont.truetype(str(files[rng.integers(len(files))]), int(rng.integers(56, 88)))
        bg, fg = (int(v) for v in rng.choice([rng.integers(0, 90), rng.integers(165, 256)], 2, replace=False))
        img = Image.new("L", (big, big), bg)
        ImageDraw.Draw(img).text((big / 2 + rng.normal(0, 6), big / 2 + rng.normal(0, 6)), ref.label, fill=fg,
                                 font=font, anchor="mm")
        img = img.rotate(float(rng.normal(0, 12)), resample=Image.BILINEAR, fillcolor=bg)
        out[i] = np.asarray(img.resize((RESOLUTION, RESOLUTION), Image.BILINEAR).convert("RGB"))
    return out


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    sides = {"triangle": 3, "square": 4, "diamond": 4, "hexagon": 6}.get(kind)
    if kind == "star":
        t = angle + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    elif kind == "cross":
        w = 0.35
        pts = np.array([(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w),
                        (-1, -w), (-w, -w)])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return [(cx + r * x, cy + r * y) for x, y in pts @ rot.T]
    else:
        t = angle + np.arange(sides) * 2 * np.pi / sides
        if kind == "diamond":
            t = t + np.pi / 4
        rad = np.full(sides, r) * (np.array([1.0, 0.6, 1.0, 0.6]) if kind == "diamond" else 1.0)
    return list(zip(cx + rad * np.cos(t), cy + rad * np.sin(t)))


def shape_images(ref: ClassRef, n: int) -> np.ndarray:
    """``n`` drawings of one geometric shape: random size, position, rotation, colours and background noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(class_seed(ref))
    out = np.empty((n, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    for i in range(n):
        bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        while np.abs(bg.astype(int) - fg).sum() < 150:
            fg = rng.integers(0, 256, 3)
        img = Image.new("RGB", (RESOLUTION, RESOLUTION), tuple(int(v) for v in bg))
        draw = ImageDraw.Draw(img)
        r = float(rng.uniform(10, 26))
        cx, cy = rng.uniform(r, RESOLUTION - r, 2)
        colour = tuple(int(v) for v in fg)
        if ref.label in ("circle", "ring"):
            box = [cx - r, cy - r, cx + r, cy + r]
            draw.ellipse(box, outline=colour, width=int(rng.integers(3, 6))) if ref.label == "ring" else \
                draw.ellipse(box, fill=colour)
        else:
            draw.polygon(_polygon(ref.label, cx, cy, r, float(rng.uniform(0, 2 * np.pi))), fill=colour)
        noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 12, (RESOLUTION, RESOLUTION, 3))
        out[i] = noisy.clip(0, 255).astype(np.uint8)
    return out


def _finite(images: np.ndarray, labels: np.ndarray, label: int, ref: ClassRef, n: int) -> np.ndarray:
    """The first ``n`` (or all) images of a class of a finite source, in a seeded order, at 64 px RGB."""
    idx = np.flatnonzero(labels == label)
    idx = idx[np.random.default_rng(class_seed(ref)).permutation(len(idx))][:n]
    return image_data._resize(images[idx])


def class_images(ref: ClassRef, n: int) -> np.ndarray:
    """Up to ``n`` images of one class (exactly ``n`` for generated sources), ``(n, 64, 64, 3)`` uint8."""
    if ref.source == "glyphs":
        return glyph_images(ref, n)
    if ref.source == "shapes":
        return shape_images(ref, n)
    if ref.source == "animal-mnist":
        from .animal_mnist import load

        return _finite(*load(), int(ref.label), ref, n)
    if ref.source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _finite((d.images * (255 / 16)).clip(0, 255).astype(np.uint8), d.target, int(ref.label), ref, n)
    if ref.source == "fashion-mnist":
        return _finite(*image_data._fashion("train"), int(ref.label), ref, n)
    if ref.source == "skimage":
        return image_data.textures([ref.label], n, seed=class_seed(ref))[0]
    raise ValueError(f"Unknown image source {ref.source!r}.")
