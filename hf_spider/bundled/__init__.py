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
