"""Decoding a dataset's sampled images at the size the encoders need, never at full size, with errors naming the row.

``datasets`` decodes every ``Image`` cell at full resolution: a dozen 9000 × 9000 PNGs (a few MB on disk) held 7.7 GB
before any processor saw them, to be resized to 224 px. Here the encoded bytes are read (``Image(decode=False)``) and
each image is shrunk *while* it is decoded: JPEGs through ``draft`` (the decoder's own DCT scaling, so the full-size
image never exists), other formats through ``reduce`` then a resample, one image at a time.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .errors import InvalidInputError

# The longest side kept. Image processors resize to at most ~600 px (EfficientNet-B7; ViT/ConvNeXt/DINOv2 use
# 224-518), so 1024 loses nothing they read, and an already smaller image is decoded exactly as `datasets` would.
MAX_IMAGE_SIDE = 1024


def decode_sampled_images(rows: Any, column: str, indices: np.ndarray, *, max_side: int = MAX_IMAGE_SIDE) -> list:
    """The images of ``rows[column]`` as RGB-or-original-mode PIL images whose longest side is at most ``max_side``.

    Args:
        rows: The sampled ``datasets.Dataset`` rows. column: Its ``Image`` column. indices: Row index of each in the
            source split (named in errors). max_side: Longest side kept (aspect ratio preserved).

    Raises:
        InvalidInputError: a row is not a readable image (corrupt, truncated, unknown format, missing file) or
            exceeds Pillow's decompression-bomb limit; the message names the row and what to do.
    """
    import datasets

    feature = rows.features[column]
    # {"bytes", "path"} per row, not decoded; one slice (a ``Column`` would be formatted one row at a time)
    raw = rows.cast_column(column, datasets.Image(decode=False))[:][column]
    return [_decode(value, row=int(row), column=column, max_side=max_side, mode=getattr(feature, "mode", None))
            for row, value in zip(indices, raw)]


def _decode(value: Any, *, row: int, column: str, max_side: int, mode: str | None):
    from PIL import Image, ImageOps, UnidentifiedImageError

    where = f"Row {row} of column {column!r}"
    if value is None:
        raise InvalidInputError(f"{where} has no image (null); filter such rows out first "
                                f"(`dataset.filter(lambda row: row[{column!r}] is not None)`).")
    try:
        image = Image.open(_source(value, where))  # reads the header only: the size is known, nothing decoded yet
        image.thumbnail((max_side, max_side))  # draft() for JPEG, reduce() + resample otherwise; no-op when smaller
        image.load()  # a truncated file fails here, not later inside a processor
        if image.getexif().get(Image.ExifTags.Base.Orientation) is not None:  # as `datasets` decodes
            image = ImageOps.exif_transpose(image)
        if mode and image.mode != mode:
            image = image.convert(mode)
    except Image.DecompressionBombError as err:
        raise InvalidInputError(
            f"{where} is larger than Pillow's decompression-bomb limit ({err}). Drop or downscale that row "
            "(e.g. `dataset.select(...)`), or, if you trust the data, raise `PIL.Image.MAX_IMAGE_PIXELS`."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise InvalidInputError(
            f"{where} is not a readable image ({type(err).__name__}: {err}); the file is corrupt, truncated or in an "
            "unknown format. Drop that row (`dataset.select(...)` / `dataset.filter(...)`) or re-encode it."
        ) from err
    return image


def _source(value: dict, where: str):
    """What ``Image.open`` reads: the cell's bytes, else its local file; a remote path is fetched by ``datasets``."""
    data, path = value.get("bytes"), value.get("path")
    if data is not None:
        return io.BytesIO(data)
    if path is None:
        raise InvalidInputError(f"{where} holds neither image bytes nor a path; filter it out first.")
    if os.path.isfile(path):
        return path
    if os.path.exists(path):  # a FIFO or device would block or never end
        raise InvalidInputError(f"{where} points to {path}, which is not a regular file; filter that row out.")
    from datasets.utils.file_utils import xopen

    with xopen(path, "rb") as f:  # hf:// or http(s):// paths of a dataset whose cells point to remote files
        return io.BytesIO(f.read())
