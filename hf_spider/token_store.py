"""Reading and checking many model tokens at once (a selector's zoo can hold 100,000 models).

Per token, only what is per token by definition stays in Python: one file read, one header match and one sha256.
Headers written by hf-spider (``tokens.token_bytes``) are recognised by one compiled pattern instead of a JSON and a
safetensors parse each; the values are gathered into one contiguous array and checked for NaN/inf in one call. A file
the fast check does not accept (another writer's header layout, a wrong hash, a malformed file) goes through the
strict ``tokens.parse_token``, which either accepts it or raises the precise error.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

import numpy as np
import torch

from .errors import ArtifactError, TokenIntegrityError, ZooError
from .tokens import MAX_TOKEN_BYTES, parse_token

# A JSON string without control characters, escapes spelled out (what json.dumps writes). Runs of plain characters
# are matched possessively, one class at a time ("unrolled"): no backtracking, 4x faster than an alternation per char.
_PLAIN = rb'[^"\\\x00-\x1f]*+'
_JSON_STR = rb'"' + _PLAIN + rb'(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})' + _PLAIN + rb')*+"'
_PAIR = _JSON_STR + rb":" + _JSON_STR
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _header_pattern(dim: int) -> re.Pattern[bytes]:
    """The exact header ``token_bytes`` writes for a ``dim`` token: string metadata, then one F32 tensor."""
    metadata = rb'(?:"__metadata__":\{(?:' + _PAIR + rb"(?:," + _PAIR + rb")*+)?\},)?"
    tensor = b'"token":{"data_offsets":[0,%d],"dtype":"F32","shape":[%d]}' % (4 * dim, dim)
    return re.compile(rb"\{" + metadata + re.escape(tensor) + rb"\} *+")


def verify_tokens(
    blobs: list[bytes | None], expected_sha256: list[str], dim: int, sources: list[str]
) -> tuple[torch.Tensor, list[TokenIntegrityError | None]]:
    """Check token files against zoo.json's sha256 and the token dim, all at once.

    Args:
        blobs: File bytes per model (``None``: no file; its row is left zero and reported as ``None`` too).
        expected_sha256: zoo.json's hash per model. sources: where each file came from, for error messages.

    Returns:
        ``values (M, dim)`` float32 and, per model, ``None`` when accepted (or absent) or the error that rejects it.
    """
    M, nbytes = len(blobs), 4 * dim
    pattern = _header_pattern(dim)
    values = bytearray(M * nbytes)
    view = memoryview(values)
    fast = np.zeros(M, dtype=bool)
    for i, data in enumerate(blobs):  # per file: a length check, one header match, one hash (inherently per token)
        if data is None or len(data) != 8 + int.from_bytes(data[:8], "little") + nbytes:
            continue
        end = len(data) - nbytes
        if not pattern.fullmatch(data, 8, end) or not (data[8:end].isascii() or _is_utf8(data[8:end])):
            continue
        view[i * nbytes : (i + 1) * nbytes] = data[end:]
        fast[i] = hashlib.sha256(view[i * nbytes : (i + 1) * nbytes]).hexdigest() == expected_sha256[i]
    array = np.frombuffer(values, dtype="<f4").reshape(M, dim)
    fast &= np.isfinite(array).all(axis=1)  # one vectorised NaN/inf check
    out = torch.from_numpy(array.astype(np.float32))
    errors: list[TokenIntegrityError | None] = [None] * M
    for i in np.flatnonzero(~fast):  # not hf-spider's exact layout, or rejected: the strict parser decides
        if blobs[i] is None:
            continue
        try:
            out[i] = parse_token(blobs[i], expected_sha256=expected_sha256[i], expected_dim=dim, source=sources[i])[0]
        except TokenIntegrityError as err:
            errors[i] = err
    return out, errors


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_mirror_files(folder: Path, mirrors: list[str], model_ids: list[str]) -> list[bytes | None]:
    """Bytes of a selector's mirror token files (``None`` where a file is missing).

    Each file must resolve inside the selector folder (or, for an HF cache snapshot, inside its repo folder whose
    files link to ``../../blobs``) and be a regular file. Paths are resolved without a ``realpath`` per file: a
    plain file directly under the (once resolved) ``tokens/`` folder is inside; a link is read once and its folder
    resolved once per distinct folder.

    Raises:
        ZooError: a mirror path or link leads outside the selector. ArtifactError: not a regular file.
    """
    root = folder.resolve()
    if folder.parent.name == "snapshots":
        root = folder.parent.parent.resolve()
    root_s = str(root)
    real_dirs: dict[str, str] = {}
    out = []
    for rel, model_id in zip(mirrors, model_ids):  # one open/read per file: the files are separate
        parent, _, name = rel.rpartition("/")
        base = real_dirs.get(parent)
        if base is None:  # once per folder (all mirrors live in tokens/)
            base = real_dirs[parent] = os.path.realpath(folder / parent)
            if not _is_under(base, root_s):
                raise _outside(rel, model_id)
        out.append(_read_inside(f"{base}/{name}", root_s, real_dirs, rel, model_id))
    return out


def _outside(rel: str, model_id: str) -> ZooError:
    return ZooError(f"{rel} of {model_id} links outside the selector folder; the selector may be tampered with. "
                    "Re-download it (force_download=True) or re-save it.")


def _read_inside(path: str, root: str, real_dirs: dict[str, str], rel: str, model_id: str) -> bytes | None:
    """Bytes of ``path`` (in a real folder inside ``root``), following links only to inside ``root``."""
    for attempt in range(3):
        try:
            fd = os.open(path, _OPEN_FLAGS)
            break
        except FileNotFoundError:
            return None  # missing, or a dangling link
        except OSError as err:
            if err.errno != errno.ELOOP:  # ELOOP: the file is a link (every file of an HF cache snapshot is)
                raise
            # first the cheap resolution (the link's folder, once per folder), then the full one for a chain
            path = _resolve_link(path, real_dirs) if attempt == 0 else os.path.realpath(path)
            if not _is_under(path, root):
                raise _outside(rel, model_id) from None
    else:
        raise _outside(rel, model_id)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{rel} of {model_id} is not a regular file; the selector may be tampered with. "
                                "Re-download it (force_download=True) or re-save it.")
        want = min(info.st_size, MAX_TOKEN_BYTES + 1)  # bounded: an oversized file is rejected, not read whole
        data = os.read(fd, want)
        while 0 < len(data) < want:  # a short read (rare for a regular file)
            more = os.read(fd, want - len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


def _resolve_link(path: str, real_dirs: dict[str, str]) -> str:
    """The real path of a link whose own folder is already real, resolving the target's folder once per folder."""
    target = os.path.join(os.path.dirname(path), os.readlink(path))
    parent, name = os.path.split(target)
    base = real_dirs.get(parent)
    if base is None:
        base = real_dirs[parent] = os.path.realpath(parent)
    return os.path.join(base, name)  # its last part may be a link again: the caller's next open tells


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
