"""BleakSource: bleak's real BlueZ backend against a fake bluetoothd, plus backend-level units.

The first half runs bleak's real BlueZ backend against :mod:`tests.gateway.fake_bluez` on a
private dbus-daemon (``DBUS_SYSTEM_BUS_ADDRESS`` points at it). The second half plugs a fake
``BaseBleakScanner`` in through ``backend=`` (option A of the platform notes) for queueing,
de-duplication, stats, the watchdog and cleanup. No test asserts on wall-clock time; the small
watchdog and backoff settings only keep the file fast, and timeouts only guard against hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import structlog.testing
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.bluezdbus import manager as bluez_manager
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from gateway.sources.base import EDDYSTONE_SERVICE_UUID, SourceError, SourceErrorReason
from gateway.sources.bleak_scanner import (
    EDDYSTONE_OR_PATTERN,
    BleakSource,
    BleakSourceStats,
    bluez_args,
    log_event,
)
from gateway.sources.bluez_state import AdapterState
from tests.gateway.fake_bluez import (
    IN_PROGRESS,
    FakeBluez,
    FakeDevice,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

    from gateway.core.sighting import Sighting
    from gateway.sources.base import SightingSource

T = TypeVar("T")

EID_A = bytes.fromhex("30ee0011223344556677")
EID_B = bytes.fromhex("30ee8899aabbccddeeff")
UID = bytes.fromhex("00ee" + "0102030405060708090a" + "0b0c0d0e0f10" + "0000")
OTHER_SERVICE = "0000fe9f-0000-1000-8000-00805f9b34fb"
BEACON = "C4:7C:8D:6A:11:22"
OTHER_BEACON = "D1:22:33:44:55:66"
PHONE = "5A:11:22:33:44:55"

FAST: dict[str, Any] = {
    "gateway": "gw-test",
    "adapter": "hci0",
    "clock": lambda: 1234.5,
    "rng": lambda: 0.0,
    "backoff_base_s": 0.02,
    "backoff_cap_s": 0.1,
    "startup_timeout_s": 3.0,
    "start_timeout_s": 3.0,
    "stop_timeout_s": 3.0,
}
"""Settings that keep the tests quick; the watchdog stays at its default unless a test needs it."""


class Events:
    """An ``on_event`` hook that keeps what it hears."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []

    def __call__(self, name: str, fields: dict[str, object]) -> None:
        self.seen.append((name, fields))

    def named(self, name: str) -> list[dict[str, object]]:
        return [fields for event, fields in self.seen if event == name]


def make_source(**settings: Any) -> BleakSource:
    return BleakSource(**{**FAST, **settings})


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run`` that also drops bleak's BlueZ manager for the loop before it closes.

    bleak keeps one ``BlueZManager`` per event loop (``_global_instances``) with a bus connection
    and a watcher task that nothing closes; closing them here keeps each test independent and
    leaves no socket or pending task behind.
    """

    async def wrapper() -> T:
        try:
            return await main()
        finally:
            await drop_bleak_manager()

    return asyncio.run(wrapper())


async def drop_bleak_manager() -> None:
    manager = bluez_manager._global_instances.pop(asyncio.get_running_loop(), None)
    if manager is None:
        return
    bus = manager._bus
    if bus is not None:
        bus.disconnect()
    watcher = manager._bus_watcher_task
    if watcher is not None:
        await asyncio.wait({watcher})


async def next_sighting(sightings: AsyncIterator[Sighting]) -> Sighting:
    async with asyncio.timeout(5):  # a hang guard, not a timing assertion
        return await anext(sightings)


# =========================================================================== real BlueZ backend


def test_active_mode_sets_le_filter_with_duplicate_data_and_stops_cleanly(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus) as bluez:
            adapter = bluez.adapters["hci0"]
            async with make_source():
                assert adapter.calls == [
                    ("SetDiscoveryFilter", {"Transport": "le", "DuplicateData": True}),
                    ("StartDiscovery", None),
                ]
            # bleak stops discovery and clears our filter
            assert adapter.calls[2:] == [("StopDiscovery", None), ("SetDiscoveryFilter", {})]

    run(main)


def test_duplicate_data_can_be_turned_off(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus) as bluez, make_source(duplicate_data=False):
            assert bluez.adapters["hci0"].calls[0] == (
                "SetDiscoveryFilter",
                {"Transport": "le", "DuplicateData": False},
            )

    run(main)


def test_adverts_rssi_updates_and_new_eids_arrive_as_sightings(system_bus: str) -> None:
    async def main() -> None:
        async with (
            FakeBluez(system_bus) as bluez,
            make_source() as source,
            contextlib.aclosing(source.sightings()) as sightings,
        ):
            device = bluez.add_device(
                BEACON, rssi=-61, tx_power=-4, service_data={EDDYSTONE_SERVICE_UUID: EID_A}
            )
            first = await next_sighting(sightings)
            assert (first.address, first.rssi, first.service_data) == (BEACON, -61, EID_A)
            assert (first.at, first.gateway, first.tx_power) == (1234.5, "gw-test", -4)
            assert first.source == source.name == "bleak:hci0"

            device.advertise(rssi=-70)  # bluetoothd re-signals RSSI alone
            moved = await next_sighting(sightings)
            assert (moved.rssi, moved.service_data) == (-70, EID_A)

            device.advertise(service_data={EDDYSTONE_SERVICE_UUID: EID_B})  # the EID rotated
            rotated = await next_sighting(sightings)
            assert (rotated.rssi, rotated.service_data) == (-70, EID_B)

            bluez.add_device(
                PHONE,
                service_data={OTHER_SERVICE: b"\x01\x02"},
                manufacturer_data={0x004C: b"\x02\x15"},
            )
            bluez.add_device(OTHER_BEACON, rssi=-80, service_data={EDDYSTONE_SERVICE_UUID: UID})
            other = await next_sighting(sightings)  # the phone in between was skipped
            assert (other.address, other.service_data, other.tx_power) == (OTHER_BEACON, UID, None)

            assert source.stats == BleakSourceStats(
                adverts=5, eddystone_sightings=4, non_eddystone_ignored=1, last_advert_at=1234.5
            )

    run(main)


def test_a_connected_change_resending_the_cached_advert_is_dropped(system_bus: str) -> None:
    async def main() -> None:
        async with (
            FakeBluez(system_bus) as bluez,
            make_source() as source,
            contextlib.aclosing(source.sightings()) as sightings,
        ):
            device = bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_A})
            await next_sighting(sightings)
            device.set_connected(connected=True)  # bleak calls back with the old ServiceData
            await wait_until(lambda: source.stats.duplicates_dropped == 1)
            device.advertise(rssi=-75)
            assert (await next_sighting(sightings)).rssi == -75

    run(main)


def test_in_progress_from_start_discovery_is_retried(system_bus: str) -> None:
    events = Events()

    async def main() -> None:
        async with FakeBluez(system_bus) as bluez:
            adapter = bluez.adapters["hci0"]
            adapter.fail_next(
                "StartDiscovery", IN_PROGRESS, "Operation already in progress", times=2
            )
            async with (
                make_source(on_event=events) as source,
                contextlib.aclosing(source.sightings()) as sightings,
            ):
                assert adapter.count("StartDiscovery") == 3
                assert source.stats.start_retries == 2
                retries = events.named("scanner_start_retry")
                assert [fields["attempt"] for fields in retries] == [1, 2]
                assert all(IN_PROGRESS in str(fields["error"]) for fields in retries)
                assert events.named("scanner_started")[0]["attempts"] == 3

                bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_A})
                assert (await next_sighting(sightings)).service_data == EID_A

    run(main)


@pytest.mark.parametrize("graceful", [False, True], ids=["crash", "systemctl-restart"])
def test_bluetoothd_going_away_and_coming_back_is_survived(system_bus: str, graceful: bool) -> None:
    events = Events()

    async def beacon(device: FakeDevice) -> None:
        """A beacon keeps advertising (a restart may stop the scanner during one advert)."""
        for n in range(10_000):
            device.advertise(rssi=-60 - n % 2)
            await asyncio.sleep(0.02)

    async def main() -> None:
        source = make_source(
            watchdog_timeout_s=0.3, watchdog_interval_s=0.05, duplicate_window_s=0, on_event=events
        )
        async with (
            FakeBluez(system_bus) as bluez,
            source,
            contextlib.aclosing(source.sightings()) as sightings,
        ):
            bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_A})
            await next_sighting(sightings)
            old_adapter = bluez.adapters["hci0"]

            await bluez.stop(graceful=graceful)
            # the watchdog notices the silence and retries while bluetoothd is away
            await wait_until(lambda: source.stats.start_retries >= 1)
            assert source.stats.scanner_restarts >= 1
            assert events.named("scanner_stop_failed")  # the old session died with bluetoothd

            await bluez.start()  # a new bluetoothd, with new adapter objects
            new_adapter = bluez.adapters["hci0"]
            assert new_adapter is not old_adapter
            await wait_until(lambda: new_adapter.count("StartDiscovery") >= 1)

            device = bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_B})
            advertising = asyncio.create_task(beacon(device))
            try:
                while (sighting := await next_sighting(sightings)).service_data != EID_B:
                    pass
            finally:
                advertising.cancel()
                await asyncio.wait({advertising})
            assert sighting.address == BEACON
            assert ("SetDiscoveryFilter", {"Transport": "le", "DuplicateData": True}) in (
                new_adapter.calls
            )
            # a crash leaves bleak's cache stale: only the silence shows it; a clean stop
            # removes the adapter object, which the watchdog acts on at once
            expected = "adapter-missing" if graceful else "watchdog"
            assert events.named("scanner_restart")[0]["reason"] == expected

    run(main)


def test_powered_off_default_adapter_is_a_clear_error(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus, powered=False) as bluez:
            source = make_source(adapter=None)
            with pytest.raises(SourceError) as caught:
                await source.start()
            assert caught.value.reason is SourceErrorReason.POWERED_OFF
            assert "bluetoothctl power on" in str(caught.value)
            assert "rfkill" in str(caught.value)
            assert bluez.adapters["hci0"].calls == []
            assert source.stats.start_retries == 0

    run(main)


def test_powered_off_named_adapter_is_a_clear_error(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus, powered=False) as bluez:
            source = make_source()
            with pytest.raises(SourceError) as caught:
                await source.start()
            # bleak does not check Powered for a named adapter; bluetoothd answers NotReady
            assert caught.value.reason is SourceErrorReason.POWERED_OFF
            assert "'hci0' is powered off" in str(caught.value)
            assert "bluetoothctl power on" in str(caught.value)
            assert bluez.adapters["hci0"].count("StartDiscovery") == 0
            assert source.stats.start_retries == 0

    run(main)


def test_missing_adapter_is_a_clear_error(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus):
            source = make_source(adapter="hci1")
            with pytest.raises(SourceError) as caught:
                await source.start()
            assert caught.value.reason is SourceErrorReason.ADAPTER_MISSING
            assert "'hci1' not found" in str(caught.value)
            assert source.stats.start_retries == 0

    run(main)


def test_no_adapter_at_all_is_no_bluetooth(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus, adapters=()):
            with pytest.raises(SourceError) as caught:
                await make_source(adapter=None).start()
            assert caught.value.reason is SourceErrorReason.NO_BLUETOOTH

    run(main)


@pytest.mark.usefixtures("system_bus")
def test_bluetoothd_absent_at_startup_gives_up_after_the_startup_timeout() -> None:
    ticks = itertools.count()

    async def main() -> None:
        # a monotonic clock that moves 0.05 s per look: the give-up point is deterministic
        source = make_source(startup_timeout_s=0.3, monotonic=lambda: next(ticks) * 0.05)
        with pytest.raises(SourceError) as caught:
            await source.start()
        assert caught.value.reason is SourceErrorReason.NO_BLUETOOTH
        assert "bluetoothd is not running" in str(caught.value)
        assert source.stats.start_retries >= 1

    run(main)


def test_bluetoothd_starting_late_is_waited_for(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus, start=False) as bluez:
            source = make_source()
            starting = asyncio.create_task(source.start())
            await wait_until(lambda: source.stats.start_retries >= 1)
            await bluez.start()
            await starting
            async with contextlib.aclosing(source.sightings()) as sightings:
                bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_A})
                assert (await next_sighting(sightings)).address == BEACON

    run(main)


def test_unexpected_bluez_error_at_startup_is_fatal(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus) as bluez:
            bluez.adapters["hci0"].fail_next("SetDiscoveryFilter", "org.bluez.Error.NotSupported")
            source = make_source()
            with pytest.raises(SourceError) as caught:
                await source.start()
            assert caught.value.reason is SourceErrorReason.SCAN_FAILED
            assert "org.bluez.Error.NotSupported" in str(caught.value)
            assert source.stats.start_retries == 0

    run(main)


def test_passive_mode_registers_an_eddystone_advertisement_monitor(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus) as bluez:
            monitors = bluez.monitor_managers["hci0"]
            source = make_source(mode="passive")
            async with source, contextlib.aclosing(source.sightings()) as sightings:
                assert await bluez.monitor_patterns() == [
                    (0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe")
                ]
                assert bluez.adapters["hci0"].calls == []  # no discovery session, no filters
                bluez.add_device(BEACON, service_data={EDDYSTONE_SERVICE_UUID: EID_A})
                assert (await next_sighting(sightings)).service_data == EID_A
            assert [call for call, _ in monitors.calls] == ["RegisterMonitor", "UnregisterMonitor"]
            assert monitors.registered == {}

    run(main)


def test_passive_mode_without_bluez_experimental_says_how_to_enable_it(system_bus: str) -> None:
    async def main() -> None:
        async with FakeBluez(system_bus, experimental=False):
            with pytest.raises(SourceError) as caught:
                await make_source(mode="passive").start()
            assert caught.value.reason is SourceErrorReason.SCAN_FAILED
            assert "Experimental = true" in str(caught.value)

    run(main)


# =========================================================================== fake backend


class FakeScanner(BaseBleakScanner):
    """A bleak backend without a radio: records start/stop, injects adverts and start errors."""

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str,
        *,
        bluez: dict[str, object],
        **_kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.mode = scanning_mode
        self.bluez = bluez
        self.starts = 0
        self.stops = 0
        self.running = False
        self.start_errors: list[Exception] = []
        self.hang_next_start = False

    async def start(self) -> None:
        self.starts += 1
        if self.hang_next_start:
            self.hang_next_start = False
            await asyncio.sleep(3600)
        if self.start_errors:
            raise self.start_errors.pop(0)
        self.running = True

    async def stop(self) -> None:
        self.stops += 1
        self.running = False

    def advert(
        self,
        address: str = BEACON,
        *,
        rssi: int = -60,
        frame: bytes | None = EID_A,
        tx_power: int | None = None,
    ) -> None:
        service_data = {} if frame is None else {EDDYSTONE_SERVICE_UUID: frame}
        adv = AdvertisementData(
            local_name=None,
            manufacturer_data={},
            service_data=service_data,
            service_uuids=[],
            tx_power=tx_power,
            rssi=rssi,
            platform_data=(),
        )
        device = self.create_or_update_device(address, address, None, {}, adv)
        self.call_detection_callbacks(device, adv)


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_source(**settings: Any) -> BleakSource:
    return make_source(backend=FakeScanner, **settings)


def scanner_of(source: BleakSource) -> FakeScanner:
    backend = source._scanner._backend
    assert isinstance(backend, FakeScanner)
    return backend


def test_is_a_sighting_source() -> None:
    source: SightingSource = fake_source()
    assert source.name == "bleak:hci0"
    assert fake_source(adapter=None).name == "bleak:default"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"adapter": "hci0", "filters": {"DuplicateData": True}}),
        ({"duplicate_data": False}, {"adapter": "hci0", "filters": {"DuplicateData": False}}),
        ({"adapter": None}, {"filters": {"DuplicateData": True}}),
        ({"mode": "passive"}, {"adapter": "hci0", "or_patterns": [EDDYSTONE_OR_PATTERN]}),
    ],
)
def test_bluez_args_follow_the_settings(settings: dict[str, Any], expected: dict[str, Any]) -> None:
    source = fake_source(**settings)
    assert source.bluez_args == expected
    scanner = scanner_of(source)
    assert scanner.bluez == expected
    assert scanner.mode == settings.get("mode", "active")


def test_passive_pattern_is_eddystone_service_data() -> None:
    expected = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe")
    assert expected == EDDYSTONE_OR_PATTERN
    assert bluez_args(adapter=None, mode="passive", duplicate_data=True) == {
        "or_patterns": [EDDYSTONE_OR_PATTERN]
    }


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "sideways"},
        {"queue_size": 0},
        {"watchdog_timeout_s": 0},
        {"watchdog_interval_s": -1},
        {"backoff_base_s": 0},
        {"start_timeout_s": 0},
        {"duplicate_window_s": -0.1},
        {"startup_timeout_s": -1},
    ],
)
def test_bad_settings_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        fake_source(**settings)


def test_backoff_doubles_up_to_the_cap_minus_jitter() -> None:
    exact = fake_source(backoff_base_s=1.0, backoff_cap_s=8.0, rng=lambda: 0.0)
    assert [exact.backoff_delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert exact.backoff_delay(100_000) == 8.0
    jittered = fake_source(backoff_base_s=1.0, backoff_cap_s=8.0, rng=lambda: 1.0)
    assert [jittered.backoff_delay(n) for n in range(1, 5)] == pytest.approx([0.8, 1.6, 3.2, 6.4])


def test_each_sighting_is_stamped_once_by_the_clock() -> None:
    ticks = iter(range(1, 100))

    async def main() -> None:
        async with fake_source(clock=lambda: float(next(ticks))) as source:
            scanner = scanner_of(source)
            scanner.advert(rssi=-60)
            scanner.advert(frame=None)
            scanner.advert(rssi=-61)
            async with contextlib.aclosing(source.sightings()) as sightings:
                assert [(await next_sighting(sightings)).at for _ in range(2)] == [1.0, 3.0]
            assert source.stats.last_advert_at == 3.0

    run(main)


def test_queue_overflow_drops_the_oldest_and_reports_it_rate_limited() -> None:
    events = Events()
    time = FakeTime()

    async def main() -> None:
        source = fake_source(queue_size=3, monotonic=time, on_event=events)
        async with source:
            scanner = scanner_of(source)
            for n in range(5):
                scanner.advert(rssi=-61 - n)
            assert source.stats.queue_overflow_drops == 2
            assert events.named("queue_overflow") == [
                {"source": "bleak:hci0", "dropped_total": 1, "queue_size": 3}
            ]
            time.now += 10.0
            scanner.advert(rssi=-70)
            assert [fields["dropped_total"] for fields in events.named("queue_overflow")] == [1, 3]
            async with contextlib.aclosing(source.sightings()) as sightings:
                assert [(await next_sighting(sightings)).rssi for _ in range(3)] == [-64, -65, -70]
            assert source.stats.eddystone_sightings == 6

    run(main)


def test_repeats_of_the_last_sighting_are_dropped_within_the_window() -> None:
    time = FakeTime()

    async def main() -> None:
        source = fake_source(monotonic=time, duplicate_window_s=1.0)
        async with source:
            scanner = scanner_of(source)
            scanner.advert(rssi=-60)  # queued
            scanner.advert(rssi=-60)  # same frame and RSSI: dropped
            time.now += 0.5
            scanner.advert(rssi=-60)  # still within the window: dropped
            time.now += 0.6
            scanner.advert(rssi=-60)  # 1.1 s after the last queued one: queued
            scanner.advert(rssi=-61)  # RSSI moved: queued
            scanner.advert(rssi=-61, frame=EID_B)  # new EID: queued
            scanner.advert(OTHER_BEACON, rssi=-61, frame=EID_B)  # another address: queued
            assert source.stats.duplicates_dropped == 2
            assert source.stats.eddystone_sightings == 5
            assert source.stats.adverts == 7

    run(main)


def test_a_zero_window_keeps_every_repeat() -> None:
    async def main() -> None:
        async with fake_source(duplicate_window_s=0) as source:
            for _ in range(3):
                scanner_of(source).advert()
            assert source.stats.eddystone_sightings == 3
            assert source.stats.duplicates_dropped == 0

    run(main)


def test_the_duplicate_table_forgets_quiet_addresses() -> None:
    time = FakeTime()

    async def main() -> None:
        async with fake_source(monotonic=time, duplicate_window_s=1.0) as source:
            scanner = scanner_of(source)
            for n in range(50):  # rotating private addresses
                scanner.advert(f"7A:00:00:00:00:{n:02X}")
            assert len(source._recent) == 50
            time.now += 1.5
            scanner.advert(BEACON)
            assert list(source._recent) == [BEACON]

    run(main)


def test_stats_add_up_and_are_a_frozen_snapshot() -> None:
    async def main() -> None:
        async with fake_source() as source:
            scanner = scanner_of(source)
            scanner.advert(rssi=-60)
            scanner.advert(rssi=-60)
            scanner.advert(frame=None)
            scanner.advert(OTHER_BEACON, frame=UID)
            stats = source.stats
            assert stats == BleakSourceStats(
                adverts=4,
                eddystone_sightings=2,
                non_eddystone_ignored=1,
                duplicates_dropped=1,
                last_advert_at=1234.5,
            )
            with pytest.raises(dataclasses.FrozenInstanceError):
                stats.adverts = 0  # type: ignore[misc]
            scanner.advert(rssi=-99)
            assert stats.adverts == 4  # a snapshot, not a view
            assert "30ee" not in repr(stats)

    run(main)


def test_cancelling_the_consumer_stops_the_scanner_and_the_watchdog() -> None:
    async def main() -> None:
        source = fake_source()

        async def consume() -> None:
            async for _ in source.sightings():
                pass

        consumer = asyncio.create_task(consume())
        await wait_until(lambda: source._watchdog is not None)
        scanner = scanner_of(source)
        assert scanner.running
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert (scanner.running, scanner.stops) == (False, 1)
        assert source._watchdog is None
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main)


def test_closing_the_iterator_stops_everything() -> None:
    async def main() -> None:
        source = fake_source()
        await source.start()
        scanner = scanner_of(source)
        scanner.advert()
        async with contextlib.aclosing(source.sightings()) as sightings:
            assert (await next_sighting(sightings)).service_data == EID_A
        assert (scanner.running, scanner.stops) == (False, 1)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        with pytest.raises(RuntimeError, match="closed"):
            await source.start()

    run(main)


def test_close_ends_a_waiting_consumer_and_is_idempotent() -> None:
    async def main() -> None:
        source = fake_source()
        await source.start()
        scanner_of(source).advert()
        got: list[Sighting] = []

        async def consume() -> None:
            got.extend([sighting async for sighting in source.sightings()])

        consumer = asyncio.create_task(consume())
        await wait_until(lambda: len(got) == 0 and source._queue.empty())
        await source.close()
        await source.close()
        await consumer  # ended by close(), after the queued sighting
        assert [sighting.service_data for sighting in got] == [EID_A]
        assert scanner_of(source).stops == 1

    run(main)


def test_only_one_iteration_at_a_time() -> None:
    async def main() -> None:
        async with fake_source() as source:
            first = source.sightings()
            scanner_of(source).advert()
            await next_sighting(first)
            with pytest.raises(RuntimeError, match="already being iterated"):
                await anext(source.sightings())
            await first.aclose()

    run(main)


def test_the_watchdog_restarts_a_silent_scanner() -> None:
    events = Events()

    async def main() -> None:
        source = fake_source(watchdog_timeout_s=0.05, watchdog_interval_s=0.01, on_event=events)
        async with source, contextlib.aclosing(source.sightings()) as sightings:
            scanner = scanner_of(source)
            await wait_until(lambda: source.stats.scanner_restarts >= 1 and scanner.running)
            assert scanner.starts >= 2
            assert scanner.stops >= 1
            restart = events.named("scanner_restart")[0]
            assert restart["reason"] == "watchdog"
            assert isinstance(restart["silent_for_s"], float)
            scanner.advert()
            assert (await next_sighting(sightings)).address == BEACON

    run(main)


class AdapterReadings:
    """An ``adapter_state`` callable the test sets by hand; counts its readings."""

    def __init__(self, state: AdapterState = AdapterState.OK) -> None:
        self.state = state
        self.reads = 0

    def __call__(self) -> AdapterState:
        self.reads += 1
        return self.state


def test_an_adapter_state_down_restarts_the_scanner_without_waiting_for_silence() -> None:
    events = Events()
    adapter = AdapterReadings()

    async def main() -> None:
        source = fake_source(
            watchdog_timeout_s=3600,
            adapter_check_interval_s=0.01,
            adapter_state=adapter,
            on_event=events,
        )
        async with source:
            scanner = scanner_of(source)
            adapter.state = AdapterState.NOT_DISCOVERING
            await wait_until(lambda: source.stats.scanner_restarts == 1)
            adapter.state = AdapterState.OK
            await wait_until(lambda: scanner.running and source.outage() is None)
            assert (scanner.starts, scanner.stops) == (2, 1)
            assert source.stats.adapter_restarts == 1
            restart = events.named("scanner_restart")[0]
            assert restart["reason"] == "discovery-stopped"
            assert "discovery on 'hci0' stopped" in str(restart["detail"])
            assert events.named("scanner_resumed")[0]["reason"] == "discovery-stopped"

    run(main)


def test_a_down_state_that_does_not_clear_is_restarted_with_backoff() -> None:
    adapter = AdapterReadings()

    async def main() -> None:
        # discovery never shows as started again: the next restart waits the backoff (an hour)
        source = fake_source(
            watchdog_timeout_s=3600,
            adapter_check_interval_s=0.01,
            adapter_state=adapter,
            backoff_base_s=3600,
            backoff_cap_s=3600,
        )
        async with source:
            adapter.state = AdapterState.NOT_DISCOVERING
            await wait_until(lambda: source.stats.scanner_restarts == 1)
            reads = adapter.reads
            await wait_until(lambda: adapter.reads >= reads + 50)
            assert source.stats.scanner_restarts == 1
            adapter.state = AdapterState.OK  # it cleared: a new fault is acted on at once
            await wait_until(lambda: adapter.reads >= reads + 55)
            adapter.state = AdapterState.NOT_DISCOVERING
            await wait_until(lambda: source.stats.scanner_restarts == 2)

    run(main)


def test_log_event_logs_outages_as_warnings_and_quiet_rooms_as_info() -> None:
    with structlog.testing.capture_logs() as logged:
        log_event("scanner_restart", {"source": "bleak:hci0", "reason": "powered-off"})
        log_event("scanner_restart", {"source": "bleak:hci0", "reason": "watchdog"})
        log_event("scanner_resumed", {"source": "bleak:hci0", "reason": "powered-off"})
    assert [(entry["event"], entry["log_level"]) for entry in logged] == [
        ("scanner_restart", "warning"),
        ("scanner_restart", "info"),
        ("scanner_resumed", "info"),
    ]


def test_an_unknown_adapter_state_leaves_it_to_the_silence_watchdog() -> None:
    adapter = AdapterReadings(AdapterState.UNKNOWN)

    async def main() -> None:
        source = fake_source(
            watchdog_timeout_s=3600, adapter_check_interval_s=0.01, adapter_state=adapter
        )
        async with source:
            await wait_until(lambda: adapter.reads >= 20)
            assert source.stats.scanner_restarts == 0
            assert source.outage() is None

    run(main)


def test_a_powered_off_adapter_is_waited_for_and_its_return_ends_the_backoff() -> None:
    adapter = AdapterReadings()
    time = FakeTime()

    async def main() -> None:
        # an hour of backoff: only the adapter coming back can end the wait in time
        source = fake_source(
            watchdog_timeout_s=3600,
            adapter_check_interval_s=0.01,
            adapter_state=adapter,
            backoff_base_s=3600,
            backoff_cap_s=3600,
            monotonic=time,
        )
        async with source:
            scanner = scanner_of(source)
            scanner.start_errors = [BleakDBusError("org.bluez.Error.NotReady", [])] * 3
            adapter.state = AdapterState.POWERED_OFF
            await wait_until(lambda: source.stats.start_retries == 1)
            time.now += 75.0
            outage = source.outage()
            assert outage is not None
            assert (outage.reason, outage.seconds) == (SourceErrorReason.POWERED_OFF, 75.0)
            assert "'hci0' is powered off" in outage.message
            assert "bluetoothctl power on" in outage.message
            scanner.start_errors = []
            adapter.state = AdapterState.OK  # powered on again
            await wait_until(lambda: scanner.running and source.outage() is None)
            assert source.stats.start_retries == 1

    run(main)


@pytest.mark.parametrize(
    ("state", "error", "reason"),
    [
        (AdapterState.MISSING, BleakError("adapter 'hci0' not found"), "ADAPTER_MISSING"),
        (
            AdapterState.OK,
            BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []),
            "NO_BLUETOOTH",
        ),
        (AdapterState.OK, BleakDBusError("org.bluez.Error.Failed", []), "SCAN_FAILED"),
    ],
)
def test_an_outage_names_its_cause(state: AdapterState, error: Exception, reason: str) -> None:
    adapter = AdapterReadings()

    async def main() -> None:
        source = fake_source(
            watchdog_timeout_s=0.05,
            watchdog_interval_s=0.01,
            adapter_state=adapter,
            backoff_base_s=3600,
            backoff_cap_s=3600,
        )
        async with source:
            scanner_of(source).start_errors = [error]
            adapter.state = state
            await wait_until(lambda: source.stats.start_retries == 1)
            outage = source.outage()
            assert outage is not None
            assert outage.reason is SourceErrorReason[reason]
        assert source.outage() is None  # closing ended the wait

    run(main)


def test_once_scanning_worked_every_restart_error_is_retried() -> None:
    async def main() -> None:
        source = fake_source(watchdog_timeout_s=0.05, watchdog_interval_s=0.01)
        async with source:
            scanner = scanner_of(source)
            scanner.start_errors = [
                BleakError("adapter 'hci0' not found"),
                BleakBluetoothNotAvailableError(
                    "off", BleakBluetoothNotAvailableReason.POWERED_OFF
                ),
                BleakDBusError("org.bluez.Error.NotSupported", []),
                RuntimeError("unexpected"),
            ]
            await wait_until(lambda: scanner.starts >= 6)  # 4 failures, then restarts work
            assert source.stats.start_retries == 4
            assert source._failure is None

    run(main)


def test_a_failing_watchdog_ends_the_stream_with_a_source_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_restart(silent_for: float) -> None:
        raise ZeroDivisionError(silent_for)

    async def main() -> None:
        source = fake_source(watchdog_timeout_s=0.05, watchdog_interval_s=0.01)
        monkeypatch.setattr(source, "_restart", broken_restart)
        with pytest.raises(SourceError) as caught:
            async for _ in source.sightings():
                pass
        assert caught.value.reason is SourceErrorReason.SCAN_FAILED
        assert "watchdog failed (ZeroDivisionError" in str(caught.value)
        assert scanner_of(source).stops == 1

    run(main)


def test_a_source_that_failed_to_start_starts_when_asked_again() -> None:
    # The daemon retries a failed source by iterating it again: a start-up failure (adapter
    # powered off, missing, no access) must not leave it unusable or closed.
    async def with_advert() -> None:
        source = fake_source()
        scanner = scanner_of(source)
        scanner.start_errors = [BleakError("adapter 'hci0' not found")] * 2
        for _ in range(2):
            with pytest.raises(SourceError):
                await anext(source.sightings())
        await source.start()  # what sightings() does first; the advert then waits in the queue
        scanner.advert()
        sightings = source.sightings()
        assert (await next_sighting(sightings)).address == BEACON
        assert scanner.starts == 3
        await sightings.aclose()
        assert scanner.running is False
        with pytest.raises(RuntimeError, match="closed"):  # a stream that ended cleanly closes
            await anext(source.sightings())

    run(with_advert)


def test_a_source_whose_watchdog_failed_starts_when_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0

    async def main() -> None:
        source = fake_source(watchdog_timeout_s=0.05, watchdog_interval_s=0.01)
        original = source._restart

        async def restart_once_broken(silent_for: float, reason: str = "watchdog") -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ZeroDivisionError(silent_for)
            await original(silent_for, reason)

        monkeypatch.setattr(source, "_restart", restart_once_broken)
        with pytest.raises(SourceError, match="watchdog failed"):
            async for _ in source.sightings():
                pass
        scanner = scanner_of(source)
        assert scanner.running is False
        await source.start()  # what sightings() does first; the advert then waits in the queue
        scanner.advert()
        sightings = source.sightings()
        assert (await next_sighting(sightings)).address == BEACON
        await sightings.aclose()

    run(main)


def test_a_raising_event_hook_does_not_stop_scanning() -> None:
    def hook(name: str, fields: dict[str, object]) -> None:
        raise RuntimeError(name, fields)

    async def main() -> None:
        source = fake_source(queue_size=1, on_event=hook)
        async with source:
            scanner = scanner_of(source)
            scanner.advert(rssi=-60)
            scanner.advert(rssi=-61)  # overflow -> hook raises
            async with contextlib.aclosing(source.sightings()) as sightings:
                assert (await next_sighting(sightings)).rssi == -61

    run(main)


def test_events_carry_no_advert_bytes() -> None:
    events = Events()

    async def main() -> None:
        source = fake_source(queue_size=1, on_event=events)
        scanner = scanner_of(source)
        scanner.start_errors = [BleakDBusError(IN_PROGRESS, ["Operation already in progress"])]
        async with source:
            scanner.advert(rssi=-60)
            scanner.advert(rssi=-61)
        names = {name for name, _ in events.seen}
        assert {"scanner_start_retry", "scanner_started", "queue_overflow"} <= names
        for _, fields in events.seen:
            assert all(isinstance(value, str | int | float | bool) for value in fields.values())
            assert EID_A.hex() not in repr(fields)

    run(main)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF),
            SourceErrorReason.POWERED_OFF,
        ),
        (
            BleakBluetoothNotAvailableError("none", BleakBluetoothNotAvailableReason.NO_BLUETOOTH),
            SourceErrorReason.NO_BLUETOOTH,
        ),
        (
            BleakBluetoothNotAvailableError(
                "bredr", BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE
            ),
            SourceErrorReason.NO_BLUETOOTH,
        ),
        (
            BleakBluetoothNotAvailableError(
                "auth", BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM
            ),
            SourceErrorReason.NO_BLUETOOTH,
        ),
        (BleakError("adapter 'hci0' not found"), SourceErrorReason.ADAPTER_MISSING),
        (
            BleakError("passive scanning on Linux requires BlueZ >= 5.56 with --experimental"),
            SourceErrorReason.SCAN_FAILED,
        ),
        (BleakError("something else"), SourceErrorReason.SCAN_FAILED),
        (BleakDBusError("org.bluez.Error.NotSupported", []), SourceErrorReason.SCAN_FAILED),
        (
            BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", []),
            SourceErrorReason.NO_BLUETOOTH,
        ),
        (ValueError("a bug"), SourceErrorReason.SCAN_FAILED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_configuration_faults_at_startup_are_raised_at_once(
    error: Exception, reason: SourceErrorReason
) -> None:
    async def main() -> None:
        source = fake_source()
        scanner_of(source).start_errors = [error]
        with pytest.raises(SourceError) as caught:
            await source.start()
        assert caught.value.reason is reason
        assert caught.value.__cause__ is error
        assert source.stats.start_retries == 0
        assert source._watchdog is None

    run(main)


@pytest.mark.parametrize(
    "error",
    [
        BleakDBusError("org.bluez.Error.InProgress", []),
        BleakDBusError("org.bluez.Error.NotReady", []),
        BleakDBusError("org.bluez.Error.Failed", []),
        BleakDBusError("org.freedesktop.DBus.Error.UnknownObject", []),
        BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []),
        BleakDBusError("org.freedesktop.DBus.Error.NameHasNoOwner", []),
        BleakDBusError("org.freedesktop.DBus.Error.Spawn.ChildExited", []),
        ConnectionRefusedError(),
        EOFError(),
    ],
    ids=lambda error: getattr(error, "dbus_error", type(error).__name__),
)
def test_transient_faults_at_startup_are_retried(error: Exception) -> None:
    events = Events()

    async def main() -> None:
        source = fake_source(on_event=events)
        scanner = scanner_of(source)
        scanner.start_errors = [error]
        async with source:
            assert (scanner.starts, scanner.running) == (2, True)
            assert source.stats.start_retries == 1

    run(main)


def test_a_hung_start_times_out_and_is_retried() -> None:
    async def main() -> None:
        source = fake_source(start_timeout_s=0.05)
        scanner = scanner_of(source)
        scanner.hang_next_start = True
        async with source:
            assert (scanner.starts, source.stats.start_retries) == (2, 1)

    run(main)


def test_transient_faults_past_the_startup_timeout_are_raised() -> None:
    ticks = itertools.count()

    async def main() -> None:
        source = fake_source(startup_timeout_s=0.2, monotonic=lambda: next(ticks) * 0.05)
        scanner_of(source).start_errors = [BleakDBusError(IN_PROGRESS, [])] * 1000
        with pytest.raises(SourceError) as caught:
            await source.start()
        assert caught.value.reason is SourceErrorReason.SCAN_FAILED
        assert "did not start within 0.2 s" in str(caught.value)
        assert source.stats.start_retries == 2  # looks at 0.05 and 0.1 retry; 0.15 + 0.08 > 0.2
        assert IN_PROGRESS in str(caught.value)

    run(main)


def test_close_cuts_a_startup_retry_short() -> None:
    async def main() -> None:
        source = fake_source(startup_timeout_s=None, backoff_base_s=3600, backoff_cap_s=3600)
        scanner_of(source).start_errors = [BleakDBusError(IN_PROGRESS, [])]
        starting = asyncio.create_task(source.start())
        await wait_until(lambda: source.stats.start_retries == 1)
        await source.close()
        with pytest.raises(RuntimeError, match="closed"):
            await starting
        assert source._watchdog is None
        assert not scanner_of(source).running

    run(main)
