"""What the publisher sends and how each outcome is settled with the outbox.

:class:`Delivery` keeps the window: at most ``window`` messages (events and retained statuses)
handed to paho and not yet acknowledged, oldest rows first, new ones only while connected. It
records paho's message id against the row in the same synchronous step as ``publish()``, so a
PUBACK forwarded from paho's thread always finds its row. Outcomes are settled with the outbox
by one settler task: successful PUBACKs (reason code < 0x80) are deleted in batches; refused
ones (>= 0x80) get ``retry_later`` and a new attempt after a full-jitter backoff, or are parked
(dead-lettered) as the settings say; rows that can never be sent (bad topic, larger than the
broker's Maximum Packet Size) are parked at once instead of being re-sent after every reconnect.
A refused row does not hold the others back, so a retried one arrives after newer events of
its topic: per-topic order holds for everything the broker accepts the first time.

Everything here runs on the event loop; only :class:`~gateway.delivery.mqtt_client.MqttClient`
touches paho.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from gateway.delivery.backoff import full_jitter
from gateway.delivery.mqtt_settings import topic_name_problem

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from gateway.delivery.message import Message, Stored
    from gateway.delivery.mqtt_client import MqttClient
    from gateway.delivery.mqtt_settings import MqttSettings

log = structlog.get_logger("gateway.delivery.mqtt")

PREFETCH_ROWS: Final = 256
"""Rows read from the outbox per query (at least a window's worth): one SQLite round trip per
batch rather than per PUBACK, a few hundred KB at most."""

FAILURE: Final = 0x80
"""Reason codes from 0x80 up are failures (MQTT 5 section 2.4)."""

_PUBLISH_OVERHEAD_BYTES: Final = 32
"""PUBLISH bytes besides topic, payload and event id (header, lengths, packet id, property
ids), rounded up: compared against the broker's Maximum Packet Size."""


class OutboxPort(Protocol):
    """The part of :class:`~gateway.delivery.outbox.AsyncOutbox` the publisher uses."""

    @property
    def changed(self) -> asyncio.Event:
        """Set after each commit of new rows (the publisher clears it)."""
        ...

    async def flush(self) -> None:
        """Return once every message put so far is committed."""
        ...

    async def pending(self, *, after: int = 0, limit: int) -> list[Stored]:
        """Up to ``limit`` rows with ``seq > after``, oldest first."""
        ...

    async def ack(self, seqs: Iterable[int]) -> int:
        """Delete delivered rows; the number deleted."""
        ...

    async def retry_later(self, seq: int) -> None:
        """Count one more refused attempt of a row."""
        ...

    async def park(self, seq: int, reason: str) -> None:
        """Move a refused row to the dead-letter table."""
        ...


@dataclass(frozen=True, slots=True)
class _Refusal:
    row: Stored
    reason: str
    permanent: bool
    """Can never succeed (bad topic, too large): parked whatever the settings say."""


@dataclass(slots=True)
class Counters:
    """Delivery counters (see :class:`~gateway.delivery.mqtt.PublisherStats`)."""

    published: int = 0
    acked: int = 0
    refused: Counter[int] = dataclasses.field(default_factory=Counter)
    retried: int = 0
    parked: int = 0


class Delivery:
    """The window, the rows in it and their settlement with the outbox (event loop only)."""

    def __init__(
        self,
        settings: MqttSettings,
        outbox: OutboxPort,
        client: MqttClient,
        *,
        on_ack: Callable[[float], None] | None,
        clock: Callable[[], float],
        rng: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._client = client
        self._on_ack = on_ack
        self._clock = clock
        self._rng = rng
        self.counters = Counters()
        self.window = settings.max_inflight
        """min(max_inflight, the broker's Receive Maximum), set on every connect."""
        self.max_packet: int | None = None
        """The broker's Maximum Packet Size (MQTT 5 CONNACK), if it gave one."""
        self.connected = False
        self.sending = True
        """False once stopping: no new events are handed over (statuses still are)."""

        self._cursor = 0
        """Highest seq read from the outbox; the next query starts after it."""
        self._ready: deque[Stored] = deque()
        """Read, not yet handed to paho, oldest first."""
        self._retry_ready: deque[Stored] = deque()
        """Refused rows whose backoff is over; they go before ``_ready``."""
        self._retry_timers: dict[int, asyncio.TimerHandle] = {}
        self._inflight: dict[int, Stored] = {}
        """paho message id -> row, from publish() to its PUBACK."""
        self._statuses: deque[tuple[bytes, asyncio.Future[bool]]] = deque()
        """Status payloads waiting for a free slot, with their futures."""
        self._status_waiters: dict[int, asyncio.Future[bool]] = {}
        """paho message id -> future of a status publish (True on a success PUBACK)."""
        self._acks: list[int] = []
        self._refusals: deque[_Refusal] = deque()

        self._wake = asyncio.Event()
        self._settle_wake = asyncio.Event()
        self._settle_lock = asyncio.Lock()
        self.progress = asyncio.Event()
        """Set whenever acks or refusals were committed to the outbox or the link closed."""

    @property
    def in_flight(self) -> int:
        """Events handed to paho and not yet acknowledged."""
        return len(self._inflight)

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing waiting to be settled with the outbox."""
        return not (self._inflight or self._acks or self._refusals or self._settle_lock.locked())

    # ----------------------------------------------------------------------- link events

    def link_up(self, window: int, max_packet: int | None) -> None:
        """The broker accepted us: paho re-sends what was in flight; new rows may follow."""
        self.connected = True
        self.window = window
        self.max_packet = max_packet
        self._wake.set()

    def link_down(self) -> None:
        """The connection ended. Sent statuses stay with paho (re-sent); unsent ones are stale."""
        self.connected = False
        for waiter in self._status_waiters.values():
            if not waiter.done():
                waiter.set_result(False)
        while self._statuses:
            _, waiter = self._statuses.popleft()
            waiter.set_result(False)
        self.progress.set()

    def on_puback(self, mid: int, code: int, name: str) -> None:
        """A PUBACK (or PUBCOMP) for message ``mid``: settle its row or its status."""
        row = self._inflight.pop(mid, None)
        if row is None:
            self._on_status_puback(mid, code, name)
        elif code < FAILURE:
            self.counters.acked += 1
            # The broker now owns the event: from here its loss is the broker's (a debug line,
            # so that the fault suite can tell a broker's loss from ours).
            log.debug("publish_acked", seq=row.seq, mid=mid)
            self._acks.append(row.seq)
            self._settle_wake.set()
            self._report_latency(row)
        else:
            self.counters.refused[code] += 1
            message = row.message
            log.warning(
                "publish_refused",
                reason=name,
                reason_code=f"0x{code:02X}",
                topic=message.topic,
                event_id=message.event_id,
                seq=row.seq,
                attempts=row.attempts,
            )
            self._queue_refusal(_Refusal(row, f"{name} (0x{code:02X})", permanent=False))
        self._send_statuses()
        self._wake.set()

    def queue_status(self, payload: bytes) -> asyncio.Future[bool]:
        """Publish a retained status as soon as the window has room, before any event.

        The future is True on a success PUBACK, False when the connection ends first.
        """
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._statuses.append((payload, waiter))
        self._send_statuses()
        return waiter

    # ----------------------------------------------------------------------- sending

    async def forward_changes(self) -> None:
        """Wake the pump whenever the outbox commits new rows (clear before reading)."""
        changed = self._outbox.changed
        while True:
            await changed.wait()
            changed.clear()
            self._wake.set()

    async def pump(self) -> None:
        """Fill the window whenever something happened; runs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._fill()

    def _has_room(self) -> bool:
        return len(self._inflight) + len(self._status_waiters) < self.window

    async def _fill(self) -> None:
        """Hand rows to paho, oldest first, while connected and the window has room."""
        while self.connected and self.sending and self._has_room():
            source = self._retry_ready or self._ready
            if not source:
                if not await self._read_more():
                    return
                continue
            if not self._hand(source[0]):
                return
            source.popleft()

    async def _read_more(self) -> bool:
        rows = await self._outbox.pending(after=self._cursor, limit=max(self.window, PREFETCH_ROWS))
        if not rows:
            return False
        self._ready.extend(rows)
        self._cursor = rows[-1].seq
        return True

    def _hand(self, row: Stored) -> bool:
        """Publish one row; False if paho would not take it now (try again on the next wake)."""
        message = row.message
        problem = self._unsendable(message)
        if problem is None:
            try:
                mid = self._client.publish_event(message, row.seq)
            except ValueError as exc:  # paho's own checks
                problem = f"rejected by paho: {exc}"
            else:
                if mid is None:
                    log.error("publish_queue_full", in_flight=len(self._inflight), seq=row.seq)
                    return False
                # Same synchronous step as publish(): the PUBACK handler can only run later.
                self._inflight[mid] = row
                self.counters.published += 1
                return True
        log.error(
            "publish_unsendable",
            topic=message.topic,
            event_id=message.event_id,
            seq=row.seq,
            problem=problem,
        )
        self._queue_refusal(_Refusal(row, problem, permanent=True))
        return True

    def _unsendable(self, message: Message) -> str | None:
        topic_problem = topic_name_problem(message.topic)
        if topic_problem is not None:
            return f"topic {topic_problem}"
        max_packet = self.max_packet
        if max_packet is not None:
            size = (
                len(message.topic.encode())
                + len(message.payload)
                + len(message.event_id.encode())
                + _PUBLISH_OVERHEAD_BYTES
            )
            if size > max_packet:
                return f"~{size} bytes exceed the broker's Maximum Packet Size ({max_packet})"
        return None

    def _send_statuses(self) -> None:
        while self._statuses and self.connected and self._has_room():
            payload, waiter = self._statuses.popleft()
            self._status_waiters[self._client.publish_status(payload)] = waiter

    def _on_status_puback(self, mid: int, code: int, name: str) -> None:
        waiter = self._status_waiters.pop(mid, None)
        if waiter is None:
            return
        if code >= FAILURE:
            log.error(
                "status_publish_refused",
                topic=self._settings.status_topic,
                reason=name,
                reason_code=f"0x{code:02X}",
            )
        if not waiter.done():
            waiter.set_result(code < FAILURE)

    def _report_latency(self, row: Stored) -> None:
        hook = self._on_ack
        if hook is None:
            return
        try:
            hook(max(0.0, self._clock() - row.accepted_at))
        except Exception:  # a metrics hook must never stop delivery
            log.exception("on_ack_hook_failed")

    # ----------------------------------------------------------------------- settling

    def _queue_refusal(self, refusal: _Refusal) -> None:
        self._refusals.append(refusal)
        self._settle_wake.set()

    async def settle_loop(self) -> None:
        """Settle outcomes with the outbox as they come; runs until cancelled."""
        while True:
            await self._settle_wake.wait()
            self._settle_wake.clear()
            await self.settle()

    async def settle(self) -> None:
        """Commit acks (in batches) and refusals to the outbox; one settler at a time.

        A batch interrupted (cancelled, failed) goes back to the front: deleting a row twice
        is harmless, forgetting to delete it only costs a duplicate after a restart.
        """
        async with self._settle_lock:
            while self._acks or self._refusals:
                if self._acks:
                    batch, self._acks = self._acks, []
                    try:
                        await self._outbox.ack(batch)
                    except BaseException:
                        self._acks[:0] = batch
                        raise
                if self._refusals:
                    refusal = self._refusals.popleft()
                    try:
                        await self._settle_refusal(refusal)
                    except BaseException:
                        self._refusals.appendleft(refusal)
                        raise
            self.progress.set()

    async def _settle_refusal(self, refusal: _Refusal) -> None:
        row, s = refusal.row, self._settings
        message = row.message
        if refusal.permanent or s.on_refused == "park" or row.attempts >= s.max_attempts:
            await self._outbox.park(row.seq, refusal.reason)
            self.counters.parked += 1
            log.error(
                "publish_parked",
                topic=message.topic,
                event_id=message.event_id,
                seq=row.seq,
                reason=refusal.reason,
                attempts=row.attempts,
            )
            return
        await self._outbox.retry_later(row.seq)
        self.counters.retried += 1
        delay = full_jitter(
            row.attempts, base_s=s.backoff_base_s, cap_s=s.backoff_cap_s, rng=self._rng
        )
        retry = dataclasses.replace(row, attempts=row.attempts + 1)
        loop = asyncio.get_running_loop()
        self._retry_timers[row.seq] = loop.call_later(delay, self._retry_due, retry)
        log.info(
            "publish_retry_scheduled",
            event_id=message.event_id,
            seq=row.seq,
            attempt=retry.attempts,
            retry_in_s=round(delay, 3),
        )

    def _retry_due(self, row: Stored) -> None:
        self._retry_timers.pop(row.seq, None)
        self._retry_ready.append(row)
        self._wake.set()

    def cancel_retries(self) -> None:
        """Drop the pending retry timers (the rows stay in the outbox for the next start)."""
        for handle in self._retry_timers.values():
            handle.cancel()
        self._retry_timers.clear()
