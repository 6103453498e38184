"""The outbox's files on disk: a private directory, a private database file, a process lock.

Payloads name customers, so the outbox is readable by the gateway's user only: the directory is
created 0700, the database 0600, and an existing file (or its WAL, shared-memory and lock files)
readable by others is narrowed to 0600 with a warning. Modes are only ever narrowed: a file its
owner may not write stays that way and is refused, since someone made it read-only on purpose.

A second gateway process on the same outbox would publish every event twice and skew the
figures each keeps in memory, so opening takes an advisory ``flock`` on ``<file>.lock``. It is a
separate file because SQLite's own POSIX locks on the database would be dropped the moment any
other descriptor of that file is closed; the kernel releases the lock when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from typing import TYPE_CHECKING, Final

import structlog

from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason

if TYPE_CHECKING:
    from pathlib import Path

DIRECTORY_MODE: Final = 0o700
"""A directory created for the outbox: the gateway's user only."""

FILE_MODE: Final = 0o600
"""The outbox and its side files: read and write for the gateway's user, nothing for others."""

SIDE_SUFFIXES: Final = ("-wal", "-shm", ".lock")
"""Files next to the database that hold the same data (WAL, shared index) or guard it."""

_log = structlog.get_logger("gateway.delivery.outbox")


def prepare_files(path: Path) -> None:
    """Create the directory (0700) and the file (0600); narrow the modes of existing files.

    Raises ``OSError`` from the file system (the caller sorts it into an ``OutboxError``), or
    :class:`OutboxError` for a path that is not a regular file or a file its owner may not write.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=DIRECTORY_MODE, parents=True)
        path.parent.chmod(DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
        _fsync_directory(path.parent.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass
    else:
        _fsync_directory(path.parent)  # the new file's name must survive a power loss too
    for file in (path, *(side_file(path, suffix) for suffix in SIDE_SUFFIXES)):
        _narrow_mode(file, main=file == path)


def side_file(path: Path, suffix: str) -> Path:
    """``outbox.sqlite3`` + ``-wal`` -> ``outbox.sqlite3-wal``, next to it."""
    return path.with_name(path.name + suffix)


def lock(path: Path) -> int:
    """Take the advisory lock that keeps other processes off this outbox; return its fd.

    Release it with ``os.close`` once the database connection is closed.
    """
    lock_path = side_file(path, ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        what = f"{lock_path.name} is locked by another process"
        raise OutboxError(OutboxErrorReason.IN_USE, path, what) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _narrow_mode(file: Path, *, main: bool) -> None:
    try:
        info = file.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise OutboxError(OutboxErrorReason.IO, file, "not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if main and mode & FILE_MODE != FILE_MODE:
        what = f"its owner may not read and write it (mode {mode:04o})"
        raise OutboxError(OutboxErrorReason.READ_ONLY, file, what)
    if mode & ~FILE_MODE:
        file.chmod(mode & FILE_MODE)
        _log.warning("outbox_mode_narrowed", path=str(file), was=f"{mode:04o}")


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: some file systems refuse it
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
