"""The outbox seen from asyncio: a bounded queue, a group-commit writer and one worker thread.

The event loop must never wait for SQLite or an fsync (milliseconds on SD cards, seconds on a
sick one), yet every event must be committed before it counts as accepted. So
:class:`AsyncOutbox` runs every :class:`~gateway.delivery.outbox.Outbox` call on one dedicated
worker thread (the SQLite connection is opened there and refuses any other thread), and
:meth:`AsyncOutbox.put` only enqueues: the writer task :meth:`AsyncOutbox.run` takes whatever is
queued (up to ``max_batch``) and commits it with one :meth:`Outbox.accept`. While one commit is
in flight the next batch gathers, so the fsync cost is shared by every event that arrived
meanwhile (group commit) and throughput grows with the load.

The queue is bounded: when the disk is slow or failing, :meth:`AsyncOutbox.put` waits
(backpressure) instead of dropping or growing without limit. Memory holds at most
``queue_size + max_batch`` events.

When a commit fails (disk full, I/O error, file system gone read-only) the batch is neither lost
nor written twice: the transaction was rolled back, the batch is kept and retried with capped
exponential backoff, :attr:`AsyncOutbox.health` turns ``retrying`` and
:attr:`AsyncOutbox.last_error` holds the :class:`OutboxError` (logged as
``outbox_commit_failed``), and puts wait once the queue fills. The first commit that works clears
both and logs ``outbox_commit_recovered``. A corrupt database is fatal: retrying cannot heal it,
so :meth:`AsyncOutbox.run` raises (the daemon exits non-zero and the operator sees why) and
:attr:`AsyncOutbox.health` stays ``failed``.

Events put but not yet committed are the only ones a SIGKILL can cost: normally what arrived
during one commit; while commits fail, up to ``queue_size + max_batch``. On SIGTERM the daemon
calls :meth:`AsyncOutbox.flush` and then :meth:`AsyncOutbox.aclose`, which also commits whatever
is left.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import functools
import time
from typing import TYPE_CHECKING, Final, ParamSpec, Self, TypeVar

import structlog

from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason
from gateway.delivery.outbox_sqlite import MAX_EVENTS, MAX_PARKED, Outbox
from gateway.delivery.outbox_values import check_message

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path
    from types import TracebackType

    from gateway.delivery.message import Message, Stored
    from gateway.delivery.outbox_schema import Synchronous
    from gateway.delivery.outbox_values import Accepted, OutboxStats, WhenFull

_P = ParamSpec("_P")
_T = TypeVar("_T")

_log = structlog.get_logger("gateway.delivery.outbox")

# --------------------------------------------------------------------------- tuning

QUEUE_SIZE: Final = 10_000
"""Events waiting for a commit: seconds of a busy site while a commit is slow, ~5 MB at most."""

MAX_BATCH: Final = 2_000
"""Events per transaction: beyond this a bigger batch adds latency, not throughput."""

RETRY_BASE_S: Final = 0.5
"""First retry of a failed commit: a transient I/O error usually clears within a second."""

RETRY_CAP_S: Final = 30.0
"""Longest wait between retries: freed disk space is used within half a minute."""

DROP_LOG_INTERVAL_S: Final = 10.0
"""At most one ``outbox_full_dropped`` line this often: a full outbox drops on every commit."""

FATAL_REASONS: Final = frozenset({OutboxErrorReason.CORRUPT})
"""Failures no retry can heal: the writer stops and :meth:`AsyncOutbox.run` raises."""


class OutboxHealth(enum.StrEnum):
    """How the writer is doing (for ``/healthz``, metrics and the watchdog)."""

    OK = "ok"
    RETRYING = "retrying"
    """Commits fail and are retried with backoff; ``last_error`` says why."""
    FAILED = "failed"
    """A fatal error stopped the writer; ``last_error`` says why."""
    CLOSED = "closed"


class AsyncOutbox:
    """An :class:`Outbox` for asyncio: puts are queued and committed in batches off the loop.

    Create it with :meth:`open`; run :meth:`run` in the daemon's TaskGroup; close it with
    :meth:`aclose` (or ``async with``). :meth:`put` returns once the message is queued (it waits
    while the queue is full); the message is accepted (durable) once a commit covers it, which
    :meth:`flush` waits for. After each commit that stored something, :attr:`changed` is set: the
    publisher waits on it, clears it, then reads :meth:`pending` (clear before reading, so a
    commit in between is never missed).

    :meth:`pending`, :meth:`ack`, :meth:`retry_later` and :meth:`park` run on the worker thread,
    one transaction each (an fsync under ``synchronous="full"``): ack many seqs per call.
    :meth:`stats` reads the in-memory snapshot and never waits.
    """

    def __init__(
        self,
        outbox: Outbox,
        executor: concurrent.futures.ThreadPoolExecutor,
        *,
        queue_size: int,
        max_batch: int,
        retry_base_s: float,
        retry_cap_s: float,
    ) -> None:
        """Internal: use :meth:`open`."""
        self._outbox = outbox
        self._executor: concurrent.futures.ThreadPoolExecutor | None = executor
        self._max_batch = max_batch
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        self._held: list[Message] = []
        """The batch being committed (or retried): out of the queue, not yet accepted."""
        self._inflight: asyncio.Future[Accepted] | None = None
        """The accept of ``_held`` running on the worker, if its outcome is not known yet."""
        self._enqueued = 0
        self._finished = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._failures = 0
        self._fatal: OutboxError | None = None
        self._last_error: OutboxError | None = None
        self._settle_error: OutboxError | None = None
        """Why the last publisher-side write failed, while it is being retried."""
        self._dropped_unlogged = 0
        self._drop_logged_at: float | None = None
        self.changed = asyncio.Event()
        """Set after every commit that stored events; the publisher clears it before reading."""

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_events: int = MAX_EVENTS,
        max_bytes: int | None = None,
        when_full: WhenFull = "drop-oldest",
        synchronous: Synchronous = "full",
        clock: Callable[[], float] = time.time,
        max_parked: int = MAX_PARKED,
        queue_size: int = QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
    ) -> AsyncOutbox:
        """Open the outbox on a new worker thread (see :meth:`Outbox.open` for the options).

        ``queue_size`` bounds the events waiting for a commit, ``max_batch`` the events per
        commit; a failed commit is retried after ``retry_base_s * 2**n`` s, at most
        ``retry_cap_s``. Raises :class:`OutboxError` as :meth:`Outbox.open` does.
        """
        if queue_size < 1 or max_batch < 1:
            msg = f"queue_size and max_batch must be at least 1, not {queue_size}, {max_batch}"
            raise ValueError(msg)
        if not 0 < retry_base_s <= retry_cap_s:
            msg = f"need 0 < retry_base_s <= retry_cap_s, not {retry_base_s}, {retry_cap_s}"
            raise ValueError(msg)
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        opening = executor.submit(
            functools.partial(
                Outbox.open,
                path,
                max_events=max_events,
                max_bytes=max_bytes,
                when_full=when_full,
                synchronous=synchronous,
                clock=clock,
                max_parked=max_parked,
            )
        )
        try:
            outbox = await asyncio.shield(asyncio.wrap_future(opening))
        except BaseException:
            # Cancelled mid-open, the open still finishes on the worker: close what it opens
            # there (one worker, first in first out), without waiting for it here.
            executor.submit(_close_if_opened, opening)
            executor.shutdown(wait=opening.done())
            raise
        return cls(
            outbox,
            executor,
            queue_size=queue_size,
            max_batch=max_batch,
            retry_base_s=retry_base_s,
            retry_cap_s=retry_cap_s,
        )

    # ----------------------------------------------------------------------- accepting

    async def put(self, message: Message) -> None:
        """Queue a message for the next commit; wait while the queue is full (backpressure).

        Raises ``TypeError``/``ValueError`` at once for a message the outbox could never store,
        the fatal :class:`OutboxError` once the writer has failed, and ``RuntimeError`` once
        :meth:`aclose` has begun.
        """
        check_message(message)
        self._check_accepting()
        await self._queue.put(message)
        self._enqueued += 1

    async def flush(self) -> None:
        """Wait until every message put so far is committed (or dropped by the bound).

        Needs :meth:`run` running (or :meth:`aclose` to finish the work). Raises the fatal
        :class:`OutboxError` if the writer fails, ``RuntimeError`` if the outbox closes first.
        """
        target = self._enqueued
        if self._finished >= target:
            return
        if self._fatal is not None:
            raise self._fatal
        if self._executor is None:
            msg = f"outbox {self._outbox.path} is closed"
            raise RuntimeError(msg)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    async def run(self) -> None:
        """The writer: commit queued messages in batches until cancelled (or a fatal error).

        Run it once, as a task of the daemon's TaskGroup. Failed commits are retried (see the
        module docstring); only a fatal :class:`OutboxError` (a corrupt database) ends it.
        Cancelling it loses nothing: :meth:`aclose` commits what is left.
        """
        if self._writer is not None:
            msg = "the outbox writer is already running"
            raise RuntimeError(msg)
        self._check_accepting()
        self._writer = asyncio.current_task()
        try:
            await self._settle_inflight()
            while True:
                if not self._held:
                    self._held = await self._next_batch()
                await self._commit_held()
        finally:
            self._writer = None

    # ----------------------------------------------------------------------- the publisher's side

    async def pending(self, *, after: int = 0, limit: int) -> list[Stored]:
        """Up to ``limit`` committed rows with ``seq > after``, oldest first."""
        return await self._call(functools.partial(self._outbox.pending, after=after, limit=limit))

    async def ack(self, seqs: Iterable[int]) -> int:
        """Delete delivered rows (one transaction); unknown seqs are ignored. Returns the count.

        Like the publisher-side writes below, it waits out a full or read-only disk (retrying
        with backoff, ``health`` ``retrying``) rather than failing the publisher: a row not yet
        deleted only costs a duplicate after a restart. Only a fatal failure raises.
        """
        return await self._settling(self._outbox.ack, list(seqs))

    async def retry_later(self, seq: int) -> None:
        """Count one more failed delivery attempt of a row."""
        await self._settling(self._outbox.retry_later, seq)

    async def park(self, seq: int, reason: str) -> None:
        """Move a row the broker refused for good to the dead-letter table."""
        await self._settling(self._outbox.park, seq, reason)

    def stats(self) -> OutboxStats:
        """The outbox's figures as of its last commit (an in-memory snapshot; never waits)."""
        return self._outbox.stats()

    @property
    def queued(self) -> int:
        """Messages put but not yet committed (queued, or in the batch being committed)."""
        return self._queue.qsize() + len(self._held)

    @property
    def health(self) -> OutboxHealth:
        """``ok``, ``retrying`` (commits fail, see :attr:`last_error`), ``failed`` or ``closed``."""
        if self._fatal is not None:
            return OutboxHealth.FAILED
        if self._executor is None:
            return OutboxHealth.CLOSED
        failing = self._failures or self._settle_error is not None
        return OutboxHealth.RETRYING if failing else OutboxHealth.OK

    @property
    def last_error(self) -> OutboxError | None:
        """Why commits fail (while ``retrying`` or ``failed``); ``None`` when healthy."""
        return self._fatal or self._last_error or self._settle_error

    @property
    def failures(self) -> int:
        """Consecutive failed commits of the current batch (0 when healthy)."""
        return self._failures

    # ----------------------------------------------------------------------- closing

    async def aclose(self) -> None:
        """Stop the writer, commit everything still queued (one attempt), close the database.

        Puts are refused from the start. If the final commit fails, the events it held are
        logged as lost (``outbox_close_lost_events``, a count) and its error is raised after
        the database and the worker thread are closed. Idempotent.
        """
        if self._closing:
            return
        self._closing = True
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            await asyncio.wait([writer])
        error: OutboxError | None = None
        try:
            await self._commit_remaining()
        except OutboxError as exc:
            error = exc
            _log.error(
                "outbox_close_lost_events",
                lost=self.queued,
                reason=str(exc.reason),
                error=str(exc),
            )
        finally:
            await self._shut_down()
        if error is not None:
            raise error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncOutbox({self._outbox!r}, queued={self.queued}, health={self.health})"

    # ----------------------------------------------------------------------- internals

    def _check_accepting(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closing:
            msg = f"outbox {self._outbox.path} is closing"
            raise RuntimeError(msg)

    def _submit(
        self, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        if self._executor is None:
            msg = f"outbox {self._outbox.path} is closed"
            raise RuntimeError(msg)
        return asyncio.wrap_future(self._executor.submit(function, *args, **kwargs))

    async def _call(self, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await self._submit(function, *args, **kwargs)

    async def _next_batch(self) -> list[Message]:
        """Wait for one message, then take whatever else is queued, up to ``max_batch``."""
        batch = [await self._queue.get()]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    async def _commit_held(self) -> None:
        """Commit ``_held``, retrying with backoff until it works or fails fatally."""
        while True:
            self._inflight = self._submit(self._outbox.accept, list(self._held))
            # Shielded: if the writer is cancelled, the commit still finishes on the worker and
            # its outcome stays in _inflight, so the batch is neither lost nor written twice.
            try:
                accepted = await asyncio.shield(self._inflight)
            except OutboxError as exc:
                self._inflight = None
                if exc.reason in FATAL_REASONS:
                    self._fail(exc)
                    raise
                delay = self._note_failure(exc)
                await self._reclaim(exc)
                await asyncio.sleep(delay)
                continue
            self._inflight = None
            self._committed(accepted)
            return

    async def _settle_inflight(self) -> None:
        """Learn the outcome of a commit left running by a cancelled writer."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        try:
            accepted = await asyncio.shield(inflight)
        except OutboxError:
            return  # rolled back: _held is committed again
        except asyncio.CancelledError:
            self._inflight = inflight
            raise
        self._committed(accepted)

    async def _commit_remaining(self) -> None:
        """The last commits of :meth:`aclose`: the in-flight batch, then the queue, once each."""
        await self._settle_inflight()
        while True:
            self._held.extend(self._drain())
            if not self._held:
                return
            self._committed(await self._call(self._outbox.accept, list(self._held)))

    def _drain(self) -> list[Message]:
        messages: list[Message] = []
        while not self._queue.empty():
            messages.append(self._queue.get_nowait())
        return messages

    def _committed(self, accepted: Accepted) -> None:
        """Book a successful commit of ``_held``: wake flushers and the publisher."""
        self._finished += len(self._held)
        self._held = []
        if self._failures:
            _log.info("outbox_commit_recovered", failures=self._failures)
            self._failures = 0
            self._last_error = None
        while self._waiters and (
            self._waiters[0][1].done() or self._waiters[0][0] <= self._finished
        ):
            _, waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
        if accepted.seqs:
            self.changed.set()
        if accepted.dropped:
            self._note_dropped(accepted.dropped)

    def _note_failure(self, exc: OutboxError) -> float:
        """Record a failed commit; return how long to wait before the next attempt."""
        self._failures += 1
        self._last_error = exc
        delay = min(self._retry_cap_s, self._retry_base_s * 2.0 ** min(self._failures - 1, 30))
        _log.error(
            "outbox_commit_failed",
            reason=str(exc.reason),
            error=str(exc),
            batch=len(self._held),
            failures=self._failures,
            retry_in_s=delay,
        )
        return delay

    async def _settling(
        self, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run a publisher-side write, waiting out storage failures that can heal."""
        failures = 0
        while True:
            try:
                result = await self._call(function, *args, **kwargs)
            except OutboxError as exc:
                if exc.reason in FATAL_REASONS:
                    raise
                failures += 1
                self._settle_error = exc
                delay = min(self._retry_cap_s, self._retry_base_s * 2.0 ** min(failures - 1, 30))
                _log.error(
                    "outbox_settle_failed",
                    reason=str(exc.reason),
                    error=str(exc),
                    failures=failures,
                    retry_in_s=delay,
                )
                await self._reclaim(exc)
                await asyncio.sleep(delay)
                continue
            if failures:
                self._settle_error = None
                _log.info("outbox_settle_recovered", failures=failures)
            return result

    async def _reclaim(self, exc: OutboxError) -> None:
        """After a full disk: give the WAL's space back so the retry can work."""
        if exc.reason is OutboxErrorReason.DISK_FULL:
            try:
                await self._call(self._outbox.reclaim)
            except OutboxError as failed:
                _log.warning("outbox_reclaim_failed", reason=str(failed.reason))

    def _note_dropped(self, dropped: int) -> None:
        self._dropped_unlogged += dropped
        now = asyncio.get_running_loop().time()
        if self._drop_logged_at is not None and now - self._drop_logged_at < DROP_LOG_INTERVAL_S:
            return
        stats = self._outbox.stats()
        _log.warning(
            "outbox_full_dropped",
            dropped=self._dropped_unlogged,
            dropped_total=stats.dropped,
            depth=stats.depth,
            max_events=stats.max_events,
        )
        self._dropped_unlogged = 0
        self._drop_logged_at = now

    def _fail(self, exc: OutboxError) -> None:
        self._fatal = exc
        _log.critical("outbox_failed", reason=str(exc.reason), error=str(exc), lost=self.queued)
        self._fail_waiters(exc)

    def _fail_waiters(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_exception(exc)

    async def _shut_down(self) -> None:
        executor = self._executor
        if executor is None:
            return
        self._fail_waiters(RuntimeError(f"outbox {self._outbox.path} closed"))
        try:
            await self._call(self._outbox.close)
        finally:
            self._executor = None
            executor.shutdown(wait=True)  # the worker is idle: its last job just finished


def _close_if_opened(opening: concurrent.futures.Future[Outbox]) -> None:
    """On the worker, after a cancelled :meth:`AsyncOutbox.open`: close what it opened."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
