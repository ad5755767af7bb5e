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

TOKEN_START, TOKEN_END = "<!-- hf-spider-token:start -->", "<!-- hf-spider-token:end -->"


def template(name: str) -> str:
    """Text of a template in ``hub_cards/``."""
    return resources.files("hf_spider.hub_cards").joinpath(name).read_text(encoding="utf-8")


def hub_url(repo_id: str, repo_type: str = "model") -> str:
    from huggingface_hub import constants

    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{constants.ENDPOINT}/{prefix}{repo_id}"


def upsert_block(text: str, block: str, *, start: str, end: str) -> str:
    """Replace the block between ``start`` and ``end`` markers in ``text``, or append it; nothing else changes.

    Raises:
        InvalidInputError: the markers are unbalanced (a start without an end, or more than one block).
    """
    n_start, n_end = text.count(start), text.count(end)
    if n_start != n_end or n_start > 1:
        raise InvalidInputError(
            f"The card has {n_start} {start!r} and {n_end} {end!r} markers; expected one pair or none. Fix the card "
            "by hand (remove the stray markers) and re-run."
        )
    wrapped = f"{start}\n{block.strip()}\n{end}"
    if n_start:
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.DOTALL)
        return pattern.sub(lambda _: wrapped, text, count=1)
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + wrapped + "\n"


def with_token_section(
    card_text: str, *, selector: str, selector_revision: str | None, dim: int, sha256: str
) -> str:
    """Return ``card_text`` with ``spider`` YAML metadata and the "Model Spider token" section set (idempotent).

    Line endings are normalised to ``\n``. The YAML header is re-written by huggingface_hub's card API.

    Raises:
        ArtifactError: the card's YAML header is malformed, or holds hf-spider's markers.
    """
    import yaml
    from jinja2 import Template

    card_text = card_text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        card = ModelCard(card_text, ignore_metadata_errors=True) if card_text.strip() else ModelCard("")
    except (yaml.YAMLError, ValueError) as err:
        raise ArtifactError(f"The model card's YAML header is malformed ({err}); fix or remove it, re-run.") from err
    card.data.spider = {
        "selector": selector,
        "selector_revision": selector_revision,
        "token": "spider/token.safetensors",
        "dim": dim,
        "sha256": sha256,
    }
    body = Template(template("token_section.md")).render(
        selector=selector, selector_revision=selector_revision, selector_url=hub_url(selector), dim=dim,
        sha256=sha256,
    )
    card.text = upsert_block(card.text, body, start=TOKEN_START, end=TOKEN_END)
    out = str(card)
    if out.count(TOKEN_START) != 1 or out.count(TOKEN_END) != 1:
        raise ArtifactError("The card holds hf-spider's section markers outside its body (in the YAML header?); "
                            "remove them and re-run.")
    return out


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
    task_inputs: dict[str, Any] | None = None,
) -> ModelCard:
    """Render the selector's model card (``library_name: hf-spider``, tags, the zoo, how it was trained)."""
    data = ModelCardData(
        library_name="hf-spider",
        tags=["hf-spider", "model-selection", "model-spider", f"{modality}-classification"],
        base_model=None,
    )
    zoo_rows = [{**entry, "url": hub_url(entry["model_id"])} for entry in zoo]
    return ModelCard.from_template(
        card_data=data,
        template_str=template("selector_card.md"),
        title=f"Model Spider selector: {repo_id}",
        repo_id=repo_id,
        modality=modality,
        task_encoder=task_encoder,
        task_token_kind=task_token_kind,
        shots_per_class=shots_per_class,
        token_dim=token_dim,
        num_layers=num_layers,
        zoo=zoo_rows,
        training=training or {},
        rerank_k=rerank_k,
        task_inputs=task_inputs,
    )
