"""Files that several processes share: atomic writes whose temporary files name their owner, and
exclusive claims that the operating system releases when their holder dies.

A temporary file is ``.<name>.<pid>@<host>.tmp`` beside its target, so that a process cleaning up after
a kill removes only the temporary files of processes that are gone (:func:`owner_is_gone`), never one
that another live process (another sweep, a worker on another machine of a shared filesystem) is
writing. A claim (:func:`claim`) is an ``flock`` on a lock file; the lock goes with its holder, SIGKILL
included, so no claim is ever stale.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no claims (concurrent sweeps into one folder may repeat a run)
    fcntl = None  # type: ignore[assignment]

HOST = socket.gethostname()
#: A temporary file whose owner cannot be checked (another host) is removed only after this long.
FOREIGN_TMP_SECONDS = 24 * 3600
_OWNER = re.compile(r"\.(?P<pid>\d+)(@(?P<host>[^/]+))?\.tmp$")


def temporary_sibling(path: Path) -> Path:
    """Where to write ``path`` before renaming it into place: named after this process and host."""
    return path.with_name(f".{path.name}.{os.getpid()}@{HOST}.tmp")


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into a temporary sibling, flushed to disk, then renamed onto ``path``: a reader finds
    the previous file or the whole new one, even after SIGKILL. A failed write (disk full) leaves no
    partial file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:  # "[Errno 28] No space left on device", naming no file
            raise OSError(exc.errno, f"{exc.strerror or exc} (writing {path})", str(path)) from exc
        raise
    except RuntimeError as exc:
        if "unexpected pos" in str(exc):  # torch.save's report of a write cut short: a full disk or quota
            raise OSError(errno.ENOSPC, f"could not write {path}: is the disk full? (torch: {exc})", str(path)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def owner_is_gone(tmp: Path) -> bool:
    """Whether the process that wrote the temporary file ``tmp`` is provably dead: it ran on this host
    and its pid is gone (a file without a host in its name is this host's, as before 0.2.2). One from
    another host counts as gone only after :data:`FOREIGN_TMP_SECONDS` without a change."""
    match = _OWNER.search(tmp.name)
    if match is None:
        return False
    host = match.group("host") or HOST
    if host == HOST:
        return not _alive(int(match.group("pid")))
    try:
        return time.time() - tmp.stat().st_mtime > FOREIGN_TMP_SECONDS
    except FileNotFoundError:
        return False


def remove_orphans(folder: Path, pattern: str = ".*.tmp") -> list[Path]:
    """Remove the temporary files in ``folder`` whose owner is gone (:func:`owner_is_gone`); the removed."""
    removed = []
    for tmp in folder.glob(pattern) if folder.exists() else ():
        if owner_is_gone(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def claim(path: Path, wait: bool = False) -> Iterator[bool]:
    """Hold the exclusive claim ``path`` (a lock file) while the block runs; yields whether it is held.

    Without ``wait`` another holder makes it yield False at once; with ``wait`` it waits for its turn.
    The lock file is removed on release (while still locked, and a claimer checks that the file it
    locked is still the one at ``path``, so two processes never both hold it). Without ``fcntl``
    (Windows) every claim is granted.
    """
    if fcntl is None:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a")  # noqa: SIM115 (held open across the yield, closed on release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            yield False
            return
        try:
            current = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        handle.close()  # the holder before us removed this file on release: claim the one there now
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
