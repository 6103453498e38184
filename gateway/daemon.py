"""The gateway daemon: source -> pipeline -> durable outbox -> MQTT, under one asyncio TaskGroup.

Tasks, all on one event loop:

- **sense**: reads sightings, runs the pipeline, turns its outputs into events and puts them in
  the outbox (which commits them in groups on its own thread: an event is *accepted* once
  committed). A source that fails is retried with backoff while everything else goes on;
  a finite source (a scene, a capture) ends the run once its silence is settled.
- **tick**: once a second, settles what time alone decides (exits, unseen rules), on the
  source's clock: the last sighting's time plus the time since it arrived.
- **outbox writer** and **publisher**: the outbox drains to the broker at QoS 1; a row is
  deleted only on a successful PUBACK, so a broker outage only grows the outbox.
- **ops**: ``/metrics``, ``/healthz`` and the live view on loopback (the view is fed every
  accepted event: :mod:`gateway.ops.live`); systemd READY, WATCHDOG and STATUS.

SIGTERM or SIGINT stops sensing, commits what is queued, gives the publisher a few seconds
to deliver the backlog (what is left stays in the outbox for the next start), publishes the
retained ``offline`` status and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.core.presence import PresenceChange
from gateway.core.triggers import TriggerFired
from gateway.core.wire import Batch
from gateway.delivery.message import Message
from gateway.delivery.outbox_async import OutboxHealth
from gateway.ops.sdnotify import Notifier
from gateway.sources.base import SourceError, SourceErrorReason, SourceOutage

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.assemble import Assembly
    from gateway.core.pipeline import Output, Pipeline
    from gateway.delivery.mqtt import MqttPublisher
    from gateway.delivery.outbox import AsyncOutbox
    from gateway.fleet.reporting import ReportingPipeline
    from gateway.ops.http import OpsServer
    from gateway.ops.live import LiveState
    from gateway.sources.base import SightingSource
    from gateway.topics import Topics

TICK_S: Final = 1.0
"""How often time alone is settled: exits are dated at the last sighting anyway."""
SOURCE_RETRY_S: Final = (1.0, 60.0)
"""Backoff (first, cap) between attempts to restart a failed source."""
STOP_FLUSH_S: Final = 5.0
"""On SIGTERM, how long the publisher may keep delivering the backlog before it is left for
the next start (systemd's TimeoutStopSec must be longer)."""
ADVERT_STALE_S: Final = 60.0
"""No sighting for this long makes the source unhealthy (a watchdog restart is the scanner's own
business; this is what /healthz and the systemd watchdog see)."""
SOURCE_OUTAGE_LIMIT_S: Final = 60.0
"""A radio outage the source waits out on its own (adapter powered off or removed, bluetoothd
away) makes /healthz unready once it lasts this long; shorter ones are a power toggle, an
adapter reset or a bluetoothd restart."""
_WAITED_OUT: Final = frozenset(
    {
        SourceErrorReason.POWERED_OFF,
        SourceErrorReason.ADAPTER_MISSING,
        SourceErrorReason.NO_BLUETOOTH,
    }
)
"""Outages a process restart cannot end: the systemd watchdog keeps being fed through them."""

_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class DaemonCounts:
    """What the daemon did, for metrics."""

    sightings: int = 0
    events: dict[str, int] = field(default_factory=dict)
    source_failures: dict[str, int] = field(default_factory=dict)
    last_sighting_mono: float | None = None
    source_error: str | None = None


def _text(problem: object | None) -> str | None:
    return None if problem is None else str(problem)


def _kind(output: Output) -> str:
    if isinstance(output, PresenceChange):
        return output.kind.value
    if isinstance(output, TriggerFired):
        return "trigger"
    return "telemetry"


class Daemon:
    """Wires the parts and runs them until stopped (see the module docstring)."""

    def __init__(
        self,
        assembly: Assembly,
        source: SightingSource,
        topics: Topics,
        outbox: AsyncOutbox,
        publisher: MqttPublisher,
        *,
        finite: bool,
        horizon_s: float,
        ops: OpsServer | None = None,
        ops_address: tuple[str, int] | None = None,
        notifier: Notifier | None = None,
        speed: float = 1.0,
        live: LiveState | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wire the parts.

        ``finite``: the source ends (a scene, a capture); ``horizon_s``: how long its silence
        must be settled then (the longest exit timeout and unseen rule). ``speed``: how
        much faster than real time the source plays (a paced scene). ``live``: the live view's
        state, fed every event accepted into the outbox.
        """
        self.assembly = assembly
        self.source = source
        self.topics = topics
        self.outbox = outbox
        self.publisher = publisher
        self.counts = DaemonCounts()
        self._finite = finite
        self._horizon = horizon_s
        self._ops = ops
        self._ops_address = ops_address
        self._notifier = notifier or Notifier()
        self._monotonic = monotonic
        self._stop = asyncio.Event()
        self._last_at: float | None = None
        self._speed = speed
        self.live = live

    @property
    def _sensing(self) -> Pipeline | ReportingPipeline:
        """What sightings go through: a fleet gateway's reporting, else the pipeline."""
        return self.assembly.reporting or self.assembly.pipeline

    def stop(self) -> None:
        """Ask the daemon to stop (signal handlers call this)."""
        self._stop.set()

    # ------------------------------------------------------------------------------- running

    async def run(self) -> None:
        """Run until stopped or until a finite source is done; raise if a part fails."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
        try:
            async with asyncio.TaskGroup() as group:
                background = [
                    group.create_task(self.outbox.run(), name="outbox"),
                    group.create_task(self.publisher.run(), name="publisher"),
                    group.create_task(self._tick(), name="tick"),
                    group.create_task(self._watchdog(), name="watchdog"),
                ]
                if self._ops is not None and self._ops_address is not None:
                    host, port = await self._ops.start(*self._ops_address)
                    _log.info("ops_listening", host=host, port=port)
                sense = group.create_task(self._sense(), name="sense")
                self._notifier.ready(f"sensing from {self.source.name}")
                _log.info("gateway_started", source=self.source.name)
                stop = group.create_task(self._stop.wait(), name="stop")
                await asyncio.wait({sense, stop}, return_when=asyncio.FIRST_COMPLETED)
                self._notifier.stopping()
                for task in (sense, stop):
                    task.cancel()
                await self._shutdown()
                for task in background:
                    task.cancel()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
            if self._ops is not None:
                await self._ops.close()
            await self.outbox.aclose()

    async def _shutdown(self) -> None:
        await self.outbox.flush()
        delivered = await self.publisher.flush(STOP_FLUSH_S)
        stats = self.outbox.stats()
        _log.info("gateway_stopping", delivered_all=delivered, outbox_depth=stats.depth)
        await self.publisher.stop(STOP_FLUSH_S)

    async def _sense(self) -> None:
        delay = SOURCE_RETRY_S[0]
        while True:
            try:
                async for sighting in self.source.sightings():
                    self.counts.source_error = None
                    delay = SOURCE_RETRY_S[0]
                    await self._accept(sighting.at, self._sensing.process(sighting))
            except SourceError as exc:
                reason = str(exc.reason)
                self.counts.source_error = f"{reason}: {exc}"
                self.counts.source_failures[reason] = self.counts.source_failures.get(reason, 0) + 1
                _log.error("source_failed", reason=reason, error=str(exc), retry_in_s=delay)
                self._notifier.status(f"source failed ({reason}), retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, SOURCE_RETRY_S[1])
                continue
            if not self._finite:
                # A live source that ended (it should not) is restarted, not spun on.
                _log.warning("source_ended_restarting", retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, SOURCE_RETRY_S[1])
                continue
            break
        if self._last_at is not None:
            # The recording ended: settle what its silence decides (exits, unseen rules).
            await self._put(self._sensing.tick(self._last_at + self._horizon + 1))
        _log.info("source_ended", sightings=self.counts.sightings)

    async def _accept(self, at: float, outputs: Sequence[Output | Batch]) -> None:
        self.counts.sightings += 1
        self._last_at = at if self._last_at is None else max(self._last_at, at)
        self.counts.last_sighting_mono = self._monotonic()
        if outputs:
            await self._put(outputs)

    async def _put(self, outputs: Sequence[Output | Batch]) -> None:
        events = self.assembly.events
        for output in outputs:
            if isinstance(output, Batch):  # a fleet gateway's report (docs/fleet.md)
                await self._put_batch(output)
                continue
            event = events.build(output)
            kind = _kind(output)
            self.counts.events[kind] = self.counts.events.get(kind, 0) + 1
            await self.outbox.put(
                Message(
                    topic=self.topics.for_event(event),
                    payload=event.model_dump_json().encode(),
                    event_id=str(event.event_id),
                )
            )
            if self.live is not None:
                self.live.accept(event, key=output.beacon_id)

    async def _put_batch(self, batch: Batch) -> None:
        reporting = self.assembly.reporting
        assert reporting is not None  # noqa: S101 - only a reporting pipeline makes batches
        self.counts.events["batch"] = self.counts.events.get("batch", 0) + 1
        for message in reporting.messages(batch):
            await self.outbox.put(message)

    def source_now(self) -> float | None:
        """The source's clock: the last sighting's time plus the time since it arrived."""
        arrived = self.counts.last_sighting_mono
        if self._last_at is None or arrived is None:
            return None
        return self._last_at + (self._monotonic() - arrived) * self._speed

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self.source_now()
            if now is not None:
                await self._put(self._sensing.tick(now))

    # ------------------------------------------------------------------------------- health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Ready, and the checks behind it (``/healthz``)."""
        outbox = self.outbox.stats()
        publisher = self.publisher.stats()
        silent = (
            None
            if self.counts.last_sighting_mono is None
            else self._monotonic() - self.counts.last_sighting_mono
        )
        outage = self.source_outage()
        checks: dict[str, Any] = {
            "source": self.source.name,
            "source_error": self.counts.source_error,
            "source_outage": None
            if outage is None
            else f"{outage.reason} for {outage.seconds:.0f} s: {outage.message}",
            "seconds_since_sighting": None if silent is None else round(silent, 1),
            "outbox_depth": outbox.depth,
            "outbox_health": str(self.outbox.health),
            "outbox_error": _text(self.outbox.last_error),
            "mqtt_state": str(publisher.state),
            "mqtt_connected": publisher.connected,
            "mqtt_error": _text(publisher.last_error),
        }
        ready = (
            self.counts.source_error is None
            and (outage is None or outage.seconds < SOURCE_OUTAGE_LIMIT_S)
            and self.outbox.health is OutboxHealth.OK
            and publisher.connected
        )
        return ready, checks

    def live_view(self) -> dict[str, Any]:
        """The live view's snapshot (``/live/state``), with the health ``/healthz`` reports."""
        ready, checks = self.health()
        view = {} if self.live is None else self.live.snapshot(self.source_now())
        return {
            **view,
            "health": {"ready": ready, "checks": checks},
            "sightings": self.counts.sightings,
        }

    def source_outage(self) -> SourceOutage | None:
        """The live source's ongoing outage, if it reports one (``outage()``, optional)."""
        outage = getattr(self.source, "outage", None)
        if not callable(outage):
            return None
        found = outage()
        return found if isinstance(found, SourceOutage) else None

    def alive(self) -> bool:
        """Whether to ping the systemd watchdog.

        The loop runs (we are here), the outbox has not failed for good (a full disk is
        retried: a restart would free nothing and lose the queued events), and the source is
        delivering or recovering (not silent past ADVERT_STALE_S), or waiting out an outage a
        restart cannot end (the adapter powered off or gone, bluetoothd away: /healthz says so
        past SOURCE_OUTAGE_LIMIT_S).
        """
        if self.outbox.health is OutboxHealth.FAILED:
            return False
        outage = self.source_outage()
        if outage is not None and outage.reason in _WAITED_OUT:
            return True
        silent_since = self.counts.last_sighting_mono
        if silent_since is None:
            return True
        return self._monotonic() - silent_since < ADVERT_STALE_S or self._finite

    async def _watchdog(self) -> None:
        period = self._notifier.watchdog_s
        if period is None:
            return
        while True:
            if self.alive():
                self._notifier.watchdog()
            await asyncio.sleep(period / 2)
