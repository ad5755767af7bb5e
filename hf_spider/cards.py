"""Model cards: the selector's card, and the "Model Spider token" section written into a zoo model's card.

Cards are rendered from the Jinja templates in ``hub_cards/`` with huggingface_hub's card classes. Sections that
hf-spider owns sit between HTML-comment markers, so re-writing replaces them instead of adding a copy.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .errors import ArtifactError, InvalidInputError
from .ids import md_escape, md_url, py_literal

TOKEN_START, TOKEN_END = "<!-- hf-spider-token:start -->", "<!-- hf-spider-token:end -->"


def template(name: str) -> str:
    """Text of a template in ``hub_cards/``."""
    return resources.files("hf_spider.hub_cards").joinpath(name).read_text(encoding="utf-8")


def hub_url(repo_id: str, repo_type: str = "model") -> str:
    from huggingface_hub import constants

    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{constants.ENDPOINT}/{prefix}{repo_id}"


_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", flags=re.MULTILINE)


def _fenced_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the fenced code blocks of a Markdown text (CommonMark fences: three or more
    backticks or tildes, closed by a fence of the same character at least as long; unclosed runs to the end)."""
    spans, opened = [], None
    for m in _FENCE_RE.finditer(text):
        fence, rest = m.group(1), m.group(2).strip()
        if opened is None:
            if not (fence[0] == "`" and "`" in rest):  # a backtick fence's info string holds no backtick
                opened = (m.start(), fence)
        elif fence[0] == opened[1][0] and len(fence) >= len(opened[1]) and not rest:
            spans.append((opened[0], m.end()))
            opened = None
    if opened is not None:
        spans.append((opened[0], len(text)))
    return spans


def marker_positions(text: str, marker: str) -> list[int]:
    """Offsets of ``marker`` in ``text`` outside fenced code blocks: a marker quoted in a code sample (e.g. a card
    that documents hf-spider) is text, not a marker."""
    spans = _fenced_spans(text)
    return [m.start() for m in re.finditer(re.escape(marker), text) if not any(a <= m.start() < b for a, b in spans)]


def _newline(text: str) -> str:
    """The text's line ending: CRLF when it uses CRLF, else LF (a card keeps its own)."""
    return "\r\n" if "\r\n" in text else "\n"


def upsert_block(text: str, block: str, *, start: str, end: str) -> str:
    """Replace the block between ``start`` and ``end`` markers in ``text``, or append it; nothing else changes.

    Markers inside fenced code blocks are ignored. The block gets the text's line endings (CRLF stays CRLF).

    Raises:
        InvalidInputError: the markers are unbalanced (a start without an end, or more than one block).
    """
    starts, ends = marker_positions(text, start), marker_positions(text, end)
    if len(starts) != len(ends) or len(starts) > 1 or (starts and ends[0] < starts[0]):
        raise InvalidInputError(
            f"The card has {len(starts)} {start!r} and {len(ends)} {end!r} markers (outside code blocks); expected "
            "one pair, start before end, or none. Fix the card by hand (remove the stray markers) and re-run."
        )
    newline = _newline(text)
    body = block.replace("\r\n", "\n").strip()
    wrapped = f"{start}\n{body}\n{end}".replace("\n", newline)
    if starts:
        return text[: starts[0]] + wrapped + text[ends[0] + len(end):]
    return text.rstrip("\r\n") + (newline * 2 if text.strip() else "") + wrapped + newline


def _split_header(text: str) -> tuple[str | None, str]:
    """``(YAML header text or None, body)`` of an LF card; the header is what sits between the leading ``---`` lines
    (as huggingface_hub reads it)."""
    m = re.match(r"\s*---[ \t]*\n", text)
    if not m:
        return None, text
    close = re.compile(r"^---[ \t]*$(\n|\Z)", flags=re.MULTILINE).search(text, m.end())
    if not close:
        return None, text
    return text[m.end(): close.start()], text[close.end():]


def set_yaml_key(header: str, key: str, value: Any) -> str:
    """Set the top-level ``key`` of a YAML header to ``value`` by editing the text, not by re-dumping it: comments,
    key order, quoting and formatting of everything else stay as they were.

    Raises:
        ArtifactError: the header is not a YAML mapping, or the edit could not be made safely.
    """
    import yaml

    def parse(text: str) -> dict:
        try:
            data = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as err:
            raise ArtifactError(f"The card's YAML header is malformed ({err}); fix or remove it, re-run.") from err
        if not isinstance(data, dict):
            raise ArtifactError("The card's YAML header is not a mapping (`key: value` lines); fix or remove it.")
        return data

    before = parse(header)
    lines = header.split("\n")
    block = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    block_lines = block.rstrip("\n").split("\n")
    own = re.compile(rf"^{re.escape(key)}\s*:")
    at = next((i for i, line in enumerate(lines) if own.match(line)), None)
    if at is None:  # append after the last non-blank line
        at = end = len(lines) - next((i for i, line in enumerate(reversed(lines)) if line.strip()), len(lines))
    else:  # the key's lines: its own, then indented or blank ones (trailing blanks stay outside)
        end = at + 1
        while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
            end += 1
        while end > at + 1 and not lines[end - 1].strip():
            end -= 1
    out = "\n".join(lines[:at] + block_lines + lines[end:])
    if not out.endswith("\n"):
        out += "\n"
    after = parse(out)
    if after.get(key) != value or {k: v for k, v in after.items() if k != key} != {
            k: v for k, v in before.items() if k != key}:
        raise ArtifactError(f"Could not set `{key}` in the card's YAML header without changing other keys (an "
                            f"unusual layout, e.g. an anchor or a flow mapping); edit the `{key}:` entry by hand.")
    return out


def with_token_section(
    card_text: str, *, selector: str, selector_revision: str | None, dim: int, sha256: str
) -> str:
    """Return ``card_text`` with ``spider`` YAML metadata and the "Model Spider token" section set (idempotent).

    The card is edited as text: the YAML header keeps its comments and formatting (only the ``spider`` key is
    written), the rest of the card outside the section is unchanged, and CRLF line endings stay CRLF.

    Raises:
        ArtifactError: the card's YAML header is malformed, or holds hf-spider's markers.
        InvalidInputError: the card's body holds unbalanced markers.
    """
    from jinja2 import Template

    newline = _newline(card_text)
    header, body = _split_header(card_text.replace("\r\n", "\n").replace("\r", "\n"))
    if header is not None and (TOKEN_START in header or TOKEN_END in header):
        raise ArtifactError("The card holds hf-spider's section markers outside its body (in the YAML header?); "
                            "remove them and re-run.")
    spider = {"selector": selector, "selector_revision": selector_revision, "token": "spider/token.safetensors",
              "dim": dim, "sha256": sha256}
    header = set_yaml_key(header or "", "spider", spider)
    section = Template(template("token_section.md")).render(
        selector=selector, selector_literal=py_literal(selector), selector_revision=selector_revision,
        selector_url=hub_url(selector), dim=dim, sha256=sha256,
    )
    body = upsert_block(body, section, start=TOKEN_START, end=TOKEN_END)
    return f"---\n{header}---\n{body}".replace("\n", newline)


def selector_card(
    *,
    repo_id: str,
    modality: str,
    task_encoder: str,
    task_token_kind: str,
    shots_per_class: int,
    token_dim: int,
    num_layers: int,
    zoo: list[dict[str, Any]],
    training: dict[str, Any] | None = None,
    rerank_k: int | None = None,
    accuracy: str | None = None,
    task_inputs: dict[str, Any] | None = None,
    cascade: dict[str, Any] | None = None,
) -> ModelCard:
    """Render the selector's model card (``library_name: hf-spider``, tags, the zoo, how it was trained; ``accuracy``:
    Markdown on its predicted accuracy and how well that is calibrated, when it has one; ``cascade``: its validated
    ``config.cascade``, when it has one)."""
    data = ModelCardData(
        library_name="hf-spider",
        tags=["hf-spider", "model-selection", "model-spider", f"{modality}-classification"],
        base_model=None,
    )
    zoo_rows = [{**entry, "model_id_md": md_escape(entry["model_id"]), "url": md_url(hub_url(entry["model_id"]))}
                for entry in zoo]
    return ModelCard.from_template(
        card_data=data,
        template_str=template("selector_card.md"),
        title=f"Model Spider selector: {repo_id}",
        repo_id=repo_id,
        repo_id_literal=py_literal(repo_id),
        modality=modality,
        task_encoder=task_encoder,
        task_token_kind=task_token_kind,
        shots_per_class=shots_per_class,
        token_dim=token_dim,
        num_layers=num_layers,
        zoo=zoo_rows,
        training=training or {},
        rerank_k=rerank_k,
        accuracy=accuracy,
        task_inputs=task_inputs,
        cascade=cascade,
    )
