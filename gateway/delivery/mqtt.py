"""The MQTT publisher: drains the durable outbox to the broker at QoS 1, deleting on PUBACK only.

The gateway promises that an accepted event is never lost, so the publisher treats the broker's
PUBACK as the only proof of delivery. A row leaves the outbox when the broker acknowledged it
with a success reason code (< 0x80; 0x10 "no matching subscribers" is a success); a refused
publish (>= 0x80: ACL, quota, payload format) is retried with backoff or parked in the
dead-letter table, as the settings say. Everything else (disconnects, broker restarts, process
crashes) ends with the row still in the outbox, to be sent again: delivery is at-least-once,
and consumers drop duplicates by the ``event_id`` user property. (MQTT 3.1.1 has no PUBACK
reason codes: mosquitto PUBACKs an ACL-denied 3.1.1 publish as a success and drops it.)

How it is built, and why:

* **One paho client, paho's network loop on its own thread, reconnects driven from asyncio**
  (:mod:`gateway.delivery.mqtt_client`). The client lives as long as the publisher, so paho
  re-sends its in-flight QoS 1 messages after a reconnect. paho's automatic reconnect is off:
  the supervisor here connects in a worker thread (DNS, TCP and TLS never block the event
  loop), runs paho's thread for that connection, and after it ends waits a capped exponential
  backoff with *full* jitter (paho's own delay has none), reset by a connection that stayed up
  :data:`STABLE_CONNECTION_S`. Every failure becomes an operator-readable
  :class:`~gateway.delivery.mqtt_problems.MqttProblem` (:attr:`PublisherStats.last_error`).
* **Callbacks forward, nothing more.** paho's callbacks only ``call_soon_threadsafe`` into the
  event loop; ``publish()`` is called on the loop and its message id recorded in the same
  step (:mod:`gateway.delivery.mqtt_delivery`), so no lock is shared with paho.
* **A window, oldest first.** At most ``min(max_inflight, broker Receive Maximum)`` messages
  are unacknowledged at a time, statuses included, and new rows are handed over only while
  connected. The publisher counts itself: paho ignores Receive Maximum and refuses to change
  its own cap on an open connection.
* **Status with a will.** The will is a retained ``offline`` (QoS 1, v5 Will Delay
  ``will_delay_s``); every connect publishes a retained ``online`` (as soon as the window has
  room, ahead of events); a clean stop publishes a retained ``offline``, waits (bounded) for
  its PUBACK and disconnects normally, which makes the broker drop the will. Verified with
  mosquitto 2.0.11: the will comes ``will_delay_s`` after a SIGKILLed gateway's socket closed;
  a gateway back within the delay suppresses it; an old will never lands after a newer
  ``online``; a will delay longer than the session is waited out in full although MQTT 5
  sends the will when the session ends (hence the delay is capped at ``session_expiry_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import structlog

from gateway.delivery.backoff import full_jitter
from gateway.delivery.mqtt_client import MqttClient
from gateway.delivery.mqtt_delivery import FAILURE, Delivery, OutboxPort
from gateway.delivery.mqtt_problems import (
    MqttProblem,
    closed_before_connack_problem,
    connack_problem,
    connack_timeout_problem,
    connection_problem,
    disconnect_problem,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gateway.delivery.mqtt_settings import MqttSettings

__all__ = [
    "MqttPublisher",
    "OutboxPort",
    "PublisherState",
    "PublisherStats",
]

log = structlog.get_logger(__name__)

STABLE_CONNECTION_S: Final = 30.0
"""A connection up this long resets the backoff; shorter ones (kicked at once, a client id
used twice) count as failures, so the delays keep growing."""

STOP_TIMEOUT_S: Final = 5.0
"""When :meth:`MqttPublisher.run` is cancelled without :meth:`~MqttPublisher.stop`: the bound
on the clean ``offline`` and disconnect it still does."""

JOIN_GRACE_S: Final = 1.0
"""Extra time for paho's thread to end after the DISCONNECT, even when ``stop``'s timeout was
used up waiting for the ``offline`` PUBACK."""


class PublisherState(enum.StrEnum):
    """Where the publisher is in its life."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RETRYING = "retrying"
    """Waiting out the backoff before the next connect attempt."""
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """A snapshot of the publisher for metrics and /healthz.

    ``published`` counts event PUBLISHes handed to paho (a retried row counts again; paho's
    re-sends after a reconnect do not). ``acked`` counts successful PUBACKs, ``refused`` the
    refusals per PUBACK reason code, ``retried`` the refusals scheduled for another attempt,
    ``parked`` the rows moved to the dead-letter table. ``in_flight`` events are with paho
    awaiting their PUBACK; ``window`` caps them (with the status messages). ``last_error`` is
    the most recent connection problem (kept after a recovery; it carries its time).
    """

    state: PublisherState
    connected: bool
    connects: int
    connect_failures: int
    disconnects: int
    published: int
    acked: int
    refused: Mapping[int, int]
    retried: int
    parked: int
    in_flight: int
    window: int
    last_error: MqttProblem | None


@dataclass(slots=True)
class _Link:
    """One connection attempt as the event loop sees it."""

    connack: asyncio.Future[bool]
    """True once CONNACK accepted us; False when refused, lost or interrupted first."""
    closed: asyncio.Event
    """Set when the connection ended (or stop() interrupts the wait for that)."""
    up_since: float | None = None


class MqttPublisher:
    """Publishes the outbox's rows to an MQTT broker, oldest first, until stopped.

    ``run()`` connects (retrying forever with backoff), publishes and supervises; it returns
    after :meth:`stop` and, when cancelled, still publishes ``offline`` and disconnects
    (bounded by :data:`STOP_TIMEOUT_S`) before re-raising. :meth:`flush` waits until the outbox
    is empty and nothing is in flight. :meth:`stats` is a snapshot for metrics and /healthz.
    ``on_ack(latency_s)`` is called for every successful PUBACK with the time since the row's
    ``accepted_at`` (for a histogram; it must be quick, its exceptions are logged and
    swallowed). ``clock`` (unix time), ``monotonic`` and ``rng`` are for tests.

    Raises (from the constructor):
        MqttConfigError: a TLS file is missing or unusable.
    """

    def __init__(
        self,
        settings: MqttSettings,
        outbox: OutboxPort,
        *,
        on_ack: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng
        self._client = MqttClient(settings, clock=clock)
        self._delivery = Delivery(
            settings, outbox, self._client, on_ack=on_ack, clock=clock, rng=rng
        )
        self._state = PublisherState.NEW
        self._link: _Link | None = None
        self._connect_job: asyncio.Future[None] | None = None
        self._last_problem: MqttProblem | None = None
        self._stop_requested = asyncio.Event()
        self._closer: asyncio.Future[None] | None = None
        self._running = False
        self._connects = 0
        self._connect_failures = 0
        self._disconnects = 0

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"MqttPublisher(client_id={s.client_id!r}, broker={s.host}:{s.port}, "
            f"state={self._state})"
        )

    # ----------------------------------------------------------------------- public API

    async def run(self) -> None:
        """Connect, publish and reconnect until :meth:`stop` (then return) or cancellation.

        Raises:
            RuntimeError: ``run()`` is already running.
            OutboxError: the outbox failed (after a clean stop of the connection).
        """
        if self._running:
            msg = "MqttPublisher.run() is already running"
            raise RuntimeError(msg)
        if self._stop_requested.is_set():
            return
        self._running = True
        self._client.bind(asyncio.get_running_loop(), self)
        delivery = self._delivery
        tasks = [
            asyncio.create_task(self._supervise(), name="mqtt supervisor"),
            asyncio.create_task(delivery.pump(), name="mqtt pump"),
            asyncio.create_task(delivery.settle_loop(), name="mqtt settle"),
            asyncio.create_task(delivery.forward_changes(), name="mqtt outbox watch"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a worker's failure; the supervisor ends only after stop()
        finally:
            try:
                await self._ensure_closed(STOP_TIMEOUT_S)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - the daemon's contract
        """Wait until the outbox is empty and nothing is in flight; False after ``timeout`` s."""
        delivery = self._delivery
        try:
            async with asyncio.timeout(timeout):
                while True:
                    delivery.progress.clear()
                    await self._outbox.flush()
                    if delivery.idle and not await self._outbox.pending(after=0, limit=1):
                        return True
                    await delivery.progress.wait()
        except TimeoutError:
            return False

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - the daemon's contract
        """Publish ``offline``, disconnect and end paho's thread; idempotent, never raises.

        Waits up to ``timeout`` s for the ``offline`` PUBACK (plus :data:`JOIN_GRACE_S` for
        paho's thread). Rows still in flight stay in the outbox and are sent after a restart.
        Safe before :meth:`run` and when never connected; :meth:`run` then returns.
        """
        await self._ensure_closed(timeout)

    def stats(self) -> PublisherStats:
        """A snapshot of the counters and the connection state."""
        delivery = self._delivery
        counters = delivery.counters
        return PublisherStats(
            state=self._state,
            connected=delivery.connected,
            connects=self._connects,
            connect_failures=self._connect_failures,
            disconnects=self._disconnects,
            published=counters.published,
            acked=counters.acked,
            refused=MappingProxyType(dict(counters.refused)),
            retried=counters.retried,
            parked=counters.parked,
            in_flight=delivery.in_flight,
            window=delivery.window,
            last_error=self._last_problem,
        )

    # ----------------------------------------------------------------------- link events (loop)

    def on_connack(
        self,
        session_present: bool,  # noqa: FBT001 - forwarded positionally from paho's thread
        code: int,
        name: str,
        window: int,
        max_packet: int | None,
    ) -> None:
        """CONNACK: connected (publish ``online``, fill the window) or refused (record why)."""
        link = self._link
        if link is None or link.connack.done():
            return  # the attempt was given up (CONNACK timeout, stop): it is being closed
        s = self._settings
        if code >= FAILURE:
            self._last_problem = connack_problem(
                code, name, host=s.host, port=s.port, at=self._clock()
            )
            link.connack.set_result(False)
            return
        self._connects += 1
        self._state = PublisherState.CONNECTED
        link.up_since = self._monotonic()
        log.info(
            "mqtt_connected",
            broker=f"{s.host}:{s.port}",
            protocol=s.protocol,
            client_id=s.client_id,
            session_present=session_present,
            window=window,
            resending=self._delivery.in_flight,
        )
        self._delivery.link_up(window, max_packet)
        self._delivery.queue_status(self._client.status_payload("online", reason=None))
        link.connack.set_result(True)

    def on_closed(self, from_broker: bool, code: int, name: str) -> None:  # noqa: FBT001
        """The connection ended: count it, say why (unless we are stopping), wake waiters."""
        was_connected = self._delivery.connected
        self._delivery.link_down()
        if was_connected:
            self._disconnects += 1
            if self._stop_requested.is_set():
                log.info("mqtt_disconnected", reason=name, clean=True)
            else:
                problem = disconnect_problem(
                    code,
                    name,
                    from_broker=from_broker,
                    client_id=self._settings.client_id,
                    at=self._clock(),
                )
                self._last_problem = problem
                log.warning(
                    "mqtt_disconnected",
                    reason=name,
                    error=problem.message,
                    in_flight=self._delivery.in_flight,
                )
        link = self._link
        if link is not None:
            if not link.connack.done():
                if not self._stop_requested.is_set():
                    s = self._settings
                    self._last_problem = closed_before_connack_problem(
                        name, host=s.host, port=s.port, tls=s.tls is not None, at=self._clock()
                    )
                link.connack.set_result(False)
            link.closed.set()

    def on_puback(self, mid: int, code: int, name: str) -> None:
        """A PUBACK: the delivery settles it."""
        self._delivery.on_puback(mid, code, name)

    # ----------------------------------------------------------------------- supervision

    async def _supervise(self) -> None:
        """Connect, serve the connection, back off, again; until stop() is requested."""
        failures = 0
        s = self._settings
        while not self._stop_requested.is_set():
            was_connected, stable = await self._connect_and_serve()
            if self._stop_requested.is_set():
                return
            if stable:
                failures = 0
            delay = full_jitter(
                failures, base_s=s.backoff_base_s, cap_s=s.backoff_cap_s, rng=self._rng
            )
            failures += 1
            self._state = PublisherState.RETRYING
            if was_connected:
                log.info("mqtt_reconnecting", retry_in_s=round(delay, 3))
            else:
                self._connect_failures += 1
                problem = self._last_problem
                log.warning(
                    "mqtt_connect_failed",
                    kind=None if problem is None else str(problem.kind),
                    error=None if problem is None else problem.message,
                    attempt=failures,
                    retry_in_s=round(delay, 3),
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop_requested.wait()

    async def _connect_and_serve(self) -> tuple[bool, bool]:
        """One connection attempt and, if it connects, its lifetime: (connected, stable)."""
        loop = asyncio.get_running_loop()
        link = _Link(connack=loop.create_future(), closed=asyncio.Event())
        self._link = link
        self._state = PublisherState.CONNECTING
        job = asyncio.ensure_future(self._client.connect())
        self._connect_job = job
        s = self._settings
        try:
            await asyncio.shield(job)
        except (OSError, ValueError) as exc:
            self._last_problem = connection_problem(exc, host=s.host, port=s.port, at=self._clock())
            return False, False
        if self._stop_requested.is_set():
            return False, False  # stop() disconnects what the attempt opened
        self._client.start_network()
        try:
            connected = await self._await_connack(link)
            if connected:
                await link.closed.wait()
        finally:
            if not self._stop_requested.is_set():
                await self._client.join_network()
        if not connected or link.up_since is None:
            return False, False
        return True, self._monotonic() - link.up_since >= STABLE_CONNECTION_S

    async def _await_connack(self, link: _Link) -> bool:
        """Whether CONNACK accepted us within ``connect_timeout_s`` (a timeout disconnects)."""
        s = self._settings
        try:
            async with asyncio.timeout(s.connect_timeout_s):
                return await asyncio.shield(link.connack)
        except TimeoutError:
            link.connack.cancel()  # a late CONNACK is ignored: this attempt is over
            self._last_problem = connack_timeout_problem(
                host=s.host, port=s.port, seconds=s.connect_timeout_s, at=self._clock()
            )
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.connect_timeout_s):
                    await link.closed.wait()
            return False

    # ----------------------------------------------------------------------- stopping

    async def _ensure_closed(self, timeout_s: float) -> None:
        self._stop_requested.set()
        self._delivery.sending = False
        link = self._link
        if link is not None:
            if not link.connack.done():
                link.connack.set_result(False)
            link.closed.set()
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._close(timeout_s))
        await asyncio.shield(self._closer)

    async def _close(self, timeout_s: float) -> None:
        """Offline status, disconnect, end paho's thread, settle the last PUBACKs; never raises."""
        self._state = PublisherState.STOPPING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        job = self._connect_job
        if job is not None and not job.done():
            await asyncio.wait({job}, timeout=remaining())
            if not job.done():  # a connect outlasting stop(): close whatever it opens
                job.add_done_callback(lambda _: self._client.disconnect())
        delivery = self._delivery
        offline_confirmed = False
        if delivery.connected:
            waiter = delivery.queue_status(self._client.status_payload("offline", reason="stopped"))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining()):
                    offline_confirmed = await asyncio.shield(waiter)
        self._client.disconnect()
        thread_ended = await self._client.join_network(max(remaining(), JOIN_GRACE_S))
        delivery.cancel_retries()
        try:
            await delivery.settle()
        except Exception:  # stop() never raises; the rows stay in the outbox
            log.exception("mqtt_stop_settle_failed")
        self._state = PublisherState.STOPPED
        log.info(
            "mqtt_stopped",
            offline_confirmed=offline_confirmed,
            unacknowledged=delivery.in_flight,
            network_thread_ended=thread_ended,
        )
