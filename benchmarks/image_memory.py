"""Peak memory of sampling a dataset of very large images (issue 16, item 8), measured in a fresh process (not a test).

    PYTHONPATH=$PWD python benchmarks/image_memory.py                  # 12 PNGs of 9000 x 9000, 6 rows per class
    PYTHONPATH=$PWD python benchmarks/image_memory.py --side 4000 --count 8

Each image is a black RGB PNG written row by row (about 240 KB on disk for 9000²), so building the dataset costs
little; `sample_task` then decodes every sampled row. The child process reports its peak resident set size (Linux
``ru_maxrss``) before and after sampling; the difference is what decoding the images cost. Point PYTHONPATH at
another checkout to measure that version of hf-spider.
"""

from __future__ import annotations

import argparse
import json
import resource
import struct
import subprocess
import sys
import time
import zlib


def png_bytes(side: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    compress, line = zlib.compressobj(9), b"\x00" * (1 + 3 * side)
    idat = b"".join(compress.compress(line) for _ in range(side)) + compress.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def child(side: int, count: int) -> None:
    import datasets

    from hf_spider import sample_task

    cell = png_bytes(side)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": cell, "path": None}] * count,
                                     "label": [i % 2 for i in range(count)]}, features=features)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    start = time.perf_counter()
    sample = sample_task(ds, shots_per_class=count)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"png_bytes": len(cell), "sizes": sorted({im.size for im in sample.inputs}),
                      "peak_before_gib": round(before, 2), "peak_after_gib": round(after, 2),
                      "seconds": round(seconds, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=9000)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.side, args.count)
        return
    out = subprocess.run([sys.executable, __file__, "--child", "--side", str(args.side), "--count", str(args.count)],
                         capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
        sys.exit(out.returncode)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"| images | PNG size | decoded sizes | peak RSS before sampling | peak RSS after | seconds |\n"
          f"|---|---|---|---|---|---|\n"
          f"| {args.count} x {args.side}² | {result['png_bytes'] / 1e3:.0f} KB | {result['sizes']} | "
          f"{result['peak_before_gib']} GiB | {result['peak_after_gib']} GiB | {result['seconds']} |")


if __name__ == "__main__":
    main()
