"""The synchronous SQLite outbox: one connection, used from one thread at a time.

:class:`Outbox` is where acceptance happens: :meth:`Outbox.accept` returns only once a batch is
committed, in one transaction with the bound that applies to it. The design (WAL, group commit,
seqs that never repeat, the bound's policies, the figures kept by triggers, errors) is described
in gateway/delivery/outbox.py, the package's entry point; the asyncio side is
gateway/delivery/outbox_async.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import structlog

from gateway.delivery import outbox_files, outbox_schema
from gateway.delivery.message import Message, Stored
from gateway.delivery.outbox_errors import is_storage_failure, storage_error
from gateway.delivery.outbox_schema import ROW_COLUMNS, Synchronous
from gateway.delivery.outbox_values import (
    Accepted,
    Bound,
    OutboxStats,
    WhenFull,
    check_message,
    check_options,
    check_seq,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from types import TracebackType

_log = structlog.get_logger("gateway.delivery.outbox")

# --------------------------------------------------------------------------- tuning

MAX_EVENTS: Final = 1_000_000
"""About 400 MB of ~400-byte events: a day-long outage of a busy site on a 16 GB SD card."""

MAX_PARKED: Final = 10_000
"""Dead letters kept for inspection; a broker refusing everything must not fill the disk."""

REASON_MAX_CHARS: Final = 200
"""A parked row's reason is cut to this: it is a reason code and text, not a document."""

EVICT_CHUNK: Final = 512
"""Rows read at a time while choosing which oldest rows a full outbox evicts."""


# --------------------------------------------------------------------------- the outbox


class Outbox:
    """A durable, bounded queue of messages in one SQLite file (WAL mode).

    Open it with :meth:`open`; use it from one thread at a time (the connection refuses other
    threads). Every method that writes runs one transaction and either commits it or rolls it
    back and raises :class:`OutboxError`. ``seq`` orders acceptance and never repeats.

    Only one process may have an outbox open (an advisory lock on ``<file>.lock``): two
    publishers draining one outbox would send every event twice and skew the figures.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        lock_fd: int,
        *,
        path: Path,
        bound: Bound,
        when_full: WhenFull,
        clock: Callable[[], float],
        max_parked: int,
    ) -> None:
        """Internal: use :meth:`open`."""
        self._connection: sqlite3.Connection | None = connection
        self._lock_fd = lock_fd
        self._path = path
        self._bound = bound
        self._when_full = when_full
        self._clock = clock
        self._max_parked = max_parked
        self._commits = 0
        self._stats = self._read_stats(connection)
        _log.info("outbox_opened", path=str(path), depth=self._stats.depth)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        max_events: int = MAX_EVENTS,
        max_bytes: int | None = None,
        when_full: WhenFull = "drop-oldest",
        synchronous: Synchronous = "full",
        clock: Callable[[], float] = time.time,
        max_parked: int = MAX_PARKED,
    ) -> Outbox:
        """Open (or create) the outbox at ``path``.

        Creates the parent directory (mode 0700) if missing and the file with mode 0600; an
        existing file (and its WAL) readable by others is narrowed to 0600. A file whose owner
        may not write it is refused (``READ_ONLY``), as is a newer schema or another file
        (``SCHEMA``), a damaged file (``CORRUPT``) and a file another process holds
        (``IN_USE``). Lowering ``max_events`` below the current depth keeps the rows; the next
        :meth:`accept` applies the bound.
        """
        path = Path(path)
        check_options(max_events, max_bytes, when_full, synchronous, max_parked)
        try:
            outbox_files.prepare_files(path)
            lock_fd = outbox_files.lock(path)
        except OSError as exc:
            raise storage_error(exc, path) from exc
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(path, isolation_level=None)
            outbox_schema.configure(connection, path, synchronous)
            outbox_schema.ensure_schema(connection, path)
            return cls(
                connection,
                lock_fd,
                path=path,
                bound=Bound(max_events, max_bytes),
                when_full=when_full,
                clock=clock,
                max_parked=max_parked,
            )
        except BaseException as exc:
            if connection is not None:
                connection.close()
            os.close(lock_fd)
            if isinstance(exc, sqlite3.Error) and is_storage_failure(exc):
                raise storage_error(exc, path) from exc
            raise

    # ----------------------------------------------------------------------- writing

    def accept(self, messages: Sequence[Message]) -> Accepted:
        """Store a batch in one transaction and return once it is committed.

        When this returns, the stored events survive a SIGKILL (and, with
        ``synchronous="full"``, a power loss). The bound is applied in the same transaction:
        ``drop-oldest`` keeps the newest rows that fit (older rows first, then the oldest
        events of the batch); ``drop-newest`` keeps every row and stores the longest prefix of
        the batch that fits. An event whose payload alone exceeds ``max_bytes`` is never
        stored. Every event dropped is counted in the persisted ``dropped`` figure.
        """
        for message in messages:
            check_message(message)
        if not messages:
            return Accepted(())
        now = self._clock()
        with self._transaction() as connection:
            depth, size = connection.execute("SELECT depth, payload_bytes FROM state").fetchone()
            fitting = [m for m in messages if self._bound.fits_alone(m)]
            if self._when_full == "drop-newest":
                evicted = 0
                stored = fitting[: self._prefix_that_fits(depth, size, fitting)]
            else:
                evicted, first = self._evict_oldest(connection, depth, size, fitting)
                stored = fitting[first:]
            seqs = tuple(_insert(connection, message, now) for message in stored)
            dropped = evicted + len(messages) - len(stored)
            if dropped:
                connection.execute("UPDATE state SET dropped_total = dropped_total + ?", (dropped,))
        return Accepted(seqs, dropped)

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete delivered rows in one transaction; unknown seqs are ignored. Returns the count."""
        keys = [(check_seq(seq),) for seq in seqs]
        if not keys:
            return 0
        with self._transaction() as connection:
            deleted = connection.executemany("DELETE FROM outbox WHERE seq = ?", keys).rowcount
        return max(deleted, 0)

    def retry_later(self, seq: int) -> None:
        """Count one more failed delivery attempt of a row (unknown seqs are ignored)."""
        check_seq(seq)
        with self._transaction() as connection:
            connection.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def park(self, seq: int, reason: str) -> None:
        """Move a row the broker refused for good to the dead-letter table, with the reason.

        An unknown seq (already acked, or evicted by the bound) is ignored. The dead-letter
        table keeps the newest ``max_parked`` rows; the ``parked`` figure counts them all.
        """
        check_seq(seq)
        with self._transaction() as connection:
            moved = connection.execute(
                f"INSERT INTO parked SELECT {ROW_COLUMNS}, ?, ? FROM outbox WHERE seq = ?",  # noqa: S608 - constant column list
                (reason[:REASON_MAX_CHARS], self._clock(), seq),
            ).rowcount
            if moved <= 0:
                return
            connection.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            connection.execute("UPDATE state SET parked_total = parked_total + 1")
            connection.execute(
                "DELETE FROM parked WHERE seq <= "
                "(SELECT seq FROM parked ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (self._max_parked,),
            )

    # ----------------------------------------------------------------------- reading

    def pending(self, *, after: int = 0, limit: int) -> list[Stored]:
        """Up to ``limit`` rows with ``seq > after``, oldest first."""
        if limit < 1:
            msg = f"limit must be at least 1, not {limit}"
            raise ValueError(msg)
        connection = self._live()
        try:
            rows = connection.execute(
                f"SELECT {ROW_COLUMNS} FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 - constant column list
                (after, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from exc
        return [_stored(row) for row in rows]

    def parked(self, *, limit: int) -> list[tuple[Stored, str, float]]:
        """The newest ``limit`` dead letters, oldest first: the row, the reason, when parked."""
        if limit < 1:
            msg = f"limit must be at least 1, not {limit}"
            raise ValueError(msg)
        connection = self._live()
        try:
            rows = connection.execute(
                f"SELECT {ROW_COLUMNS}, reason, parked_at FROM "  # noqa: S608 - constant column list
                "(SELECT * FROM parked ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (limit,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from exc
        return [(_stored(row[:8]), row[8], row[9]) for row in rows]

    def stats(self) -> OutboxStats:
        """The figures as of the last commit: kept in memory, no SQLite access (any thread)."""
        return self._stats

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def reclaim(self) -> None:
        """Checkpoint the WAL into the database and truncate it: a full disk gets space back.

        SQLite checkpoints by itself only once the WAL holds 1000 pages (4 MB); on a disk with
        less free space than that, the WAL would fill it even with an empty outbox, and every
        commit would fail for good. Called after a commit failed for a full disk.
        """
        try:
            self._live().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from exc

    # ----------------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the connection (checkpointing the WAL) and release the lock. Idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.close()
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from exc
        finally:
            os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._connection is None else f"depth={self._stats.depth}"
        return f"Outbox({str(self._path)!r}, {state})"

    # ----------------------------------------------------------------------- internals

    def _live(self) -> sqlite3.Connection:
        if self._connection is None:
            msg = f"outbox {self._path} is closed"
            raise RuntimeError(msg)
        return self._connection

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commit and refresh the figures, or roll back and raise."""
        connection = self._live()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            stats = self._read_stats(connection)
            connection.execute("COMMIT")
        except BaseException as exc:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and is_storage_failure(exc):
                raise storage_error(exc, self._path) from exc
            raise
        self._commits += 1
        self._stats = dataclasses.replace(stats, commits=self._commits)

    def _read_stats(self, connection: sqlite3.Connection) -> OutboxStats:
        depth, size, dropped, parked, oldest = connection.execute(
            outbox_schema.READ_STATE
        ).fetchone()
        return OutboxStats(
            depth=depth,
            payload_bytes=size,
            oldest_accepted_at=oldest,
            dropped=dropped,
            parked=parked,
            max_events=self._bound.max_events,
            max_bytes=self._bound.max_bytes,
            commits=self._commits,
        )

    def _prefix_that_fits(self, depth: int, size: int, messages: Sequence[Message]) -> int:
        """How many of ``messages``, in order, fit after the rows already stored."""
        kept = 0
        for message in messages:
            depth, size = depth + 1, size + len(message.payload)
            if not self._bound.holds(depth, size):
                break
            kept += 1
        return kept

    def _evict_oldest(
        self, connection: sqlite3.Connection, depth: int, size: int, messages: Sequence[Message]
    ) -> tuple[int, int]:
        """Delete the oldest rows the batch pushes over the bound.

        Returns how many rows were deleted and how many of the batch's first events must be
        dropped too (when the batch alone exceeds the bound).
        """
        sizes = [len(message.payload) for message in messages]
        count, total = depth + len(sizes), size + sum(sizes)
        evicted, last_seq, after = 0, 0, 0
        while not self._bound.holds(count, total):
            rows = connection.execute(
                "SELECT seq, length(payload) FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, EVICT_CHUNK),
            ).fetchall()
            if not rows:
                break
            for seq, length in rows:
                if self._bound.holds(count, total):
                    break
                count, total, evicted, last_seq = count - 1, total - length, evicted + 1, seq
            after = rows[-1][0]
        if last_seq:
            connection.execute("DELETE FROM outbox WHERE seq <= ?", (last_seq,))
        first = 0
        while first < len(sizes) and not self._bound.holds(count, total):
            count, total, first = count - 1, total - sizes[first], first + 1
        return evicted, first


# --------------------------------------------------------------------------- helpers


def _insert(connection: sqlite3.Connection, message: Message, now: float) -> int:
    cursor = connection.execute(
        "INSERT INTO outbox (event_id, topic, payload, qos, retain, accepted_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (message.event_id, message.topic, message.payload, message.qos, message.retain, now),
    )
    seq = cursor.lastrowid
    if seq is None:  # pragma: no cover - an INSERT into a rowid table always sets it
        msg = "SQLite returned no rowid for an insert"
        raise sqlite3.InternalError(msg)
    return seq


def _stored(row: tuple[int, str, str, bytes, int, int, float, int]) -> Stored:
    seq, event_id, topic, payload, qos, retain, accepted_at, attempts = row
    message = Message(topic, bytes(payload), event_id, qos=qos, retain=bool(retain))
    return Stored(seq, message, accepted_at, attempts)
