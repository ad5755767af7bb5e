"""Model ids and selector names: what is accepted from a selector's files, and how they are quoted in output.

A selector's ``zoo.json`` and ``config.json`` come from whoever published it, and their ids end up in cards, code
snippets, shell lines and file paths. So an id is checked when the selector loads, and quoted where it is written:

* a Hub id is ASCII ``name`` or ``namespace/name`` (letters, digits, ``.``, ``_``, ``-``), as the Hub allows — no
  path (``../../etc``, ``/root``), no newline, no zero-width or look-alike letters;
* a local folder path is accepted as a zoo model id only when the user asks for it (``local_models=True``): a
  published ``zoo.json`` must not point hf-spider at folders of the machine it runs on;
* in generated code an id is a Python string literal ([`py_literal`]); in Markdown it is escaped ([`md_escape`],
  [`md_code`]); on a shell line it is shell-quoted.
"""

from __future__ import annotations

import json
import re
import unicodedata

from .errors import InvalidInputError

_HUB_ID_RE = re.compile(r"\w(?:[\w.-]*\w)?(?:/\w(?:[\w.-]*\w)?)?", flags=re.ASCII)
_MARKERS = ("<!--", "-->")


def hub_id_problem(value: object) -> str | None:
    """Why ``value`` is not a well-formed Hub repo id (``None`` when it is).

    The rules of huggingface_hub's ``validate_repo_id``, restricted to ASCII (its ``\\w`` admits any Unicode letter,
    so look-alikes such as a Cyrillic "о" would pass), written out here because a 100,000-model zoo checks them all.
    """
    if not isinstance(value, str) or not value:
        return "it is not a non-empty string"
    if not value.isascii() or not value.isprintable():
        return "it holds non-ASCII or invisible characters (a look-alike of another id?)"
    if not _HUB_ID_RE.fullmatch(value):
        return ("a Hub id is `name` or `namespace/name` of letters, digits, '.', '_' and '-' (no path, no spaces, "
                "no quotes)")
    if "--" in value or ".." in value or value.endswith(".git") or len(value.rsplit("/", 1)[-1]) > 96:
        return "a Hub id has no '--' or '..', does not end in '.git', and its name is at most 96 characters"
    return None


def local_id_problem(value: object) -> str | None:
    """Why ``value`` is not acceptable as a local folder path in a zoo (``None`` when it is): no control, zero-width
    or line-separator characters, no ``..`` component, no hf-spider card markers."""
    if not isinstance(value, str) or not value:
        return "it is not a non-empty string"
    bad = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]
    if bad:
        return f"it holds control or invisible characters ({', '.join(f'U+{ord(c):04X}' for c in bad[:3])})"
    if ".." in re.split(r"[\\/]", value):
        return "it climbs out of a folder with '..'"
    if any(m in value for m in _MARKERS):
        return "it holds an HTML comment marker"
    return None


def check_model_id(value: object, *, where: str, local_ok: bool = False) -> str:
    """Return ``value`` if it is a Hub id (or, with ``local_ok``, an acceptable local path); else raise.

    Raises:
        InvalidInputError: naming ``where`` the id came from, what is wrong and what to do.
    """
    problem = hub_id_problem(value)
    if problem is None:
        return value
    if local_ok:
        local = local_id_problem(value)
        if local is None:
            return value
        problem = local
    hint = "" if local_ok else (
        " A zoo may name local folders only when you ask for it: SpiderSelector.from_pretrained(..., "
        "local_models=True) (CLI: --local-models), for a selector whose zoo.json you trust.")
    raise InvalidInputError(f"{where}: model id {value!r} is refused: {problem}.{hint}")


def check_model_ids(values: list[object], *, where: str = "zoo.json", local_ok: bool = False) -> None:
    """[`check_model_id`] for every id of a zoo; the first bad one is named (``where[i]``). About 2 µs an id: a
    100,000-model zoo takes 0.2 s (one regex over all ids joined measured slower).

    Raises:
        InvalidInputError: an id is refused.
    """
    for i, value in enumerate(values):
        if hub_id_problem(value) is not None:
            check_model_id(value, where=f"{where}[{i}]", local_ok=local_ok)


def check_selector_name(value: object, *, where: str = "config.json") -> str:
    """Return ``value`` if it is a well-formed Hub repo id (a selector's ``name``); else raise InvalidInputError."""
    problem = hub_id_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{where}: selector name {value!r} is refused: {problem}. The name is the Hub repo "
                                "id the selector lives at, e.g. 'org/spider-vision'.")
    return value


def py_literal(value: str) -> str:
    """``value`` as a Python string literal, safe to paste into code: JSON string syntax is a subset of Python's
    (quotes, backslashes and control characters escaped), and gives the double quotes of the docs' snippets."""
    return json.dumps(value)


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")  # "_" is left: intraword it is text, and Hub ids hold it


def md_escape(value: object) -> str:
    """``value`` as literal Markdown text (link text, a table cell): special characters backslash-escaped, ``&``
    as an entity, line breaks as spaces."""
    text = re.sub(r"[\r\n\u2028\u2029]+", " ", str(value)).replace("&", "&amp;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(value: object) -> str:
    """``value`` as a Markdown code span that survives a table cell: fenced with more backticks than it holds, pipes
    escaped (GitHub tables split cells at ``|`` even inside code), line breaks as spaces."""
    text = re.sub(r"[\r\n\u2028\u2029]+", " ", str(value)).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_url(url: str) -> str:
    """A link destination that cannot end the link early: spaces, parentheses, angle brackets and control
    characters percent-encoded."""
    from urllib.parse import quote

    return quote(url, safe=":/?#[]@!$&'*+,;=%~")
