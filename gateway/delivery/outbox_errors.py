"""The outbox's one error, :class:`OutboxError`, and how storage failures are sorted into it.

A gateway's operator needs two things from a storage failure: which file, and what to do. So
every :class:`OutboxError` carries a :class:`OutboxErrorReason` (for metrics, health and exit
codes) and a message that names the path and the remedy. SQLite's own text is kept as a detail
(it never contains row values); payloads are never part of an error, since they name customers.

``OutboxError`` derives from :class:`~gateway.errors.GatewayError` only, not from ``ValueError``:
nothing the caller passed is wrong, the storage is. Bad arguments (a negative limit, a QoS of 3)
are plain ``ValueError``/``TypeError``, raised before anything touches the database.
"""

from __future__ import annotations

import enum
import errno
import os
import sqlite3
from typing import TYPE_CHECKING, Final

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from pathlib import Path


class OutboxErrorReason(enum.StrEnum):
    """Why the outbox cannot store or read events."""

    DISK_FULL = "disk-full"
    READ_ONLY = "read-only"
    CORRUPT = "corrupt"
    SCHEMA = "schema"
    IN_USE = "in-use"
    IO = "io"


_HINTS: Final = {
    OutboxErrorReason.DISK_FULL: (
        "the file system is full; free space there or lower the outbox bound "
        "(max_events, max_mb); accepted events are kept, new ones wait in memory"
    ),
    OutboxErrorReason.READ_ONLY: (
        "the gateway's user needs read-write access to the file and its directory "
        "(systemd: StateDirectory=; check the file system is not mounted read-only)"
    ),
    OutboxErrorReason.CORRUPT: (
        "stop the gateway and move the file aside (keep it: `sqlite3 FILE .recover` may save "
        "its events); the gateway then starts with an empty outbox"
    ),
    OutboxErrorReason.SCHEMA: (
        "run the beacon-gateway version that wrote it, or move the file aside"
    ),
    OutboxErrorReason.IN_USE: (
        "another gateway process has this outbox open; stop it, or give each process its own"
    ),
    OutboxErrorReason.IO: "check the storage device (dmesg) and the file system",
}
"""What the operator should do, per reason: the second half of every message."""

_SQLITE_REASONS: Final = {
    sqlite3.SQLITE_FULL: OutboxErrorReason.DISK_FULL,
    sqlite3.SQLITE_READONLY: OutboxErrorReason.READ_ONLY,
    sqlite3.SQLITE_PERM: OutboxErrorReason.READ_ONLY,
    sqlite3.SQLITE_CORRUPT: OutboxErrorReason.CORRUPT,
    sqlite3.SQLITE_NOTADB: OutboxErrorReason.CORRUPT,
}
"""SQLite primary result codes (the low byte of the extended code) with a definite reason."""

_ERRNO_REASONS: Final = {
    errno.ENOSPC: OutboxErrorReason.DISK_FULL,
    errno.EDQUOT: OutboxErrorReason.DISK_FULL,
    errno.EROFS: OutboxErrorReason.READ_ONLY,
    errno.EACCES: OutboxErrorReason.READ_ONLY,
    errno.EPERM: OutboxErrorReason.READ_ONLY,
}
"""File-system errors (creating the directory, the file, the lock) with a definite reason."""

_CALLER_ERRORS: Final = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.NotSupportedError,
    sqlite3.DataError,
)
"""SQLite errors that mean our code or its caller is wrong: they propagate unchanged."""

_PRIMARY_CODE_MASK: Final = 0xFF
"""SQLite extended result codes keep the primary code in their low byte."""


class OutboxError(GatewayError):
    """The outbox cannot store or read events; ``reason`` says why, ``path`` names the file.

    The message reads ``outbox <path>: <what happened>; <what to do>``. It never holds a
    payload or any other row value.
    """

    def __init__(self, reason: OutboxErrorReason, path: Path, what: str) -> None:
        super().__init__(f"outbox {path}: {what}; {_HINTS[reason]}")
        self.reason = reason
        self.path = path


def is_storage_failure(exc: sqlite3.Error) -> bool:
    """Whether a SQLite error is the storage's fault (not a bug of ours: misuse, bad value)."""
    return not isinstance(exc, _CALLER_ERRORS)


def storage_error(exc: sqlite3.Error | OSError, path: Path) -> OutboxError:
    """The :class:`OutboxError` for a failure of SQLite or the file system on ``path``."""
    if isinstance(exc, OSError):
        reason = _ERRNO_REASONS.get(exc.errno or 0, OutboxErrorReason.IO)
        what = exc.strerror or type(exc).__name__
        if exc.filename is not None and str(exc.filename) != str(path):
            what = f"{what}: {exc.filename}"
        return OutboxError(reason, path, what)
    code = getattr(exc, "sqlite_errorcode", 0) or 0
    primary = code & _PRIMARY_CODE_MASK
    reason = _SQLITE_REASONS.get(primary, OutboxErrorReason.IO)
    if primary == sqlite3.SQLITE_CANTOPEN and not _accessible(path):
        reason = OutboxErrorReason.READ_ONLY
    if code == sqlite3.SQLITE_IOERR_CORRUPTFS:
        reason = OutboxErrorReason.CORRUPT
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return OutboxError(reason, path, f"{exc} ({name})")


def _accessible(path: Path) -> bool:
    """Whether this process may write the database file (or create it) and its directory."""
    directory_ok = os.access(path.parent, os.W_OK | os.X_OK)
    if not path.exists():
        return directory_ok
    return directory_ok and os.access(path, os.R_OK | os.W_OK)
