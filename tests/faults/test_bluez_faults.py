"""Faults of bluetoothd and the adapter during a running scan, counted over several cycles.

bleak's real BlueZ backend runs against the fake bluetoothd of :mod:`tests.gateway.fake_bluez`
on a private dbus-daemon, as in tests/gateway/test_bleak_source.py (which covers each fault once,
with its details); here each fault is repeated in one run and every cycle is counted:

- a beacon numbers its adverts (the sequence number sits in the EID bytes) and only advertises
  while the fake adapter can hear (bluetoothd up, adapter present and powered, discovery on);
- each cycle counts the sightings delivered *before* the fault, *during* it and *after* the
  adapter (or bluetoothd) is back, the adverts sent while nothing could hear them, and the
  scanner restarts; the beacon pauses at each phase boundary until every advert it sent has
  been delivered, so nothing heard is lost and the counts are exact;
- open file descriptors (``/proc/self/fd``) and asyncio tasks are counted at the end of every
  cycle and must not grow, and the process holds as many fds after the run as before.

No assertion is about time: the watchdog settings are small to keep cycles short, and every
wait is a hang guard that fails the test, never a measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pytest

from gateway.daemon import SOURCE_OUTAGE_LIMIT_S, Daemon
from gateway.delivery.outbox_async import OutboxHealth
from gateway.sources.base import EDDYSTONE_SERVICE_UUID, SourceErrorReason
from gateway.sources.bleak_scanner import BleakSource
from gateway.sources.bluez_state import AdapterState
from tests.faults.measure import open_fds
from tests.faults.report import long_mode
from tests.gateway.fake_bluez import (
    FakeAdapter,
    FakeBluez,
    FakeDevice,
)
from tests.gateway.test_bleak_source import FAST, Events, run

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.core.sighting import Sighting
    from tests.faults.report import FaultReport

BEACON: Final = "C4:7C:8D:6A:11:22"
CYCLES: Final = 10 if long_mode() else 3
"""Fault cycles per test (each kind of fault several times in one run)."""
SIGHTINGS_PER_PHASE: Final = 20 if long_mode() else 5
"""Sightings awaited before each fault and after each return."""
HANG_GUARD_S: Final = 20.0
"""Every wait gives up (and fails the test) after this long: a hang guard, not a timing."""


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` on the loop; fail the test after :data:`HANG_GUARD_S`."""
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            while not predicate():  # noqa: ASYNC110 - polls state with no event to await
                await asyncio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"gave up after {HANG_GUARD_S} s waiting for {what}")


def frame(sequence: int) -> bytes:
    """An EID frame whose 8 EID bytes carry the advert's sequence number."""
    return bytes([0x30, 0xEE]) + sequence.to_bytes(8, "big")


def sequence_of(sighting: Sighting) -> int:
    return int.from_bytes(sighting.service_data[2:10], "big")


class Beacon:
    """One beacon that advertises every few milliseconds while the fake adapter can hear it.

    After a bluetoothd restart or an adapter removal the device object is gone; the beacon is
    discovered again (a new Device1) as soon as the new adapter listens.
    """

    def __init__(self, bluez: FakeBluez) -> None:
        self.bluez = bluez
        self.sent = 0
        """Adverts the adapter could hear (each must become a sighting)."""
        self.unheard = 0
        """Adverts sent while nothing could hear them."""
        self.paused = True
        self.unheard_only = False
        """During a fault: advertise only while nothing can hear (the fault's own adverts)."""
        self._device: FakeDevice | None = None
        self._adapter: FakeAdapter | None = None

    def _advertise(self) -> None:
        bluez = self.bluez
        if not bluez.listening():
            self.unheard += 1
            return
        if self.unheard_only:
            return
        adapter = bluez.adapters["hci0"]
        data = {EDDYSTONE_SERVICE_UUID: frame(self.sent)}
        if self._device is None or adapter is not self._adapter:
            self._device = bluez.add_device(BEACON, service_data=data)  # InterfacesAdded
            self._adapter = adapter
        else:
            self._device.advertise(rssi=-60 - self.sent % 2, service_data=data)
        self.sent += 1

    async def run(self) -> None:
        while True:
            if not self.paused:
                self._advertise()
            await asyncio.sleep(0.005)


@dataclass
class Cycle:
    """What one fault cycle counted."""

    before: int = 0
    during: int = 0
    after: int = 0
    unheard: int = 0
    restarts: int = 0
    fds: int = 0
    tasks: int = 0


@dataclass
class Harness:
    """A source scanning through the fake bluetoothd, a beacon, and a consumer counting."""

    bluez: FakeBluez
    source: BleakSource
    beacon: Beacon
    events: Events
    received: list[int] = field(default_factory=list)

    async def consume(self) -> None:
        async with contextlib.aclosing(self.source.sightings()) as sightings:
            async for sighting in sightings:
                self.received.append(sequence_of(sighting))

    async def phase(self, wanted: int, what: str) -> int:
        """Let the beacon advertise until ``wanted`` sightings arrived; pause it, drain.

        Returns the sightings delivered in this phase (every advert sent was delivered).
        """
        start = len(self.received)
        self.beacon.paused = False
        await until(lambda: len(self.received) - start >= wanted, what)
        self.beacon.paused = True
        await until(
            lambda: len(self.received) == self.beacon.sent, f"every advert of {what} delivered"
        )
        return len(self.received) - start

    async def cycle(self, fault: Fault) -> Cycle:
        """Sightings before, the fault (noticed by the source), the repair, sightings after."""
        counted = Cycle()
        source = self.source
        restarts, retries = source.stats.scanner_restarts, source.stats.start_retries
        counted.before = await self.phase(SIGHTINGS_PER_PHASE, "sightings before the fault")
        unheard, delivered = self.beacon.unheard, len(self.received)
        self.beacon.paused, self.beacon.unheard_only = False, True  # on air, nobody listening
        await fault.inject()
        await until(lambda: source.stats.scanner_restarts > restarts, "a scanner restart")
        if fault.outage is not None:
            expected = fault.outage
            await until(
                lambda: (outage := source.outage()) is not None and outage.reason is expected,
                f"the source to report the outage as {expected}",
            )
            # it waits and retries meanwhile
            await until(lambda: source.stats.start_retries > retries, "a failed start, retried")
        self.beacon.paused, self.beacon.unheard_only = True, False
        counted.during = len(self.received) - delivered
        counted.unheard = self.beacon.unheard - unheard
        await fault.repair()
        await until(self.bluez.listening, "scanning to resume")
        counted.after = await self.phase(SIGHTINGS_PER_PHASE, "sightings after the repair")
        await until(lambda: source.outage() is None, "the outage to end")
        counted.restarts = source.stats.scanner_restarts - restarts
        counted.fds = open_fds(os.getpid())
        counted.tasks = len(asyncio.all_tasks())
        return counted


@dataclass(frozen=True)
class Fault:
    """How to break things, how to repair them, and the outage the source should report."""

    inject: Callable[[], Awaitable[None]]
    repair: Callable[[], Awaitable[None]]
    outage: SourceErrorReason | None


async def nothing() -> None:
    """No repair: the source restarts discovery itself."""


def source_for_faults(events: Events, **settings: Any) -> BleakSource:
    return BleakSource(
        **{
            **FAST,
            "watchdog_timeout_s": SILENCE_NEVER_S,
            "watchdog_interval_s": 0.05,
            "adapter_check_interval_s": 0.02,
            "duplicate_window_s": 0,
            "on_event": events,
            **settings,
        }
    )


SILENCE_NEVER_S: Final = 3600.0
"""A silence watchdog that never fires within a test: recovery must come from the adapter's
state (before the fix, a powered-off-and-on or re-added adapter waited for the silence)."""


async def run_cycles(
    bus: str, fault_of: Callable[[FakeBluez, int], Fault], **settings: Any
) -> tuple[list[Cycle], Harness]:
    """Start everything, run :data:`CYCLES` cycles of ``fault_of(bluez, n)``, stop everything."""
    events = Events()
    async with FakeBluez(bus) as bluez:
        harness = Harness(bluez, source_for_faults(events, **settings), Beacon(bluez), events)
        beacon = asyncio.create_task(harness.beacon.run(), name="beacon")
        consumer = asyncio.create_task(harness.consume(), name="consumer")
        try:
            await until(bluez.listening, "scanning to start")
            cycles = [await harness.cycle(fault_of(bluez, number)) for number in range(CYCLES)]
        finally:
            beacon.cancel()
            consumer.cancel()
            await asyncio.wait({beacon, consumer})
    return cycles, harness


def check_cycles(cycles: list[Cycle]) -> None:
    """Every cycle resumed, lost nothing heard, and left no fd or task behind."""
    assert len(cycles) == CYCLES
    for cycle in cycles:
        assert cycle.before >= SIGHTINGS_PER_PHASE
        assert cycle.during == 0  # nothing could hear
        assert cycle.after >= SIGHTINGS_PER_PHASE  # scanning resumed
        assert cycle.restarts >= 1
    assert {cycle.fds for cycle in cycles} == {cycles[0].fds}, [c.fds for c in cycles]
    assert {cycle.tasks for cycle in cycles} == {cycles[0].tasks}, [c.tasks for c in cycles]


def figures(cycles: list[Cycle], fds: tuple[int, int]) -> dict[str, int | str]:
    return {
        "cycles": len(cycles),
        "sightings_before": sum(c.before for c in cycles),
        "sightings_during": sum(c.during for c in cycles),
        "sightings_after": sum(c.after for c in cycles),
        "min_after_per_cycle": min(c.after for c in cycles),
        "adverts_unheard": sum(c.unheard for c in cycles),
        "restarts": sum(c.restarts for c in cycles),
        "resumed": f"{sum(c.after > 0 for c in cycles)}/{len(cycles)}",
        "fds_start": fds[0],
        "fds_end": fds[1],
        "fds_per_cycle": cycles[-1].fds,
        "tasks_per_cycle": cycles[-1].tasks,
    }


def restart_reasons(events: Events) -> list[str]:
    return [str(fields["reason"]) for fields in events.named("scanner_restart")]


def counted_run(
    bus: str, fault_of: Callable[[FakeBluez, int], Fault], **settings: Any
) -> tuple[list[Cycle], Harness, tuple[int, int]]:
    """:func:`run_cycles` in its own event loop, with the process's fds counted around it."""
    before = open_fds(os.getpid())
    cycles, harness = run(lambda: run_cycles(bus, fault_of, **settings))
    after = open_fds(os.getpid())
    check_cycles(cycles)
    assert harness.source.outage() is None
    assert after == before  # the source, bleak and the fake bluetoothd released every fd
    return cycles, harness, (before, after)


# =========================================================================== the faults


def test_bluetoothd_vanishing_and_returning_again_and_again(
    system_bus: str, fault_report: FaultReport
) -> None:
    def fault_of(bluez: FakeBluez, number: int) -> Fault:
        graceful = number % 2 == 1  # crash, systemctl restart, crash, ...

        async def inject() -> None:
            await bluez.stop(graceful=graceful)

        return Fault(
            inject,
            bluez.start,
            SourceErrorReason.ADAPTER_MISSING if graceful else SourceErrorReason.NO_BLUETOOTH,
        )

    # a crash leaves bleak's cache stale: only the silence watchdog can notice it
    cycles, harness, fds = counted_run(system_bus, fault_of, watchdog_timeout_s=0.3)
    reasons = restart_reasons(harness.events)
    crashes = (CYCLES + 1) // 2
    assert reasons.count("watchdog") >= crashes
    assert reasons.count("adapter-missing") >= CYCLES - crashes
    assert harness.bluez.generation == CYCLES + 1  # a new bluetoothd each cycle
    fault_report.record(
        "bluetoothd vanishing and returning",
        f"bluetoothd crashed / stopped cleanly and restarted, alternately, {CYCLES} times "
        "during one scan (bleak's real BlueZ backend, fake bluetoothd)",
        **figures(cycles, fds),
        crashes=crashes,
        clean_stops=CYCLES - crashes,
    )


def test_adapter_powered_off_and_on_mid_scan(system_bus: str, fault_report: FaultReport) -> None:
    def fault_of(bluez: FakeBluez, _number: int) -> Fault:
        adapter = bluez.adapters["hci0"]

        async def off() -> None:
            adapter.set_powered(powered=False)  # Powered and Discovering go false

        async def on() -> None:
            adapter.set_powered(powered=True)

        return Fault(off, on, SourceErrorReason.POWERED_OFF)

    cycles, harness, fds = counted_run(system_bus, fault_of)
    assert set(restart_reasons(harness.events)) == {"powered-off"}
    assert harness.source.stats.adapter_restarts == harness.source.stats.scanner_restarts
    retries = harness.events.named("scanner_start_retry")
    assert retries
    assert all("NotReady" in str(fields["error"]) for fields in retries)
    restart = harness.events.named("scanner_restart")[0]
    assert "powered off" in str(restart["detail"])
    assert "bluetoothctl power on" in str(restart["detail"])
    fault_report.record(
        "adapter powered off mid-scan",
        f"Powered=false (Discovering=false) then Powered=true, {CYCLES} times during one scan; "
        "the silence watchdog is out of reach, so recovery comes from the adapter's state",
        **figures(cycles, fds),
        start_retries_while_off=len(retries),
    )


def test_adapter_removed_and_added_again(system_bus: str, fault_report: FaultReport) -> None:
    def fault_of(bluez: FakeBluez, _number: int) -> Fault:
        async def unplug() -> None:
            bluez.remove_adapter("hci0")  # InterfacesRemoved for its devices and itself

        async def plug() -> None:
            bluez.add_adapter("hci0")  # InterfacesAdded: a new adapter object

        return Fault(unplug, plug, SourceErrorReason.ADAPTER_MISSING)

    cycles, harness, fds = counted_run(system_bus, fault_of)
    assert set(restart_reasons(harness.events)) == {"adapter-missing"}
    assert all(
        "not found" in str(fields["error"])
        for fields in harness.events.named("scanner_start_retry")
    )
    fault_report.record(
        "adapter removed and added again",
        f"InterfacesRemoved of the adapter (and its devices), then InterfacesAdded, {CYCLES} "
        "times during one scan",
        **figures(cycles, fds),
    )


def test_discovery_stopped_behind_our_back(system_bus: str, fault_report: FaultReport) -> None:
    def fault_of(bluez: FakeBluez, _number: int) -> Fault:
        adapter = bluez.adapters["hci0"]

        async def stop() -> None:
            adapter.stop_discovering()  # Discovering=false, still powered

        return Fault(stop, nothing, None)

    cycles, harness, fds = counted_run(system_bus, fault_of)
    assert set(restart_reasons(harness.events)) == {"discovery-stopped"}
    # our session was gone: bluetoothd refused the stop, and the start that followed worked
    assert len(harness.events.named("scanner_stop_failed")) == CYCLES
    fault_report.record(
        "discovery stopped behind our back",
        f"Discovering=false without a power change, {CYCLES} times during one scan",
        **figures(cycles, fds),
        stop_failures=len(harness.events.named("scanner_stop_failed")),
    )


# =========================================================================== health


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Stub:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def daemon_over(source: BleakSource, monotonic: Clock) -> Daemon:
    """A daemon around ``source`` whose outbox and broker are healthy stubs (health only)."""
    outbox: Any = _Stub(stats=lambda: _Stub(depth=0), health=OutboxHealth.OK, last_error=None)
    publisher: Any = _Stub(stats=lambda: _Stub(state="connected", connected=True, last_error=None))
    stub: Any = None
    return Daemon(
        stub, source, stub, outbox, publisher, finite=False, horizon_s=0.0, monotonic=monotonic
    )


def test_an_adapter_off_past_the_limit_makes_health_say_so_but_keeps_the_gateway(
    system_bus: str, fault_report: FaultReport
) -> None:
    source_clock, daemon_clock = Clock(), Clock()
    seen: dict[str, Any] = {}

    async def main() -> None:
        events = Events()
        async with FakeBluez(system_bus) as bluez:
            source = source_for_faults(events, monotonic=source_clock)
            daemon = daemon_over(source, daemon_clock)
            async with source:
                adapter = bluez.adapters["hci0"]
                assert daemon.health()[0] is True
                daemon.counts.last_sighting_mono = daemon_clock.now
                adapter.set_powered(powered=False)
                await until(
                    lambda: (
                        (outage := source.outage()) is not None
                        and outage.reason is SourceErrorReason.POWERED_OFF
                    ),
                    "the powered-off outage",
                )
                ready, checks = daemon.health()
                assert ready is True  # a short outage is a blip
                assert str(checks["source_outage"]).startswith("powered-off for 0 s")

                source_clock.now += SOURCE_OUTAGE_LIMIT_S + 1  # off past the limit
                daemon_clock.now += 600  # and silent far past ADVERT_STALE_S
                ready, checks = daemon.health()
                seen["checks"] = checks
                assert ready is False
                assert str(checks["source_outage"]).startswith(
                    f"powered-off for {SOURCE_OUTAGE_LIMIT_S + 1:.0f} s"
                )
                assert "bluetoothctl power on" in str(checks["source_outage"])
                assert daemon.alive() is True  # a process restart cannot power it on

                adapter.set_powered(powered=True)
                await until(bluez.listening, "scanning to resume")
                await until(lambda: source.outage() is None, "the outage to end")
                assert daemon.health()[0] is True
                assert daemon.alive() is False  # silent, and no outage explains it
                seen["resumed"] = events.named("scanner_resumed")[-1]

    run(main)
    fault_report.record(
        "adapter powered off past the health limit",
        f"adapter off for more than SOURCE_OUTAGE_LIMIT_S = {SOURCE_OUTAGE_LIMIT_S:.0f} s "
        "(hand-moved clocks): /healthz unready with the reason, systemd watchdog still fed",
        health_ready_past_limit=0,
        alive_past_limit=1,
        resumed=1,
        resumed_reason=str(seen["resumed"]["reason"]),
    )


def test_adapter_state_readings_follow_bluez(system_bus: str) -> None:
    """The cache readings the watchdog acts on, against bleak's real backend."""

    async def main() -> None:
        async with FakeBluez(system_bus) as bluez:
            source = source_for_faults(Events())
            assert source._read_adapter_state() is AdapterState.UNKNOWN  # no manager yet
            async with source:
                adapter = bluez.adapters["hci0"]
                await until(lambda: source._read_adapter_state() is AdapterState.OK, "ok")
                adapter.stop_discovering()
                await until(
                    lambda: source._read_adapter_state() is AdapterState.NOT_DISCOVERING,
                    "discovery-stopped",
                )
                adapter.set_powered(powered=False)
                await until(
                    lambda: source._read_adapter_state() is AdapterState.POWERED_OFF,
                    "powered-off",
                )
                bluez.remove_adapter("hci0")
                await until(lambda: source._read_adapter_state() is AdapterState.MISSING, "missing")
                bluez.add_adapter("hci0")

    run(main)
