"""The dataset-card recommendation widget: a Markdown block of the models a selector ranks best for a dataset.

The block sits between ``<!-- hf-spider:start -->`` and ``<!-- hf-spider:end -->`` in the dataset's README. Writing
it again replaces the block and nothing else: the card is edited as text (never parsed and re-dumped), so the YAML
header and every other byte outside the block stay as they were. For a Hub dataset the new card goes up as a pull
request; for a local folder it is written in place.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .cards import hub_url, marker_positions, template, upsert_block
from .errors import ArtifactError, InvalidInputError
from .hub import is_local, read_card_text, write_repo_files
from .ids import md_code, md_escape, md_url, py_literal
from .limits import ensure_writable
from .ranking import Ranking, evidence_text
from .units import format_accuracy, format_parameter_count

logger = logging.getLogger(__name__)

WIDGET_START, WIDGET_END = "<!-- hf-spider:start -->", "<!-- hf-spider:end -->"
DEFAULT_SPACE = "hf-spider/model-spider"
BADGE = "https://huggingface.co/datasets/huggingface/badges/resolve/main/open-in-hf-spaces-sm.svg"
_AUTO_CLASS = {"image-classification": "AutoModelForImageClassification",
               "text-classification": "AutoModelForSequenceClassification"}


def load_code(model_id: str, task_type: str) -> str:
    """The line of Python that loads ``model_id`` for fine-tuning, e.g. ``AutoModelForImageClassification...``."""
    return f'{_AUTO_CLASS.get(task_type, "AutoModel")}.from_pretrained({py_literal(model_id)})'


def space_link(dataset_id: str, *, space: str = DEFAULT_SPACE) -> str:
    """URL of the Space with ``dataset_id`` preselected (the Space reads the ``?dataset=`` query parameter)."""
    return f"{hub_url(space, 'space')}?dataset={quote(dataset_id, safe='/')}"


def render_widget(
    ranking: Ranking,
    *,
    dataset_id: str | None,
    space: str | None = DEFAULT_SPACE,
    date: _dt.date | str | None = None,
) -> str:
    """Render the widget's Markdown (without the markers) from ``hub_cards/dataset_widget.md``.

    Args:
        ranking: The ranking to show (all of its models are listed: pass ``top_k`` to ``rank``).
        dataset_id: Hub id of the dataset, for the Space badge and the "reproduce" line; ``None`` leaves the badge
            out (a local folder that is not on the Hub yet).
        space: Hub id of the hf-spider Space the badge links to; ``None`` leaves the badge out.
        date: Date shown in the block (default: today, UTC).

    Returns:
        The Markdown block.

    Raises:
        InvalidInputError: the ranking is empty.
    """
    from jinja2 import Template

    if not len(ranking):
        raise InvalidInputError("The ranking is empty; nothing to write into the card.")
    date = date or _dt.datetime.now(_dt.timezone.utc).date()
    models = [{"rank": m.rank, "model_id": m.model_id, "score": m.score, "code": load_code(m.model_id, m.task_type),
               "url": m.model_id if is_local(m.model_id) else hub_url(m.model_id), "aliases": ", ".join(m.aliases),
               "why": evidence_text(m.evidence),
               "accuracy": format_accuracy(m.predicted_accuracy, m.predicted_accuracy_interval),
               "parameters": format_parameter_count(m.num_parameters)} for m in ranking]
    selector_url = ranking.selector if is_local(ranking.selector) else hub_url(ranking.selector)
    dataset = dataset_id or ranking.dataset
    reproduce = shlex.join(["hf-spider", "rank", dataset, "--selector", ranking.selector]
                           + (["--revision", ranking.selector_revision] if ranking.selector_revision else []))
    return Template(template("dataset_widget.md"), trim_blocks=True, lstrip_blocks=True).render(
        md=md_escape, code=md_code, url=md_url, reproduce=reproduce,  # every id is escaped where it is written
        selector=ranking.selector, selector_revision=ranking.selector_revision, selector_url=selector_url,
        date=str(date), models=models, dataset=dataset, badge=BADGE, notes=ranking.all_notes(),
        space_url=space_link(dataset_id, space=space) if (dataset_id and space) else None,
    ).strip() + "\n"


def upsert_widget(card_text: str, block: str) -> str:
    """Return ``card_text`` with the widget block set; every byte outside the block is kept.

    A card without the block gets it appended after a blank line (the original text stays a byte-for-byte prefix);
    a card with it gets the block replaced in place. Markers inside fenced code blocks are text, not markers.

    Raises:
        ArtifactError: the card holds unbalanced or repeated markers (the message says how to fix it).
    """
    if not marker_positions(card_text, WIDGET_START) and not marker_positions(card_text, WIDGET_END):
        newline = "\r\n" if "\r\n" in card_text else "\n"
        sep = "" if not card_text else (newline if card_text.endswith("\n") else newline * 2)
        card_text = f"{card_text}{sep}{WIDGET_START}\n{WIDGET_END}{newline}"
    try:
        return upsert_block(card_text, block, start=WIDGET_START, end=WIDGET_END)
    except ValueError as err:  # stray markers: the message says how to fix the card
        raise ArtifactError(f"Dataset card: {err}") from err


def check_dataset_ref(dataset: str) -> None:
    """Raise ``InvalidInputError`` unless ``dataset`` is an existing folder or a well-formed Hub dataset id."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if is_local(dataset):
        return
    try:
        validate_repo_id(dataset)
    except HFValidationError as err:
        raise InvalidInputError(
            f"{dataset!r} is neither a dataset folder nor a Hub dataset id (`namespace/name`); check the path."
        ) from err


@dataclass(frozen=True)
class WidgetResult:
    """What ``write_dataset_widget`` did.

    Attributes:
        target: The folder written, or the pull-request / commit URL (``None`` for a dry run).
        card: The new README text.
        ranking: The ranking shown in the block.
        changed: Whether the README differs from before.
    """

    target: str | None
    card: str
    ranking: Ranking
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "changed": self.changed, "ranking": self.ranking.to_dict()}


def write_dataset_widget(
    dataset: str,
    *,
    selector: Any,
    repo_id: str | None = None,
    space: str | None = DEFAULT_SPACE,
    top_k: int = 5,
    split: str | None = None,
    input_column: str | None = None,
    label_column: str | None = None,
    create_pr: bool | None = None,
    dry_run: bool = False,
    date: _dt.date | str | None = None,
    token: str | bool | None = None,
    verbose: bool = True,
) -> WidgetResult:
    """Rank ``dataset`` and write the recommendation block into its README.

    Args:
        dataset: A local dataset folder or a Hub dataset id.
        selector: A loaded [`SpiderSelector`].
        repo_id: Hub id the badge links to (default: ``dataset`` when it is a Hub id; none for a folder).
        space: Hub id of the hf-spider Space for the badge (``None``: no badge).
        top_k: Number of models listed.
        split, input_column, label_column: Passed to ``selector.rank``.
        create_pr: Open a pull request instead of committing (default: ``True`` for a Hub dataset; ignored for
            a folder).
        dry_run: Compute the new card but write nothing.
        date: Date shown in the block (default: today, UTC).
        token: Hub token (default: the logged-in one).
        verbose: Show progress bars while ranking.

    Returns:
        A [`WidgetResult`].

    Raises:
        InvalidInputError: unusable dataset or arguments.
        ArtifactError: the README has unbalanced hf-spider markers (checked before ranking).

    Example:
        >>> from hf_spider import SpiderSelector
        >>> from hf_spider.widget import write_dataset_widget
        >>> sel = SpiderSelector.from_pretrained("org/spider-vision")
        >>> write_dataset_widget("org/my-dataset", selector=sel).target  # doctest: +SKIP
        'https://huggingface.co/datasets/org/my-dataset/discussions/1'
    """
    check_dataset_ref(dataset)
    local = is_local(dataset)
    badge_id = repo_id or (None if local else dataset)
    if local and not dry_run:  # a read-only folder fails here, before the ranking's work
        ensure_writable(dataset, what="the dataset card (README.md)")
    before = read_card_text(dataset, repo_type="dataset", token=token)
    upsert_widget(before, "")  # a card with stray markers fails here, before the ranking's work
    ranking = selector.rank(dataset, split=split, input_column=input_column, label_column=label_column,
                            top_k=top_k, verbose=verbose)
    card = upsert_widget(before, render_widget(ranking, dataset_id=badge_id, space=space, date=date))
    changed = card != before
    if dry_run or not changed:
        return WidgetResult(target=None if dry_run else str(dataset), card=card, ranking=ranking, changed=changed)
    target = write_repo_files(
        dataset, {"README.md": card.encode("utf-8")}, repo_type="dataset",
        create_pr=(not local) if create_pr is None else create_pr,
        commit_message="Add hf-spider model recommendations to the dataset card", token=token,
    )
    logger.info("Dataset card of %s updated: %s", dataset, target)
    return WidgetResult(target=target, card=card, ranking=ranking, changed=changed)
