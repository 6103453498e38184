"""Sightings from a Bluetooth adapter through bleak (BlueZ on Linux): the production source.

One long-lived :class:`bleak.BleakScanner` feeds a bounded queue from its detection callback;
a watchdog restarts the scanner when the radio goes silent (bleak does not notice a bluetoothd
restart), and start errors are sorted into "retry with backoff" and "fail now". The reasoning
and the host setup are in docs/bleak-source.md.

Error policy (also in :class:`BleakSource`'s docstring):

* At start-up, configuration faults raise :class:`SourceError` at once: adapter powered off
  (``POWERED_OFF``), named adapter absent (``ADAPTER_MISSING``), no usable adapter or access
  denied (``NO_BLUETOOTH``), passive mode without BlueZ's experimental monitor API or any
  unexpected error (``SCAN_FAILED``). A daemon exits non-zero and systemd restarts it.
* At start-up, transient faults (bluetoothd busy, not ready, initialising, absent from the bus,
  a start that times out) are retried with capped exponential backoff for up to
  ``startup_timeout_s``, then raise (``NO_BLUETOOTH`` if bluetoothd never appeared).
* Once scanning has worked, every error of a restart is retried forever with the same capped
  backoff: the adapter may be mid-reset, bluetoothd mid-restart. ``on_event`` and :attr:`stats`
  make that visible; the app's health check decides when to give up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Literal, Self

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from gateway.sources.base import SourceError, SourceErrorReason, eddystone_sighting

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable
    from types import TracebackType

    from bleak.args.bluez import BlueZScannerArgs
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

    from gateway.core.sighting import Sighting

ScanMode = Literal["active", "passive"]
"""bleak's scanning modes: "active" sends SCAN_REQs, "passive" only listens (a BlueZ monitor)."""

# --------------------------------------------------------------------------- tuning

QUEUE_SIZE: Final = 4096
"""About 4 s of a busy site (1,000 sightings/s) while the consumer stalls; old ones matter least."""

DUPLICATE_WINDOW_S: Final = 1.0
"""Swallows cached-state re-sends (Connected, ServicesResolved); a steady beacon still shows 1/s."""

WATCHDOG_TIMEOUT_S: Final = 90.0
"""Silence before a restart; Home Assistant's value, under BlueZ's 180 s device removal."""

WATCHDOG_INTERVAL_S: Final = 30.0
"""How often the watchdog looks; a restart comes 90-120 s into a silence."""

BACKOFF_BASE_S: Final = 1.0
"""First retry delay: bluetoothd usually finishes bringing an adapter up within a second."""

BACKOFF_CAP_S: Final = 30.0
"""Longest retry delay: a returning bluetoothd is picked up within half a minute."""

BACKOFF_JITTER: Final = 0.2
"""Each delay is shortened by up to this share, so gateways on one host do not retry in step."""

STARTUP_TIMEOUT_S: Final = 60.0
"""Transient start-up errors are retried this long, then the daemon exits for systemd."""

START_TIMEOUT_S: Final = 15.0
"""One scanner start (D-Bus round trips); Home Assistant's value for a hung bluetoothd."""

STOP_TIMEOUT_S: Final = 5.0
"""One scanner stop; a dead bluetoothd must not block a restart or shutdown."""

OVERFLOW_EVENT_INTERVAL_S: Final = 10.0
"""At most one ``queue_overflow`` event this often, so a stalled consumer does not flood logs."""

EDDYSTONE_OR_PATTERN: Final = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe")
"""Passive mode's monitor pattern: 16-bit service data whose UUID is 0xFEAA (little-endian)."""

_BLUETOOTHD_ABSENT: Final = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
    }
)
"""D-Bus errors meaning nobody owns ``org.bluez``: bluetoothd is not (yet) running."""

_RETRYABLE_DBUS_ERRORS: Final = _BLUETOOTHD_ABSENT | {
    "org.bluez.Error.InProgress",
    "org.bluez.Error.NotReady",
    "org.bluez.Error.Failed",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.TimedOut",
    "org.freedesktop.DBus.Error.Disconnected",
}
"""Errors of a start that a later attempt can clear (busy, initialising, restarting)."""

_ACTIVATION_ERROR_PREFIX: Final = "org.freedesktop.DBus.Error.Spawn."
"""bluetoothd's D-Bus activation failed: also "bluetoothd absent"."""

_POWER_ON_HINT: Final = (
    "power it on with `bluetoothctl power on` (if `rfkill list bluetooth` shows it blocked, "
    "run `rfkill unblock bluetooth` first), or set AutoEnable=true in /etc/bluetooth/main.conf"
)


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True, slots=True)
class BleakSourceStats:
    """A snapshot of a :class:`BleakSource`'s counters.

    ``adverts`` counts every detection callback; each ends in exactly one of
    ``eddystone_sightings`` (queued), ``non_eddystone_ignored`` or ``duplicates_dropped``.
    ``queue_overflow_drops`` counts queued sightings dropped (oldest first) because the
    consumer fell behind. ``last_advert_at`` is the source clock at the last callback.
    """

    adverts: int = 0
    eddystone_sightings: int = 0
    non_eddystone_ignored: int = 0
    duplicates_dropped: int = 0
    queue_overflow_drops: int = 0
    scanner_restarts: int = 0
    start_retries: int = 0
    last_advert_at: float | None = None


@dataclass(slots=True)
class _Counters:
    adverts: int = 0
    eddystone_sightings: int = 0
    non_eddystone_ignored: int = 0
    duplicates_dropped: int = 0
    queue_overflow_drops: int = 0
    scanner_restarts: int = 0
    start_retries: int = 0
    last_advert_at: float | None = None


# --------------------------------------------------------------------------- the source


class BleakSource:
    """Eddystone sightings from one Bluetooth adapter, for as long as the consumer iterates.

    ``async with BleakSource(gateway="gw-1", adapter="hci0") as source:`` starts scanning (or
    raises :class:`SourceError` at once for a configuration fault), then
    ``async for sighting in source.sightings():`` reads; leaving either stops the scanner and
    the watchdog. ``sightings()`` alone also starts the source and closes it when the iteration
    ends, is cancelled, or the generator is closed (use ``contextlib.aclosing`` to close it
    promptly after a ``break``). A source is used once.

    Settings: ``mode`` "active" (SetDiscoveryFilter with ``DuplicateData=duplicate_data``, so
    bluetoothd re-signals unchanged service data) or "passive" (an advertisement monitor with the
    Eddystone or-pattern; needs BlueZ's Experimental flag). ``queue_size`` bounds the queue
    between the callback and the iterator; when full the oldest sighting is dropped and counted.
    A sighting equal to the last one queued for its address (same frame bytes and RSSI) within
    ``duplicate_window_s`` is dropped and counted (0 keeps them all). The watchdog checks every
    ``watchdog_interval_s`` and restarts the scanner after ``watchdog_timeout_s`` without any
    callback. Start retries wait ``backoff_base_s * 2**n`` (capped at ``backoff_cap_s``, minus up
    to 20 % jitter drawn from ``rng``). ``clock`` stamps each sighting once, in the callback;
    ``monotonic`` measures silence and the duplicate window. ``backend`` replaces bleak's
    platform backend (tests). ``on_event(name, fields)`` hears restarts, retries and overflows;
    it must be quick, and its exceptions are suppressed so logging never stops scanning.

    Errors: see the module docstring. Fatal at start-up, retried (with backoff, up to
    ``startup_timeout_s``) at start-up if transient, always retried once scanning has worked.
    """

    def __init__(
        self,
        *,
        gateway: str,
        adapter: str | None = None,
        mode: ScanMode = "active",
        duplicate_data: bool = True,
        queue_size: int = QUEUE_SIZE,
        duplicate_window_s: float = DUPLICATE_WINDOW_S,
        watchdog_timeout_s: float = WATCHDOG_TIMEOUT_S,
        watchdog_interval_s: float = WATCHDOG_INTERVAL_S,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        startup_timeout_s: float | None = STARTUP_TIMEOUT_S,
        start_timeout_s: float = START_TIMEOUT_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_event: Callable[[str, dict[str, object]], None] | None = None,
        backend: type[BaseBleakScanner] | None = None,
    ) -> None:
        if mode not in {"active", "passive"}:
            msg = f"mode must be 'active' or 'passive', not {mode!r}"
            raise ValueError(msg)
        if queue_size < 1:
            msg = f"queue_size must be at least 1, not {queue_size}"
            raise ValueError(msg)
        positive = {
            "watchdog_timeout_s": watchdog_timeout_s,
            "watchdog_interval_s": watchdog_interval_s,
            "backoff_base_s": backoff_base_s,
            "backoff_cap_s": backoff_cap_s,
            "start_timeout_s": start_timeout_s,
            "stop_timeout_s": stop_timeout_s,
        }
        for setting, value in positive.items():
            if not value > 0:
                msg = f"{setting} must be positive, not {value}"
                raise ValueError(msg)
        if duplicate_window_s < 0 or (startup_timeout_s is not None and startup_timeout_s < 0):
            msg = "duplicate_window_s and startup_timeout_s must not be negative"
            raise ValueError(msg)

        self.name = f"bleak:{adapter or 'default'}"
        self._gateway = gateway
        self._adapter = adapter
        self._mode: ScanMode = mode
        self._duplicate_window_s = duplicate_window_s
        self._watchdog_timeout_s = watchdog_timeout_s
        self._watchdog_interval_s = watchdog_interval_s
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._startup_timeout_s = startup_timeout_s
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng
        self._on_event = on_event
        self._probe_bluez = backend is None

        self._bluez: BlueZScannerArgs = bluez_args(
            adapter=adapter, mode=mode, duplicate_data=duplicate_data
        )
        self._scanner = BleakScanner(
            self._on_advert, scanning_mode=mode, bluez=self._bluez, backend=backend
        )
        self._queue: asyncio.Queue[Sighting | None] = asyncio.Queue(maxsize=queue_size)
        self._lock = asyncio.Lock()
        """Serialises start, restart and close: one scanner state change at a time."""
        self._counters = _Counters()
        self._recent: OrderedDict[str, tuple[bytes, int, float]] = OrderedDict()
        """address -> (frame, rssi, monotonic time) of its last queued sighting, oldest first."""
        self._last_activity = 0.0
        self._last_overflow_event: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._scanning = False
        self._started = False
        self._closed = False
        self._closing = asyncio.Event()
        """Set by close(): cuts short a start-up retry's backoff wait."""
        self._iterating = False
        self._failure: SourceError | None = None

    # ----------------------------------------------------------------------- public API

    @property
    def bluez_args(self) -> BlueZScannerArgs:
        """The ``bluez=`` arguments given to bleak (a copy)."""
        return self._bluez.copy()

    @property
    def stats(self) -> BleakSourceStats:
        """A snapshot of the counters."""
        return BleakSourceStats(**asdict(self._counters))

    async def start(self) -> None:
        """Start scanning and the watchdog; idempotent.

        Raises:
            SourceError: a configuration fault, or transient faults past ``startup_timeout_s``.
            RuntimeError: the source was closed.
        """
        async with self._lock:
            if self._closed:
                msg = f"{self.name} is closed; make a new BleakSource"
                raise RuntimeError(msg)
            if self._started:
                return
            await self._start_scanner(startup=True)
            if self._closing.is_set():  # close() came while a start-up attempt was under way
                await self._stop_scanner()
                msg = f"{self.name} was closed while starting"
                raise RuntimeError(msg)
            self._started = True
            self._last_activity = self._monotonic()
            self._watchdog = asyncio.create_task(self._watch(), name=f"{self.name} watchdog")

    async def close(self) -> None:
        """Stop the watchdog and the scanner and end :meth:`sightings`; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.wait({watchdog})  # a cancel of close() itself still propagates
        async with self._lock:
            await self._stop_scanner()
        self._push(None, count=False)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def sightings(self) -> AsyncGenerator[Sighting, None]:
        """Sightings in the order they were heard, until closed; starts the source if needed.

        Raises:
            SourceError: from :meth:`start`, or when the watchdog itself fails.
            RuntimeError: a second concurrent iteration, or the source was closed.
        """
        if self._iterating:
            msg = f"{self.name}: sightings() is already being iterated"
            raise RuntimeError(msg)
        self._iterating = True
        try:
            await self.start()
            while True:
                item = await self._queue.get()
                if item is None:
                    if self._failure is not None:
                        raise self._failure
                    return
                yield item
        finally:
            await self.close()

    # ----------------------------------------------------------------------- the callback

    def _on_advert(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """The detection callback: bleak runs it on the loop for every Device1 change."""
        if self._closed:
            return
        counters = self._counters
        now = self._clock()
        mono = self._monotonic()
        counters.adverts += 1
        counters.last_advert_at = now
        self._last_activity = mono
        sighting = eddystone_sighting(
            device.address,
            adv.rssi,
            adv.service_data,
            now,
            self._gateway,
            tx_power=adv.tx_power,
            source=self.name,
        )
        if sighting is None:
            counters.non_eddystone_ignored += 1
            return
        if self._is_duplicate(sighting, mono):
            counters.duplicates_dropped += 1
            return
        counters.eddystone_sightings += 1
        self._push(sighting)

    def _is_duplicate(self, sighting: Sighting, mono: float) -> bool:
        """Whether this repeats the last queued sighting of its address within the window.

        bleak calls back with the whole cached property set on any Device1 change, so a
        Connected flip re-sends the old frame; the window is measured from the last *queued*
        sighting, so a steady beacon still shows up once per window.
        """
        window = self._duplicate_window_s
        if window <= 0:
            return False
        recent = self._recent
        previous = recent.get(sighting.address)
        if (
            previous is not None
            and previous[0] == sighting.service_data
            and previous[1] == sighting.rssi
            and mono - previous[2] < window
        ):
            return True
        recent[sighting.address] = (sighting.service_data, sighting.rssi, mono)
        recent.move_to_end(sighting.address)
        # Oldest first: forget addresses quiet for a whole window, so rotating private
        # addresses do not grow the table (the entry just written is the newest).
        cutoff = mono - window
        while len(recent) > 1:
            oldest = next(iter(recent))
            if recent[oldest][2] > cutoff:
                break
            del recent[oldest]
        return False

    def _push(self, item: Sighting | None, *, count: bool = True) -> None:
        """Queue without blocking; when full, drop the oldest.

        ``None`` ends the stream (after the sightings before it); making room for it is not
        an overflow (``count=False``).
        """
        queue = self._queue
        if queue.full():
            queue.get_nowait()
            if count:
                self._counters.queue_overflow_drops += 1
                self._report_overflow()
        queue.put_nowait(item)

    def _report_overflow(self) -> None:
        mono = self._monotonic()
        last = self._last_overflow_event
        if last is None or mono - last >= OVERFLOW_EVENT_INTERVAL_S:
            self._last_overflow_event = mono
            self._emit(
                "queue_overflow",
                {
                    "dropped_total": self._counters.queue_overflow_drops,
                    "queue_size": self._queue.maxsize,
                },
            )

    # ----------------------------------------------------------------------- scanner state

    async def _start_scanner(self, *, startup: bool) -> None:
        """Start bleak's scanner, retrying transient errors (the caller holds the lock)."""
        deadline = None
        if startup and self._startup_timeout_s is not None:
            deadline = self._monotonic() + self._startup_timeout_s
        attempt = 0
        while not self._closed:
            attempt += 1
            try:
                async with asyncio.timeout(self._start_timeout_s):
                    await self._scanner.start()
            except Exception as exc:
                if startup:
                    fatal = await self._startup_verdict(exc)
                    if fatal is not None:
                        raise fatal from exc
                delay = self.backoff_delay(attempt)
                if deadline is not None and self._monotonic() + delay > deadline:
                    raise self._startup_gave_up(exc) from exc
                self._counters.start_retries += 1
                self._emit(
                    "scanner_start_retry",
                    {
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                        "error": describe_error(exc),
                        "startup": startup,
                    },
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._closing.wait()
            else:
                self._scanning = True
                self._emit(
                    "scanner_started",
                    {"mode": self._mode, "adapter": self._adapter_label, "attempts": attempt},
                )
                return

    async def _stop_scanner(self) -> None:
        """Stop bleak's scanner if it runs; errors are reported, never raised.

        After a bluetoothd restart the new daemon has no discovery session of ours and answers
        StopDiscovery with an error; bleak has already dropped its callbacks by then.
        """
        if not self._scanning:
            return
        self._scanning = False
        try:
            async with asyncio.timeout(self._stop_timeout_s):
                await self._scanner.stop()
        except Exception as exc:  # noqa: BLE001 - reported; a stop must not block a restart
            self._emit("scanner_stop_failed", {"error": describe_error(exc)})

    async def _watch(self) -> None:
        """Restart the scanner whenever no callback came for ``watchdog_timeout_s``."""
        try:
            while True:
                await asyncio.sleep(self._watchdog_interval_s)
                silent_for = self._monotonic() - self._last_activity
                if silent_for > self._watchdog_timeout_s:
                    await self._restart(silent_for)
        except Exception as exc:  # noqa: BLE001 - ends the stream with the cause instead
            if self._closed:
                return
            self._failure = SourceError(
                SourceErrorReason.SCAN_FAILED,
                f"{self.name}: the scanner watchdog failed ({describe_error(exc)})",
            )
            self._push(None, count=False)

    async def _restart(self, silent_for: float) -> None:
        async with self._lock:
            if self._closed:
                return
            self._counters.scanner_restarts += 1
            self._emit(
                "scanner_restart",
                {
                    "reason": "watchdog",
                    "silent_for_s": round(silent_for, 3),
                    "restarts": self._counters.scanner_restarts,
                },
            )
            await self._stop_scanner()
            await self._start_scanner(startup=False)
            self._last_activity = self._monotonic()

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): doubling, capped, jittered."""
        exponent = min(max(attempt - 1, 0), 32)
        delay = min(self._backoff_cap_s, self._backoff_base_s * 2.0**exponent)
        return delay * (1.0 - BACKOFF_JITTER * self._rng())

    # ----------------------------------------------------------------------- errors

    @property
    def _adapter_label(self) -> str:
        return self._adapter or "default"

    async def _startup_verdict(self, exc: Exception) -> SourceError | None:
        """The SourceError to raise at start-up for ``exc``, or None to retry it."""
        if isinstance(exc, BleakBluetoothNotAvailableError):
            return self._not_available(exc)
        if isinstance(exc, BleakDBusError):
            return await self._dbus_verdict(exc)
        if isinstance(exc, BleakError):
            return self._bleak_verdict(exc)
        if isinstance(exc, (TimeoutError, OSError, EOFError)):
            return None  # a hung or restarting bluetoothd, a system bus restarting
        return self._scan_failed(exc)

    async def _dbus_verdict(self, exc: BleakDBusError) -> SourceError | None:
        name = exc.dbus_error
        if name == "org.bluez.Error.NotReady" and self._adapter and self._probe_bluez:
            # bluetoothd answers NotReady both while an adapter comes up and when it is
            # powered off; only the latter is worth failing for.
            if await adapter_powered(self._adapter) is False:
                return SourceError(
                    SourceErrorReason.POWERED_OFF,
                    f"Bluetooth adapter {self._adapter!r} is powered off: {_POWER_ON_HINT}",
                )
            return None
        if name in _RETRYABLE_DBUS_ERRORS or name.startswith(_ACTIVATION_ERROR_PREFIX):
            return None
        if name == "org.freedesktop.DBus.Error.AccessDenied":
            return SourceError(
                SourceErrorReason.NO_BLUETOOTH,
                f"D-Bus policy denies this user access to bluetoothd ({name}); allow it "
                "in /etc/dbus-1/system.d/bluetooth.conf or run as a permitted user",
            )
        return self._scan_failed(exc)

    def _bleak_verdict(self, exc: BleakError) -> SourceError:
        text = str(exc)
        if self._adapter and text == f"adapter '{self._adapter}' not found":
            return SourceError(
                SourceErrorReason.ADAPTER_MISSING,
                f"Bluetooth adapter {self._adapter!r} not found: check the adapter setting "
                "against `bluetoothctl list` (names can change across reboots; use udev "
                "to pin them)",
            )
        if "requires BlueZ" in text:
            return SourceError(
                SourceErrorReason.SCAN_FAILED,
                f"passive scanning on {self._adapter_label} needs BlueZ >= 5.56 with "
                "Experimental = true in [General] of /etc/bluetooth/main.conf (or "
                "bluetoothd -E) and Linux >= 5.10; enable it or use mode='active'",
            )
        return self._scan_failed(exc)

    def _not_available(self, exc: BleakBluetoothNotAvailableError) -> SourceError:
        reason = exc.reason
        if reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return SourceError(
                SourceErrorReason.POWERED_OFF,
                f"no powered Bluetooth adapter found (adapter {self._adapter_label!r}): "
                f"{_POWER_ON_HINT}",
            )
        if reason is BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE:
            detail = "no Bluetooth adapter supports the LE central role needed to scan"
        elif reason in {
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
            BleakBluetoothNotAvailableReason.DENIED_BY_USER,
        }:
            detail = (
                "access to Bluetooth was denied (D-Bus policy for org.bluez, "
                "/etc/dbus-1/system.d/bluetooth.conf)"
            )
        else:
            detail = (
                "no Bluetooth adapter found: bluetoothd has none (check `bluetoothctl list`, "
                "`rfkill list`, and that the adapter's driver and firmware loaded)"
            )
        return SourceError(SourceErrorReason.NO_BLUETOOTH, f"{self.name}: {detail}")

    def _scan_failed(self, exc: BaseException) -> SourceError:
        return SourceError(
            SourceErrorReason.SCAN_FAILED,
            f"{self.name}: could not start scanning ({describe_error(exc)})",
        )

    def _startup_gave_up(self, exc: Exception) -> SourceError:
        seconds = self._startup_timeout_s
        if isinstance(exc, BleakDBusError) and (
            exc.dbus_error in _BLUETOOTHD_ABSENT
            or exc.dbus_error.startswith(_ACTIVATION_ERROR_PREFIX)
        ):
            return SourceError(
                SourceErrorReason.NO_BLUETOOTH,
                f"{self.name}: bluetoothd is not running (nobody owns org.bluez on the system "
                f"bus) after {seconds} s: start it with `systemctl start bluetooth`",
            )
        return SourceError(
            SourceErrorReason.SCAN_FAILED,
            f"{self.name}: scanning did not start within {seconds} s "
            f"(last error: {describe_error(exc)})",
        )

    def _emit(self, event: str, fields: dict[str, object]) -> None:
        hook = self._on_event
        if hook is None:
            return
        with contextlib.suppress(Exception):
            hook(event, {"source": self.name, **fields})


# --------------------------------------------------------------------------- helpers


def bluez_args(*, adapter: str | None, mode: ScanMode, duplicate_data: bool) -> BlueZScannerArgs:
    """The ``bluez=`` argument for bleak (never the deprecated top-level ``adapter=``)."""
    args: BlueZScannerArgs = {}
    if adapter:
        args["adapter"] = adapter
    if mode == "passive":
        args["or_patterns"] = [EDDYSTONE_OR_PATTERN]
    else:
        args["filters"] = {"DuplicateData": duplicate_data}
    return args


def describe_error(exc: BaseException) -> str:
    """An error for events and messages: type and text (bleak's carry no advert data)."""
    if isinstance(exc, BleakDBusError):
        details = exc.dbus_error_details
        return f"{exc.dbus_error}: {details}" if details else exc.dbus_error
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def adapter_powered(adapter: str, *, timeout: float = 2.0) -> bool | None:  # noqa: ASYNC109 - one D-Bus round trip, bounded
    """The ``Powered`` property of ``/org/bluez/<adapter>``, or None when it cannot tell.

    bleak keeps this in its private manager cache only, so ask bluetoothd directly (one short
    system-bus connection, used at start-up only). dbus-fast comes with bleak on Linux.
    """
    from bleak.backends.bluezdbus.utils import get_dbus_authenticator  # noqa: PLC0415 - Linux only
    from dbus_fast import BusType, Message, MessageType  # noqa: PLC0415 - Linux only
    from dbus_fast.aio import MessageBus  # noqa: PLC0415 - Linux only

    bus = MessageBus(bus_type=BusType.SYSTEM, auth=get_dbus_authenticator())
    try:
        async with asyncio.timeout(timeout):
            await bus.connect()
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=f"/org/bluez/{adapter}",
                    interface="org.freedesktop.DBus.Properties",
                    member="Get",
                    signature="ss",
                    body=["org.bluez.Adapter1", "Powered"],
                )
            )
    except Exception:  # noqa: BLE001 - any failure (no bus, no bluetoothd) means "cannot tell"
        return None
    finally:
        if bus.connected:
            bus.disconnect()
            disconnected: Callable[[], Awaitable[None]] = bus.wait_for_disconnect
            with contextlib.suppress(Exception):
                await disconnected()
    if reply.message_type is not MessageType.METHOD_RETURN:
        return None
    value = reply.body[0].value
    return value if isinstance(value, bool) else None
