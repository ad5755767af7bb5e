"""Sampled images are decoded shrunk, one at a time, and unreadable ones are named by row (issue 16, item 8)."""

from __future__ import annotations

import io
import struct
import zlib

import datasets
import numpy as np
import pytest
from conftest import image_dataset
from PIL import Image

from hf_spider import InvalidInputError, sample_task
from hf_spider.images import MAX_IMAGE_SIDE


def png_bytes(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A black RGB PNG written row by row (never held as pixels): a 20000² header costs a few bytes. ``rows`` stops
    the pixel data early (a truncated or bomb-sized file)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    compress, line = zlib.compressobj(9), b"\x00" * (1 + 3 * width)
    idat = b"".join(compress.compress(line) for _ in range(height if rows is None else rows)) + compress.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def jpeg_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def noise(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(out, format=fmt)
    return out.getvalue()


def dataset_of(cells: list[bytes]) -> datasets.Dataset:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    return datasets.Dataset.from_dict(
        {"image": [{"bytes": c, "path": None} for c in cells], "label": [i % 2 for i in range(len(cells))]},
        features=features)


def test_large_images_are_decoded_shrunk_keeping_their_aspect():
    """Before: decoded at full size (3000 × 2000 and 4000 × 3000 here; 9000² × 12 peaked at 7.7 GB)."""
    small = png_bytes(40, 30)
    ds = dataset_of([png_bytes(3000, 2000), jpeg_bytes(4000, 3000), small, small])
    sample = sample_task(ds, shots_per_class=2)
    sizes = [image.size for image in sample.inputs]
    assert sizes == [(MAX_IMAGE_SIDE, 683), (MAX_IMAGE_SIDE, 768), (40, 30), (40, 30)]
    assert np.asarray(sample.inputs[1])[5, 5].tolist() == pytest.approx([200, 30, 30], abs=3)  # JPEG via draft()


def test_small_images_decode_exactly_as_datasets_does():
    ds = image_dataset(3)
    sample = sample_task(ds, shots_per_class=3)
    expected = ds.select(sample.indices)["image"]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) and a.mode == b.mode
               for a, b in zip(sample.inputs, expected))


def test_max_image_side_is_a_parameter():
    ds = dataset_of([png_bytes(600, 300)] * 4)
    assert {im.size for im in sample_task(ds, shots_per_class=2, max_image_side=100).inputs} == {(100, 50)}


@pytest.mark.parametrize("bad, message", [
    (png_bytes(20000, 20000, rows=2), r"Row 2 of column 'image' is larger than Pillow's decompression-bomb limit"),
    (b"definitely not an image", r"Row 2 of column 'image' is not a readable image \(UnidentifiedImageError"),
    (noise("PNG")[:6000], r"Row 2 of column 'image' is not a readable image"),  # truncated mid-pixels
    (noise("JPEG")[:1000], r"Row 2 of column 'image' is not a readable image"),
], ids=["20000x20000-png", "garbage", "truncated-png", "truncated-jpeg"])
def test_unreadable_image_is_named_by_row(bad, message):
    """Before: DecompressionBombError / UnidentifiedImageError / OSError tracebacks from inside `datasets`."""
    good = png_bytes(8, 8)
    ds = dataset_of([good, good, bad, good])
    with pytest.raises(InvalidInputError, match=message):
        sample_task(ds, shots_per_class=2)


def test_unreadable_image_through_the_cli_is_exit_2(tmp_path, capsys):
    from hf_spider.cli import main

    good = png_bytes(8, 8)
    dataset_of([good, good, b"\x89PNG garbage", good]).save_to_disk(tmp_path / "ds")
    assert main(["rank", str(tmp_path / "ds"), "--selector", "spiderbench-image", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Row 2 of column 'image' is not a readable image" in err and "Traceback" not in err
