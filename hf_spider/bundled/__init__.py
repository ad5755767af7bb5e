"""Selectors and a sample dataset shipped inside the package, so hf-spider works with no network."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import InvalidInputError


def _root() -> Path:
    return Path(str(resources.files("hf_spider.bundled")))


def list_bundled() -> list[str]:
    """Names of the selectors shipped with the package (folders holding a ``zoo.json``)."""
    return sorted(p.parent.name for p in _root().glob("*/zoo.json"))


def bundled_selector(name: str) -> Path:
    """Folder of a bundled selector, to pass to ``SpiderSelector.from_pretrained``.

    Raises:
        InvalidInputError: no bundled selector has that name (the message lists those that exist).
    """
    path = _root() / name
    if not (path / "zoo.json").is_file():
        raise InvalidInputError(f"No bundled selector named {name!r}; bundled: {list_bundled()}.")
    return path


def _data_root() -> Path:
    return _root() / "data"


def list_bundled_datasets() -> list[str]:
    """Names of the sample datasets shipped with the package (use them as ``bundled:<name>`` in the CLI)."""
    return sorted(p.parent.name for p in _data_root().glob("*/dataset_info.json"))


def bundled_dataset(name: str):
    """A small sample dataset shipped with the package, as a ``datasets.Dataset`` (Arrow files, no network).

    ``fashion-mnist``: 8 test images per class of Fashion-MNIST (Xiao et al., 2017; MIT licence).
    """
    import datasets

    path = _data_root() / name
    if not (path / "dataset_info.json").is_file():
        raise InvalidInputError(f"No bundled dataset named {name!r}; bundled: {list_bundled_datasets()}.")
    ds = datasets.load_from_disk(str(path))
    ds.info.dataset_name = f"bundled:{name}"  # so rankings say which sample they ranked
    return ds


def resolve_dataset_ref(ref: str):
    """``bundled:<name>`` → the packaged sample dataset; anything else (Hub id, folder) is returned unchanged."""
    return bundled_dataset(ref.split(":", 1)[1]) if ref.startswith("bundled:") else ref
