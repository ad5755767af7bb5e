"""Saving and loading a selector: the huggingface_hub ``ModelHubMixin`` hooks of [`SpiderSelector`].

Saving is crash-safe (a sibling folder swapped in whole); loading trusts nothing it reads: every file is bounded,
every field validated, every token checked against ``zoo.json`` before the selector is built.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save as st_save

from . import hub
from .accuracy import ACCURACY_JSON, ACCURACY_TENSORS, load_accuracy_model
from .cards import selector_card
from .config import SelectorConfig
from .errors import ArtifactError, HfSpiderError, InvalidInputError
from .files import atomic_write_bytes, atomic_write_text, replace_folder
from .fitness_weights import load_fitness
from .ids import check_selector_name
from .limits import MAX_CONFIG_BYTES, MAX_ZOO_BYTES, read_bounded_text
from .task_inputs import PREFIX as TASK_INPUTS_PREFIX
from .task_inputs import TaskInputs
from .tokens import token_bytes

if TYPE_CHECKING:
    from .selector import SpiderSelector


class SelectorIOMixin:
    """``save_pretrained`` / ``from_pretrained`` for [`SpiderSelector`] (which holds the state they read and write)."""

    def save_pretrained(self, save_directory: str | Path, *, config: Any = None, repo_id: str | None = None,
                        push_to_hub: bool = False, model_card_kwargs: dict[str, Any] | None = None,
                        **push_to_hub_kwargs: Any) -> str | None:
        """Save the selector to a folder (see ``ModelHubMixin.save_pretrained``), crash-safe.

        The mixin deletes ``config.json`` before writing anything, so saving in place over an existing selector could
        leave it unloadable when interrupted. Here the new version is written into a sibling folder and swapped in
        with one atomic rename ([`files.replace_folder`]): at every instant the folder holds the old selector or the
        new one. Files hf-spider does not write (``.git``, your notes) are kept; stale ``tokens/`` are dropped.
        """
        with replace_folder(save_directory, owned=_SELECTOR_OWNED) as staging:
            super().save_pretrained(staging, config=config, model_card_kwargs=model_card_kwargs)
        if push_to_hub:
            kwargs = dict(push_to_hub_kwargs, **({"config": config} if config is not None else {}))
            return self.push_to_hub(repo_id=repo_id or Path(save_directory).name,
                                    model_card_kwargs=model_card_kwargs, **kwargs)
        return None

    def _save_pretrained(self, save_directory: Path) -> None:
        save_directory = Path(save_directory)
        if self.config.cascade:  # a cascade set by hand in Python: refused here rather than on the next load
            from .cascade import CascadeConfig

            CascadeConfig.from_dict(self.config.cascade)
        for entry, tok in zip(self.zoo, self.model_tokens):
            atomic_write_bytes(save_directory / entry.mirror, token_bytes(
                tok, model_id=entry.model_id, selector=self.config.name, selector_revision=self.revision))
        state = {k: v.contiguous() for k, v in self.fitness.state_dict().items()}
        if self.task_inputs is not None:
            state.update(self.task_inputs.tensors())
        atomic_write_bytes(save_directory / "model.safetensors", st_save(state, metadata={"format": "pt"}))
        atomic_write_text(save_directory / "zoo.json", hub.dump_zoo(self.zoo, selector=self.config.name))
        atomic_write_text(save_directory / "config.json", json.dumps(asdict(self.config), indent=2, sort_keys=True))
        if self.accuracy is not None:  # (without one, the folder swap drops a stale calibration: _SELECTOR_OWNED)
            self.accuracy.restricted_to(self.model_ids).save(save_directory)
        card = selector_card(
            repo_id=self.config.name, modality=self.config.modality, task_encoder=self.config.task_encoder,
            task_token_kind=self.config.task_token_kind, shots_per_class=self.config.shots_per_class,
            token_dim=self.config.fitness.token_dim, num_layers=self.config.fitness.num_layers,
            zoo=[asdict(e) for e in self.zoo], training=self.config.training,
            task_inputs=self.task_inputs.describe() if self.task_inputs is not None else None,
            rerank_k=self.config.rerank_k if self.config.fitness.ptm_widths else None,
            cascade=self.config.cascade or None,
            accuracy=self.accuracy.card_section() if self.accuracy is not None else None,
        )
        atomic_write_text(save_directory / "README.md", str(card))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> SpiderSelector:
        """Load a selector from a Hub repo id or a local folder (see ``ModelHubMixin.from_pretrained``).

        Extra keyword arguments: ``token_source`` — ``"auto"`` (default: each model's own repo first, then the
        selector's mirror copy), ``"model"`` (model repos only) or ``"mirror"`` (the selector's copy only);
        ``local_models`` — accept local folder paths as zoo model ids (default ``False``: only Hub ids, so a
        published ``zoo.json`` cannot point hf-spider at folders of this machine). Pass ``True`` for a selector you
        trained yourself over local folders.

        Raises:
            ArtifactError: not a selector, or a malformed one. ZooError / TokenIntegrityError: a bad zoo index or
            token. HubUnreachableError: offline with nothing cached.
        """
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

        ref = str(pretrained_model_name_or_path)
        if hub.is_local(ref) and _is_bundled(ref):
            # A bundled selector is a verified snapshot: its mirror tokens are the ones to use, with no Hub call.
            kwargs.setdefault("token_source", "mirror")
        if not hub.is_local(ref) and (isinstance(pretrained_model_name_or_path, Path) or ref.startswith((".", "/"))
                                      or ref.count("/") > 1):
            raise ArtifactError(f"No selector folder at {ref!r}; pass an existing folder or a Hub id 'org/name'.")
        if hub.is_local(ref):
            # The mixin opens and decodes config.json before _from_pretrained runs: check the file (a FIFO, a link to
            # /dev/zero, gigabytes) and every field (a zero num_heads, a huge token_dim) first.
            SelectorConfig.from_dict(_read_json(Path(ref) / "config.json"))
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except HfSpiderError:
            raise
        except HFValidationError as err:
            raise ArtifactError(f"{ref!r} is neither a folder nor a valid Hub repo id: {err}") from err
        except LocalEntryNotFoundError as err:
            raise hub.HubUnreachableError(
                f"Selector {ref!r} is not in the local cache and the Hub cannot be reached (offline mode or no "
                "network). Connect once, or pass a local folder."
            ) from err
        except (ValueError, ArithmeticError, UnicodeDecodeError, AttributeError, TypeError) as err:
            # The mixin json-loads and decodes a downloaded config.json before our own validation sees it.
            raise ArtifactError(f"config.json of {ref!r} is not a valid selector config ({err}).") from err

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        token_source: hub.TokenSource = "auto",
        local_models: bool = False,
        **kwargs: Any,
    ) -> SpiderSelector:
        folder, sha = hub.snapshot_selector(model_id, revision=revision, cache_dir=cache_dir,
                                            force_download=force_download, local_files_only=local_files_only,
                                            token=token)
        config = SelectorConfig.from_dict(_read_json(folder / "config.json"))
        try:
            check_selector_name(config.name, where=f"{model_id}/config.json")
        except InvalidInputError as err:
            raise ArtifactError(str(err)) from None
        zoo = hub.parse_zoo(_read_text(folder / "zoo.json"), local_models=local_models)
        try:
            fitness, extra = load_fitness(folder / "model.safetensors", config.fitness,
                                          source=f"{model_id}/model.safetensors", extra_prefix=TASK_INPUTS_PREFIX)
        except FileNotFoundError as err:
            raise ArtifactError(f"{model_id} has no model.safetensors; it is not a complete selector.") from err
        tokens = hub.load_zoo_tokens(zoo, folder, dim=config.fitness.token_dim, token_source=token_source,
                                     token=token)
        task_inputs = None
        if config.task_inputs:
            task_inputs = TaskInputs.from_state(config.task_inputs, extra, len(zoo))
        elif extra:
            raise ArtifactError(f"{model_id}/model.safetensors holds task_inputs tensors but config.json has no "
                                "task_inputs; the two files do not belong together.")
        accuracy = load_accuracy_model(folder, zoo_ids=[e.model_id for e in zoo], task_encoder=config.task_encoder,
                                       task_dim=config.fitness.task_dim)  # None without accuracy.json
        return cls(config, fitness, zoo, tokens, revision=sha, accuracy=accuracy, task_inputs=task_inputs)


# Top-level names a saved selector consists of; anything else in its folder (.git, notes) survives a re-save.
# accuracy.* too: a calibration left from an earlier save belongs to another network; never load it with this one.
_SELECTOR_OWNED = ("config.json", "model.safetensors", "zoo.json", "README.md", "tokens", ACCURACY_JSON,
                   ACCURACY_TENSORS)


def _read_text(path: Path) -> str:
    """A selector's JSON file, as text: a regular file under its size cap (see ``limits``)."""
    try:
        return read_bounded_text(path, limit=MAX_ZOO_BYTES if path.name == "zoo.json" else MAX_CONFIG_BYTES)
    except FileNotFoundError as err:
        raise ArtifactError(f"{path.name} is missing from {path.parent}; it is not a complete selector.") from err


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path.name} is not valid JSON ({err}).") from err


def _is_bundled(path: str) -> bool:
    from .bundled import _root

    return Path(path).resolve().is_relative_to(_root().resolve())
