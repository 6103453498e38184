"""The outbox's SQLite layout (version 1) and connection settings.

Three tables: ``outbox`` (the rows waiting for a PUBACK), ``parked`` (dead letters the broker
refused for good, with the reason) and ``state`` (one row of figures). ``seq`` is an
``AUTOINCREMENT`` key, so SQLite never hands out a number twice, even after every row was deleted
and the process restarted. Triggers keep ``state.depth`` and ``state.payload_bytes`` equal to
the table's, inside every transaction that changes it, so opening a million-row outbox reads one
row instead of the whole table, and the figures stay right even if an operator deletes rows with
the ``sqlite3`` shell.

``PRAGMA user_version`` is the schema version: a file written by a newer gateway is refused, never
downgraded. ``PRAGMA application_id`` tells our file from any other SQLite database.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Final, Literal

import structlog

from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason

if TYPE_CHECKING:
    from pathlib import Path

Synchronous = Literal["full", "normal"]
"""SQLite's ``synchronous`` in WAL mode: fsync every commit, or only at checkpoints."""

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the layout below."""

APPLICATION_ID: Final = 0x42474F58
"""``PRAGMA application_id`` ("BGOX"): tells our outbox from any other SQLite file."""

BUSY_TIMEOUT_MS: Final = 5_000
"""How long a statement waits for a lock (an operator's ``sqlite3`` shell reading the file)."""

JOURNAL_SIZE_LIMIT: Final = 16 * 1024 * 1024
"""The WAL is truncated to this after a checkpoint, so one burst does not keep a huge file."""

ROW_COLUMNS: Final = "seq, event_id, topic, payload, qos, retain, accepted_at, attempts"
"""An outbox row as :func:`gateway.delivery.outbox.Outbox.pending` reads it."""

READ_STATE: Final = """
    SELECT depth, payload_bytes, dropped_total, parked_total,
           (SELECT accepted_at FROM outbox ORDER BY seq LIMIT 1)
    FROM state"""
"""The figures ``stats()`` serves, and when the row waiting longest was accepted."""

_SCHEMA: Final = (
    """CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL CHECK (typeof(payload) = 'blob'),
        qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain INTEGER NOT NULL CHECK (retain IN (0, 1)),
        accepted_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE parked (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        accepted_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        parked_at REAL NOT NULL
    )""",
    """CREATE TABLE state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        depth INTEGER NOT NULL,
        payload_bytes INTEGER NOT NULL,
        dropped_total INTEGER NOT NULL,
        parked_total INTEGER NOT NULL
    )""",
    "INSERT INTO state VALUES (1, 0, 0, 0, 0)",
    """CREATE TRIGGER outbox_insert_counted AFTER INSERT ON outbox BEGIN
        UPDATE state SET depth = depth + 1, payload_bytes = payload_bytes + length(NEW.payload);
    END""",
    """CREATE TRIGGER outbox_delete_counted AFTER DELETE ON outbox BEGIN
        UPDATE state SET depth = depth - 1, payload_bytes = payload_bytes - length(OLD.payload);
    END""",
    """CREATE TRIGGER outbox_update_counted AFTER UPDATE OF payload ON outbox BEGIN
        UPDATE state
        SET payload_bytes = payload_bytes - length(OLD.payload) + length(NEW.payload);
    END""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
"""Version 1, created in one transaction (both pragmas are part of it)."""

_TABLES: Final = frozenset({"outbox", "parked", "state"})

_log = structlog.get_logger("gateway.delivery.outbox")


def configure(connection: sqlite3.Connection, path: Path, synchronous: Synchronous) -> None:
    """WAL mode, the durability asked for, a busy timeout and a bounded WAL file."""
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        what = f"SQLite could not switch to WAL mode (still {mode}); no shared memory there?"
        raise OutboxError(OutboxErrorReason.IO, path, what)
    connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")


def ensure_schema(connection: sqlite3.Connection, path: Path) -> None:
    """Create the tables in a new file; refuse a newer schema or someone else's database."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    (application,) = connection.execute("PRAGMA application_id").fetchone()
    tables = {
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if application not in {0, APPLICATION_ID} or (version == 0 and tables):
        raise OutboxError(OutboxErrorReason.SCHEMA, path, "not a beacon-gateway outbox")
    if version > SCHEMA_VERSION:
        what = f"schema version {version} is newer than this gateway's {SCHEMA_VERSION}"
        raise OutboxError(OutboxErrorReason.SCHEMA, path, what)
    if version == SCHEMA_VERSION:
        if not tables >= _TABLES:
            what = f"tables missing: {', '.join(sorted(_TABLES - tables))}"
            raise OutboxError(OutboxErrorReason.SCHEMA, path, what)
        return
    if version != 0:
        raise OutboxError(OutboxErrorReason.SCHEMA, path, f"unknown schema version {version}")
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    _log.info("outbox_created", path=str(path), schema=SCHEMA_VERSION)
