"""Bounds on what hf-spider reads from, and checks on where it writes to, folders it does not control.

A selector folder or Hub snapshot may hold anything under a file's name: a symlink to ``/dev/zero`` (an endless
read), a FIFO (a read that blocks forever), a directory, or a file of gigabytes. Every artifact is therefore opened
without blocking, checked to be a regular file under a size cap on the open descriptor (no race between the check and
the read), and read no further than that cap. Links are followed on purpose: Hub cache snapshots are links to blobs.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import ArtifactError, InvalidInputError

MAX_CONFIG_BYTES = 4 << 20  # config.json: sizes and a training summary, a few KB in practice
MAX_ZOO_BYTES = 256 << 20  # zoo.json: ~300 bytes per model, so room for far more than 100,000 models
MAX_WEIGHTS_BYTES = (1 << 28) + (16 << 20)  # model.safetensors: config.py's cap of 64M float32 parameters + header
MAX_CARD_BYTES = 16 << 20  # README.md

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_bounded(path: str | Path, *, limit: int, what: str | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (links followed) of at most ``limit`` bytes.

    Raises:
        FileNotFoundError: ``path`` does not exist (callers say which artifact is missing).
        ArtifactError: ``path`` is a FIFO, device, socket or directory, or larger than ``limit``.
    """
    path = Path(path)
    what = what or path.name
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; regular files ignore the flag.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise ArtifactError(f"{what} ({path}) is {kind}, not a regular file; refusing to read it. Replace it with "
                                "the real file (re-download or re-save the selector).")
        if info.st_size > limit:
            raise ArtifactError(f"{what} ({path}) is {info.st_size:,} bytes, over hf-spider's limit of {limit:,}; it "
                                "is not a file hf-spider wrote. Re-download or re-save the selector.")
        chunks, left = [], limit + 1  # one byte past the cap tells a file that grew after fstat
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ArtifactError(f"{what} ({path}) grew past hf-spider's limit of {limit:,} bytes while being read.")
    return data


def read_bounded_text(path: str | Path, *, limit: int, what: str | None = None) -> str:
    """``read_bounded`` decoded as UTF-8 (``ArtifactError`` when it is not)."""
    try:
        return read_bounded(path, limit=limit, what=what).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ArtifactError(f"{what or Path(path).name} ({path}) is not UTF-8 text.") from err


def ensure_writable(folder: str | Path, *, what: str) -> None:
    """Check, before any long work, that files can be created in ``folder`` (or in its first existing parent).

    A real probe (an anonymous temporary file) rather than ``os.access``: access() answers for the real user id and
    knows nothing of immutable folders, ACLs or some network file systems.

    Raises:
        InvalidInputError: the folder (or the parent it would be created in) is not writable, or is not a folder.
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:  # save_pretrained creates missing folders
        probe = probe.parent
    if not probe.is_dir():
        raise InvalidInputError(f"Cannot write {what} into {folder}: {probe} is not a folder.")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise InvalidInputError(
            f"Cannot write {what} into {folder}: {probe} is not writable ({err.strerror or err}). Make it writable "
            "(chmod u+w, or a folder you own), or choose another destination. Nothing was computed or written."
        ) from err
