"""Human-readable sizes and accuracies, and parsing ``100M``-style parameter budgets (no heavy imports)."""

from __future__ import annotations

import math
import re

from .errors import InvalidInputError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*([KMBGT]?)\s*$", re.IGNORECASE)


def parse_parameter_count(text: str | int | float) -> int:
    """``"100M"`` → 100_000_000. Suffixes K, M, B (or G), T, case-insensitive; plain numbers are counts.

    Raises:
        InvalidInputError: not a positive number with an optional K/M/B suffix.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _SIZE_RE.match(str(text))
        if not match:
            raise InvalidInputError(f"Cannot read the parameter budget {text!r}: give a number with an optional "
                                    "K/M/B suffix, e.g. 100M or 1.5B.")
        value = float(match.group(1)) * 10 ** int(match.group(2) or 0) * _SUFFIX[match.group(3).upper()]
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"The parameter budget must be a positive number, got {text!r}.")
    return int(round(value))


def format_parameter_count(n: int | None) -> str:
    """``86_567_656`` → ``"86.6M"``; ``None`` → ``"?"``."""
    if n is None:
        return "?"
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.1f}{suffix}"
    return str(n)


def format_accuracy(value: float | None, interval: tuple[float, float] | None = None) -> str:
    """``0.912, (0.88, 0.94)`` → ``"91.2% (88-94)"``; ``None`` → ``"n/a"``."""
    if value is None:
        return "n/a"
    text = f"{100 * value:.1f}%"
    if interval is not None:
        text += f" ({100 * interval[0]:.0f}-{100 * interval[1]:.0f})"
    return text
