"""Writing files and folders so that a reader (or a crash) never sees half of them, and concurrent writers lose
nothing.

* [`atomic_write_bytes`]: temp file in the same folder, fsync, ``rename`` over the target. A file that existed keeps
  its permission bits; a new one gets the usual ``0666 & ~umask`` (``mkstemp`` alone would leave ``0600``).
* [`folder_lock`]: an inter-process lock (``filelock``, what huggingface_hub uses) for a read-modify-write of the
  files of one folder (``zoo.json`` and the token mirrors, a model card); the lock file lives under ``HF_HOME``.
* [`replace_folder`]: build a folder's new content aside and swap it in with one atomic ``rename``, so that a folder
  being re-saved is loadable, as the old version or the new one, at every instant.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

def _umask() -> int:
    """The process umask, read from /proc (thread-safe) where available; setting and restoring it is the fallback."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename: readers never see half a file.

    ``rename(2)`` over an existing file is atomic on POSIX: a reader opens either the old inode or the new one. The
    data is fsynced before the rename and the folder after it, so a power cut leaves one of the two versions too.
    An existing file's permission bits are kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()  # what open() would give a new file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """[`atomic_write_bytes`] of ``text`` in UTF-8 (line endings exactly as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: in hf-spider's lock folder under ``HF_HOME`` (as huggingface_hub keeps its cache
    locks), named by the folder's resolved path, so the user's folder gains no file and a folder swapped by
    [`replace_folder`] keeps the same lock."""
    import hashlib

    from huggingface_hub import constants

    key = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:32]
    return Path(constants.HF_HOME) / "hf_spider" / "locks" / f"{key}.lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, timeout: float = 600.0) -> Iterator[None]:
    """Hold the inter-process lock of ``folder`` ([`lock_path`]) for a read-modify-write of its files.

    Every read-modify-write of a folder's files by hf-spider runs under this lock and re-reads what it modifies
    once the lock is held, so two processes adding models to one selector both keep their models.

    Raises:
        filelock.Timeout: the lock was not released within ``timeout`` seconds.
    """
    from filelock import FileLock

    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=timeout):
        yield


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's ``renameat2(RENAME_EXCHANGE)``; ``False`` where that is unsupported
    (another OS, an old glibc or kernel, a file system without it)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextlib.contextmanager
def replace_folder(target: str | Path, *, owned: Iterable[str]) -> Iterator[Path]:
    """Yield an empty sibling folder to write ``target``'s new content into; on success swap it in atomically.

    What is atomic on POSIX is ``rename(2)`` of one path: so the new content is built completely (each file fsynced)
    in a sibling folder on the same file system, and one rename makes it visible. A folder cannot be renamed over a
    non-empty one, so an existing ``target`` is swapped with ``renameat2(RENAME_EXCHANGE)`` (Linux), which replaces
    it in one step; the old content, now at the sibling path, is deleted afterwards. A ``kill -9`` at any point leaves
    ``target`` as the complete old folder or the complete new one (plus, at worst, a hidden ``.<name>.hf-spider-*``
    sibling to delete). Where the exchange is unsupported, ``target`` is renamed aside and the new folder renamed into
    place: two renames, with a window of microseconds in which ``target`` does not exist (the old version is then in
    ``.<name>.hf-spider-old-*``).

    A process whose working directory is inside ``target`` is moved to the new folder; another process's working
    directory there ends up in the deleted old folder (as after any ``rm -r`` and re-create).

    Files in ``target`` that are not among ``owned`` (top-level names the writer produces, e.g. ``config.json``,
    ``tokens``) — a ``.git`` folder, the user's notes — are moved into the new folder before the swap, so they stay.

    Args:
        target: The folder to (re)write. A symlink to a folder is followed: the folder it points to is replaced.
        owned: Top-level names whose old versions are dropped (the writer writes them anew or not at all).
    """
    target = Path(os.path.realpath(target))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.hf-spider-*"):
        logger.warning("%s is left over from an interrupted save of %s; delete it once you have checked it.",
                       stale, target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.hf-spider-new-"))
    try:  # mkdtemp makes 0700: give the new folder the old one's mode (or a new folder's usual 0777 & ~umask)
        os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o777 & ~_umask())
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(staging)
    if not target.exists():
        os.rename(staging, target)  # nothing to replace: one plain rename
        _fsync_dir(target.parent)
        return
    owned = set(owned)
    with folder_lock(target):
        moved = []
        try:
            for item in target.iterdir():  # keep what the writer does not own (.git, the user's files)
                if item.name not in owned and not (staging / item.name).exists():
                    os.rename(item, staging / item.name)
                    moved.append(item.name)
            try:
                cwd = os.getcwd()
            except OSError:
                cwd = None
            if _exchange(staging, target):
                old = staging
            else:
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.hf-spider-old-"))
                os.rename(target, old / "folder")
                os.rename(staging, target)
        except BaseException:
            for name in moved:  # put the user's files back before dropping the unfinished copy
                os.rename(staging / name, target / name)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
    if cwd is not None and (cwd == str(target) or cwd.startswith(str(target) + os.sep)):
        with contextlib.suppress(OSError):  # this process worked inside the old folder: follow it to the new one
            os.chdir(cwd)
    shutil.rmtree(old, ignore_errors=True)
