"""The zoo side of a selector: its model ids, tokens written into model repos, and adding a model later.

``SpiderSelector`` inherits these methods; they use its ``zoo``, ``model_tokens``, ``config``, ``fitness``,
``revision`` and task-token methods, and keep the zoo index and the tokens in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import hub
from .cards import with_token_section
from .errors import ArtifactError, InvalidInputError, ZooError
from .files import atomic_write_bytes, atomic_write_text, folder_lock
from .ids import hub_id_problem
from .limits import ensure_writable
from .tokens import TOKEN_FILENAME, token_bytes, token_sha256
from .training import TrainingTask, fit_model_token


class ZooMixin:
    """Zoo management for [`SpiderSelector`]."""

    zoo: list[hub.ZooEntry]
    model_tokens: torch.Tensor

    @property
    def model_ids(self) -> list[str]:
        return [e.model_id for e in self.zoo]

    def token_file(self, model_id: str) -> bytes:
        """The ``spider/token.safetensors`` bytes of one zoo model."""
        i = self._index(model_id)
        return token_bytes(self.model_tokens[i], model_id=model_id, selector=self.config.name,
                           selector_revision=self.revision)

    def write_token(
        self, model_id: str, *, repo: str | None = None, create_pr: bool = False, token: str | bool | None = None
    ) -> str:
        """Write a model's token and its card section into its repo: a Hub repo via a commit, or a pull request with
        ``create_pr=True``; a local folder only when you pass it as ``repo``. Re-writing replaces the card section,
        never duplicates it; the card's YAML comments, line endings and file mode are kept.

        A zoo id is never taken as a folder to write into (a ``zoo.json`` must not make hf-spider edit this
        machine's files): without ``repo`` the target is the Hub repo ``model_id``. A local folder is updated under
        its lock (``files.folder_lock``), the card re-read once the lock is held.

        Returns:
            The folder path, commit URL or pull-request URL.

        Raises:
            InvalidInputError: no Hub repo to write to (a local zoo model without ``repo=``), or ``create_pr`` for a
                local folder (a folder has no pull requests).
        """
        i = self._index(model_id)
        local = repo is not None and hub.is_local(repo)
        if repo is None:
            repo = model_id
            if hub_id_problem(repo) is not None:
                raise InvalidInputError(f"{model_id!r} is not a Hub repo id; to write its token into a folder, pass "
                                        "that folder yourself: write_token(model_id, repo=FOLDER) (CLI: --repo).")
        if local and create_pr:
            raise InvalidInputError(f"{repo} is a local folder, which has no pull requests; drop create_pr to write "
                                    "into it, or pass a Hub repo id.")

        def files() -> dict[str, bytes]:
            card = with_token_section(hub.read_card_text(repo, token=token, local=local), selector=self.config.name,
                                      selector_revision=self.revision, dim=self.config.fitness.token_dim,
                                      sha256=self.zoo[i].token_sha256)
            return {TOKEN_FILENAME: self.token_file(model_id), "README.md": card.encode("utf-8")}

        message = f"Add Model Spider token for {self.config.name}"
        if not local:
            return hub.write_repo_files(repo, files(), create_pr=create_pr, token=token, commit_message=message,
                                        local=False)
        with folder_lock(repo):  # read-modify-write of the card: concurrent writers must not lose each other's edits
            return hub.write_repo_files(repo, files(), local=True)

    def probe_tasks(
        self,
        model_id: str,
        datasets: list[Any],
        *,
        estimators: tuple[str, ...] = ("logme", "nleep", "hscore"),
        revision: str | None = None,
        verbose: bool = True,
    ) -> list[TrainingTask]:
        """Probe tasks for [`add_model`]: each dataset's task token and the aggregated estimator ranking of the zoo
        plus ``model_id`` (last). Costs one forward pass of every zoo model per dataset, cached on disk.
        """
        from .scoring import approximate_performance

        tasks = []
        revisions = {e.model_id: e.revision for e in self.zoo} | {model_id: revision}
        for i, dataset in enumerate(datasets):  # a handful of probe datasets
            sample = self._sample(dataset)
            token = self._sample_token(sample, verbose=verbose)
            perf = approximate_performance([*self.model_ids, model_id], sample, estimators=estimators,
                                           revision=revisions, verbose=verbose)
            tasks.append(TrainingTask(f"probe-{i}", token.prototypes, torch.as_tensor(perf)))
        return tasks

    def cold_start_token(
        self,
        model_id: str,
        probe_dataset: Any,
        *,
        revision: str | None = None,
        neighbours: int = 3,
        verbose: bool = True,
    ) -> torch.Tensor:
        """A token for ``model_id`` from how it represents a fixed probe set, without labels or optimisation: the
        CKA-weighted mean of its nearest zoo models' tokens (see [`cold_start.cold_start_token`]).

        Costs one forward pass of the new model over the probe sample, plus one per zoo model the first time (cached
        on disk). The probe dataset's labels, if any, only balance the sample; their values are never read.
        """
        from .cold_start import cold_start_token
        from .features import extract_features

        sample = self._sample(probe_dataset)
        zoo_features = [torch.as_tensor(extract_features(e.model_id, sample, revision=e.revision,
                                                         verbose=verbose).features) for e in self.zoo]
        new = torch.as_tensor(extract_features(model_id, sample, revision=revision, verbose=verbose).features)
        return cold_start_token(new, zoo_features, self.model_tokens, neighbours=neighbours)

    def add_model(
        self,
        model_id: str,
        *,
        probe_tasks: list[TrainingTask] | None = None,
        token: torch.Tensor | None = None,
        revision: str | None = None,
        save_directory: str | Path | None = None,
        steps: int = 300,
        seed: int = 0,
    ) -> hub.ZooEntry:
        """Add a model to the zoo without retraining: learn its token with the fitness network frozen (from
        ``probe_tasks``), or take a ready one (``token``, e.g. from [`cold_start_token`]). Give exactly one.

        Args:
            model_id: The new model (Hub id or folder).
            probe_tasks: Tasks whose ``performance`` ranks the current zoo *and* the new model (``M + 1`` entries,
                the new model last): measured accuracies, or aggregated estimator scores from [`probe_tasks`].
            token: A ``(token_dim,)`` token computed elsewhere.
            revision: Commit sha of the new model, recorded in ``zoo.json``.
            save_directory: A saved selector folder to update in place: the token is written first, then
                ``zoo.json`` is replaced atomically, so the folder is valid at every instant. Runs under the folder's
                lock and appends to its current ``zoo.json`` (models other processes added meanwhile are kept, and
                this selector's zoo is brought up to date with them).
            steps: Optimisation steps (full batch over the probe tasks).
            seed: Seed of the token's initialisation.

        Returns:
            The new [`ZooEntry`].
        """
        if model_id in self.model_ids:
            raise ZooError(f"{model_id!r} is already in the zoo; nothing to add.")
        if (probe_tasks is None) == (token is None):
            raise InvalidInputError("add_model needs exactly one of probe_tasks= (learn the token) or token= (e.g. "
                                    "selector.cold_start_token(model_id, probe_dataset)).")
        if save_directory is not None:  # before learning the token: a read-only folder must not waste that work
            check_selector_writable(save_directory)
        if save_directory is not None and getattr(self, "task_inputs", None) is not None:
            # model.safetensors holds one prior per model: updating zoo.json alone would leave the folder unloadable
            raise InvalidInputError("This selector stores a per-model prior (task_inputs), so add_model cannot update "
                                    "its folder in place; call add_model without save_directory, then "
                                    "save_pretrained(folder).")
        if token is None:
            token = fit_model_token(self.fitness, self.model_tokens, probe_tasks, steps=steps, seed=seed)
        elif token.shape != (self.config.fitness.token_dim,) or not torch.isfinite(token).all():
            raise InvalidInputError(f"token must be a finite ({self.config.fitness.token_dim},) tensor, got shape "
                                    f"{tuple(token.shape)}.")
        token = token.detach().float()
        entry = hub.ZooEntry(model_id=model_id, revision=revision, task_type=f"{self.config.modality}-classification",
                             token_sha256=token_sha256(token), mirror=hub.mirror_name(model_id))
        if save_directory is None:
            self.zoo.append(entry)
            self.model_tokens = torch.cat([self.model_tokens, token.unsqueeze(0)])
            if getattr(self, "task_inputs", None) is not None:
                self.task_inputs.extend()  # an average prior and unknown metadata for the new model
            return entry
        folder = Path(save_directory)
        if not (folder / "zoo.json").is_file():
            raise ArtifactError(f"{folder} is not a saved selector (no zoo.json); call save_pretrained instead.")
        # Another process may be adding models to the same folder: under the folder's lock, re-read zoo.json and
        # append to what is there now (the last writer must not drop the others' models).
        with folder_lock(folder):
            zoo = hub.parse_zoo((folder / "zoo.json").read_text(encoding="utf-8"), local_models=True)  # the caller's
            if model_id in {e.model_id for e in zoo}:
                raise ZooError(f"{model_id!r} is already in the zoo of {folder}; nothing to add.")
            atomic_write_bytes(folder / entry.mirror, token_bytes(token, model_id=model_id, selector=self.config.name,
                                                                  selector_revision=self.revision))
            atomic_write_text(folder / "zoo.json", hub.dump_zoo([*zoo, entry], selector=self.config.name))
            self._sync_zoo(zoo, folder)
        self.zoo.append(entry)
        self.model_tokens = torch.cat([self.model_tokens, token.unsqueeze(0)])
        return entry  # (a selector with task_inputs was refused above: its folder cannot be updated in place)

    def _sync_zoo(self, zoo: list[hub.ZooEntry], folder: Path) -> None:
        """Make the in-memory zoo ``zoo`` (as just re-read from ``folder``): tokens already held are kept, those that
        other writers added are read from the folder's mirror, each checked against its sha256."""
        held = {(e.model_id, e.token_sha256): i for i, e in enumerate(self.zoo)}
        rows = torch.tensor([held.get((e.model_id, e.token_sha256), -1) for e in zoo], dtype=torch.long)
        tokens = torch.empty(len(zoo), self.config.fitness.token_dim)
        known = rows >= 0
        tokens[known] = self.model_tokens[rows[known]]
        if not known.all():
            new = [e for e, k in zip(zoo, known.tolist()) if not k]
            tokens[~known] = hub.load_zoo_tokens(new, folder, dim=self.config.fitness.token_dim, token_source="mirror")
        self.model_tokens = tokens
        self.zoo = list(zoo)

    def _index(self, model_id: str) -> int:
        try:
            return self.model_ids.index(model_id)
        except ValueError:
            raise ZooError(f"{model_id!r} is not in this selector's zoo ({len(self.zoo)} models).") from None


def check_selector_writable(folder: str | Path) -> None:
    """A saved selector folder that ``add_model`` can update: the folder and its ``tokens/`` are writable.

    Raises:
        InvalidInputError: either is read-only (the message says what to do).
    """
    ensure_writable(folder, what="the new model's token and zoo.json")
    if (Path(folder) / "tokens").is_dir():
        ensure_writable(Path(folder) / "tokens", what="the new model's token")
