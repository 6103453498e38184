"""The durable outbox: every event is committed to SQLite before it counts as accepted.

The gateway promises that an accepted event is never lost: not when the broker is down for a
day, not when the process is SIGKILLed, not (with ``synchronous="full"``) when the power goes.
So the pipeline hands events to :meth:`Outbox.accept`, which returns only once they are
committed; the publisher reads them back with :meth:`Outbox.pending`, oldest first, and deletes
a row with :meth:`Outbox.ack` only when the broker has PUBACKed it. A row the broker refuses for
good is moved to a dead-letter table with :meth:`Outbox.park`. Design notes are in
../shared/docs/platform-notes.md section 3.4.

This module is the entry point; the parts live next to it:

* ``outbox_sqlite``: :class:`Outbox`, synchronous, one SQLite connection (tests, tools);
* ``outbox_async``: :class:`AsyncOutbox`, what the daemon uses: a bounded queue, a group-commit
  writer task and one worker thread that owns the connection;
* ``outbox_values``, ``outbox_errors``, ``outbox_schema``, ``outbox_files``: the values, the
  one error (:class:`OutboxError` with an :class:`OutboxErrorReason`), the SQLite layout, and
  the files on disk (modes 0700/0600, a lock against a second process).

Why it looks like this:

* **WAL mode, one connection, one thread.** Readers never block the writer, and a commit is one
  append to the WAL. ``synchronous="full"`` fsyncs the WAL on every commit (survives power loss);
  ``"normal"`` fsyncs only at checkpoints (survives a process crash, may lose the last commits on
  power loss) and spares SD cards. :class:`AsyncOutbox` runs every call on one worker thread, so
  the event loop never waits for an fsync.
* **Group commit.** An fsync costs milliseconds on SD media; :meth:`Outbox.accept` takes a whole
  batch in one transaction, and :class:`AsyncOutbox`'s writer commits whatever gathered while
  the previous commit ran, so the cost is paid per batch, not per event.
* **Sequence numbers never repeat** (``AUTOINCREMENT``), even after deletes and restarts: the
  publisher's cursor and the logs can rely on them.
* **A bound with an explicit policy.** ``max_events`` rows (and optionally ``max_bytes`` of
  payload): ``drop-oldest`` evicts the oldest rows, ``drop-newest`` refuses the newest events of
  a batch. Either way the drop is counted in a persisted counter, in the same transaction.
* **Cheap figures.** Depth and payload bytes are kept by triggers in a one-row ``state`` table,
  so opening a million-row outbox reads one row, not the table; :meth:`Outbox.stats` returns an
  in-memory snapshot refreshed by every commit (metrics read it often).
* **All or nothing.** A failed write (disk full, I/O error) is rolled back and raises
  :class:`OutboxError`; nothing is half-written and the in-memory figures stay those of the last
  commit. Payloads never appear in errors, reprs or logs: they name customers.
"""

from __future__ import annotations

from gateway.delivery.outbox_async import (
    MAX_BATCH,
    QUEUE_SIZE,
    AsyncOutbox,
    OutboxHealth,
)
from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason
from gateway.delivery.outbox_schema import Synchronous
from gateway.delivery.outbox_sqlite import MAX_EVENTS, MAX_PARKED, Outbox
from gateway.delivery.outbox_values import Accepted, OutboxStats, WhenFull

__all__ = [
    "MAX_BATCH",
    "MAX_EVENTS",
    "MAX_PARKED",
    "QUEUE_SIZE",
    "Accepted",
    "AsyncOutbox",
    "Outbox",
    "OutboxError",
    "OutboxErrorReason",
    "OutboxHealth",
    "OutboxStats",
    "Synchronous",
    "WhenFull",
]
