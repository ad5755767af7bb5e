"""Errors raised by hf-spider.

Every error says what went wrong *and* how to fix it. They share one base class so callers can catch
``HfSpiderError`` for anything the library raises on purpose.
"""

from __future__ import annotations


class HfSpiderError(Exception):
    """Base class of every error hf-spider raises on purpose."""


class InvalidInputError(HfSpiderError, ValueError):
    """An argument, dataset or array is unusable (wrong column, shape, dtype, too few classes, NaN...)."""


class TokenIntegrityError(HfSpiderError):
    """A model token does not match the sha256, dimension or selector recorded in ``zoo.json``."""


class ZooError(HfSpiderError):
    """A selector's zoo index (``zoo.json``) is malformed, or names a model the selector does not know."""


class ArtifactError(HfSpiderError):
    """A saved artifact (config, weights, card) is missing, malformed or of an unsupported format version."""


class MissingDependencyError(HfSpiderError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""


def require(module: str, extra: str):
    """Import an optional dependency lazily, or raise an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"`{module}` is required for this feature. Install it with `pip install 'hf-spider[{extra}]'`."
        ) from err
