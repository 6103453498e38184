"""Sightings from a Bluetooth adapter through bleak (BlueZ on Linux): the production source.

One long-lived :class:`bleak.BleakScanner` feeds a bounded queue from its detection callback;
a watchdog restarts the scanner when bluetoothd reports the adapter powered off, removed or no
longer discovering, or when the radio goes silent (bleak does not notice a bluetoothd restart),
and start errors are sorted into "retry with backoff" and "fail now". The reasoning and the
host setup are in docs/bleak-source.md.

Error policy (also in :class:`BleakSource`'s docstring):

* At start-up, configuration faults raise :class:`SourceError` at once: adapter powered off
  (``POWERED_OFF``), named adapter absent (``ADAPTER_MISSING``), no usable adapter or access
  denied (``NO_BLUETOOTH``), passive mode without BlueZ's experimental monitor API or any
  unexpected error (``SCAN_FAILED``). A daemon exits non-zero and systemd restarts it.
* At start-up, transient faults (bluetoothd busy, not ready, initialising, absent from the bus,
  a start that times out) are retried with capped exponential backoff for up to
  ``startup_timeout_s``, then raise (``NO_BLUETOOTH`` if bluetoothd never appeared).
* Once scanning has worked, every error of a restart is retried forever with the same capped
  backoff: the adapter may be mid-reset, bluetoothd mid-restart, or powered off by someone (the
  wait ends early when bluetoothd shows the adapter back). ``on_event``, :attr:`stats` and
  :meth:`BleakSource.outage` make that visible; the app's health check decides what to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final, Literal, Self

import structlog
from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from gateway.sources.base import SourceError, SourceErrorReason, SourceOutage, eddystone_sighting
from gateway.sources.bluez_state import (
    DOWN_STATES,
    UNUSABLE_STATES,
    AdapterState,
    adapter_path,
    adapter_state,
)

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

ADAPTER_CHECK_INTERVAL_S: Final = 1.0
"""How often the adapter's state is read from bleak's cache (a dictionary lookup): a power-off,
a removal or a stopped discovery is acted on within two looks."""

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
    consumer fell behind. ``scanner_restarts`` counts every restart; ``adapter_restarts`` those
    of them caused by the adapter's state (powered off, removed, not discovering) rather than
    by silence. ``last_advert_at`` is the source clock at the last callback.
    """

    adverts: int = 0
    eddystone_sightings: int = 0
    non_eddystone_ignored: int = 0
    duplicates_dropped: int = 0
    queue_overflow_drops: int = 0
    scanner_restarts: int = 0
    adapter_restarts: int = 0
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
    adapter_restarts: int = 0
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
    callback; every ``adapter_check_interval_s`` it also reads the adapter's state (bleak's
    cache of bluetoothd's properties, or the ``adapter_state`` callable given) and restarts the
    scanner when two looks in a row find it powered off, missing or not discovering. Start
    retries wait ``backoff_base_s * 2**n`` (capped at ``backoff_cap_s``, minus up to 20 %
    jitter drawn from ``rng``). ``clock`` stamps each sighting once, in the callback;
    ``monotonic`` measures silence and the duplicate window. ``backend`` replaces bleak's
    platform backend (tests); with one, the adapter's state is unknown unless ``adapter_state``
    is given. ``on_event(name, fields)`` hears restarts, retries, outages and overflows; it must
    be quick, and its exceptions are suppressed so logging never stops scanning
    (:func:`log_event` logs them).

    Errors: see the module docstring. Fatal at start-up, retried (with backoff, up to
    ``startup_timeout_s``) at start-up if transient, always retried once scanning has worked;
    while a restart waits, :meth:`outage` says why and for how long.
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
        adapter_check_interval_s: float = ADAPTER_CHECK_INTERVAL_S,
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
        adapter_state: Callable[[], AdapterState] | None = None,
    ) -> None:
        _check_settings(
            mode,
            queue_size,
            duplicate_window_s,
            startup_timeout_s,
            watchdog_timeout_s=watchdog_timeout_s,
            watchdog_interval_s=watchdog_interval_s,
            adapter_check_interval_s=adapter_check_interval_s,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
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
        self._adapter_check_s = adapter_check_interval_s
        self._adapter_state = adapter_state
        self._reads_bluez = (
            adapter_state is None and backend is None and sys.platform.startswith("linux")
        )
        if self._reads_bluez:
            self._adapter_state = self._bluez_adapter_state
        self._adapter_path: str | None = None
        """The D-Bus path bleak scans with (known after the first start)."""

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
        self._down_since: float | None = None
        """``monotonic()`` when the running restart began (None while scanning)."""
        self._down_cause: SourceErrorReason = SourceErrorReason.SCAN_FAILED
        self._down_detail = ""

    # ----------------------------------------------------------------------- public API

    @property
    def bluez_args(self) -> BlueZScannerArgs:
        """The ``bluez=`` arguments given to bleak (a copy)."""
        return self._bluez.copy()

    @property
    def stats(self) -> BleakSourceStats:
        """A snapshot of the counters."""
        return BleakSourceStats(**asdict(self._counters))

    def outage(self) -> SourceOutage | None:
        """Why the scanner is not scanning while a restart waits and retries, or None.

        The reason is the adapter's state when bluetoothd shows it powered off or missing,
        ``NO_BLUETOOTH`` while nobody owns ``org.bluez``, else ``SCAN_FAILED`` with the last
        error. The source keeps retrying on its own; this only reports.
        """
        since = self._down_since
        if since is None:
            return None
        return SourceOutage(
            reason=self._down_cause,
            seconds=max(self._monotonic() - since, 0.0),
            message=self._down_detail,
        )

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

        A stream that ends with :class:`SourceError` leaves the source stopped but not closed:
        calling ``sightings()`` again starts it again (the daemon retries a failed source with
        backoff). Any other end closes it for good.

        Raises:
            SourceError: from :meth:`start`, or when the watchdog itself fails.
            RuntimeError: a second concurrent iteration, or the source was closed.
        """
        if self._iterating:
            msg = f"{self.name}: sightings() is already being iterated"
            raise RuntimeError(msg)
        self._iterating = True
        failed = False
        try:
            await self.start()
            while True:
                item = await self._queue.get()
                if item is None:
                    if self._failure is not None:
                        raise self._failure
                    return
                yield item
        except SourceError:
            failed = True
            raise
        finally:
            self._iterating = False
            if failed:
                await self._stand_down()
            else:
                await self.close()

    async def _stand_down(self) -> None:
        """After a failure: stop the watchdog and the scanner, ready to be started again."""
        if self._closed:
            return
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.wait({watchdog})
        async with self._lock:
            await self._stop_scanner()
            self._started = False
        self._failure = None
        while not self._queue.empty():  # only the end marker is left: the stream read the rest
            self._queue.get_nowait()

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
                if not startup:
                    self._note_down(exc)
                self._emit(
                    "scanner_start_retry",
                    {
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                        "error": describe_error(exc),
                        "startup": startup,
                    },
                )
                await self._pause(delay)
            else:
                self._scanning = True
                if self._reads_bluez:
                    self._adapter_path = adapter_path(self._adapter)
                self._emit(
                    "scanner_started",
                    {"mode": self._mode, "adapter": self._adapter_label, "attempts": attempt},
                )
                return

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` before the next start attempt.

        Cut short by :meth:`close`, and by the adapter coming back: when bluetoothd shows it
        present and powered again after a look found it powered off or missing.
        """
        watching = self._adapter_state is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        unusable = self._read_adapter_state() in UNUSABLE_STATES
        while (left := end - loop.time()) > 0:
            step = min(left, self._adapter_check_s) if watching else left
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(step):
                    await self._closing.wait()
            if self._closing.is_set() or not watching:
                return
            now_unusable = self._read_adapter_state() in UNUSABLE_STATES
            if unusable and not now_unusable:
                return
            unusable = now_unusable

    def _note_down(self, exc: Exception | None = None, *, reason: str = "") -> None:
        """Record why a restart is under way or still waiting (for :meth:`outage`).

        ``exc`` is the last start error, ``reason`` what began the restart.
        """
        state = self._read_adapter_state()
        label = self._adapter_label
        if state is AdapterState.POWERED_OFF:
            self._down_cause = SourceErrorReason.POWERED_OFF
            self._down_detail = f"Bluetooth adapter {label!r} is powered off: {_POWER_ON_HINT}"
        elif state is AdapterState.MISSING:
            self._down_cause = SourceErrorReason.ADAPTER_MISSING
            self._down_detail = (
                f"Bluetooth adapter {label!r} is gone: check `bluetoothctl list`, the USB "
                "dongle and `journalctl -u bluetooth`; scanning resumes when it is back"
            )
        elif isinstance(exc, BleakDBusError) and (
            exc.dbus_error in _BLUETOOTHD_ABSENT
            or exc.dbus_error.startswith(_ACTIVATION_ERROR_PREFIX)
        ):
            self._down_cause = SourceErrorReason.NO_BLUETOOTH
            self._down_detail = (
                "bluetoothd is not running (nobody owns org.bluez): check "
                "`systemctl status bluetooth`; scanning resumes when it is back"
            )
        elif exc is not None:
            self._down_cause = SourceErrorReason.SCAN_FAILED
            self._down_detail = f"scanning does not restart on {label!r}: {describe_error(exc)}"
        else:
            self._down_cause = SourceErrorReason.SCAN_FAILED
            if reason == AdapterState.NOT_DISCOVERING:
                self._down_detail = (
                    f"discovery on {label!r} stopped (bluetoothd ended our session): restarting it"
                )
            elif reason == "watchdog":
                self._down_detail = f"no advert heard on {label!r} for a while: restarting"
            else:
                self._down_detail = f"adapter {label!r} was {reason}: restarting the scanner"

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
        """Restart the scanner when the adapter is down or no callback came for a while.

        The adapter's state is read every ``adapter_check_interval_s`` and acted on when two
        looks in a row agree (bluetoothd signals Discovering a moment after a start succeeds);
        silence is checked every ``watchdog_interval_s``.
        """
        loop = asyncio.get_running_loop()
        interval = self._watchdog_interval_s
        tick = interval if self._adapter_state is None else min(interval, self._adapter_check_s)
        next_silence_check = loop.time() + interval
        looks = _Looks(self.backoff_delay)
        try:
            while True:
                await asyncio.sleep(tick)
                state = self._read_adapter_state()
                if looks.restart_due(state, loop.time()):
                    silent_for = self._monotonic() - self._last_activity
                    await self._restart(silent_for, reason=str(state))
                    looks.restarted(loop.time())
                    next_silence_check = loop.time() + interval
                    continue
                if loop.time() + tick / 2 < next_silence_check:
                    continue
                next_silence_check = loop.time() + interval
                silent_for = self._monotonic() - self._last_activity
                if silent_for > self._watchdog_timeout_s:
                    await self._restart(silent_for)
                    next_silence_check = loop.time() + interval
        except Exception as exc:  # noqa: BLE001 - ends the stream with the cause instead
            if self._closed:
                return
            self._failure = SourceError(
                SourceErrorReason.SCAN_FAILED,
                f"{self.name}: the scanner watchdog failed ({describe_error(exc)})",
            )
            self._push(None, count=False)

    async def _restart(self, silent_for: float, reason: str = "watchdog") -> None:
        """Stop and start the scanner, retrying until it works.

        ``reason``: "watchdog" (silence) or the adapter state that made the watchdog act.
        """
        async with self._lock:
            if self._closed:
                return
            counters = self._counters
            counters.scanner_restarts += 1
            if reason != "watchdog":
                counters.adapter_restarts += 1
            began = self._monotonic()
            self._down_since = began
            self._note_down(reason=reason)
            self._emit(
                "scanner_restart",
                {
                    "reason": reason,
                    "silent_for_s": round(silent_for, 3),
                    "restarts": counters.scanner_restarts,
                    "adapter": self._adapter_label,
                    "detail": self._down_detail,
                },
            )
            try:
                await self._stop_scanner()
                await self._start_scanner(startup=False)
            finally:
                self._down_since = None
            self._last_activity = self._monotonic()
            if not self._closed:
                self._emit(
                    "scanner_resumed",
                    {
                        "reason": reason,
                        "down_for_s": round(self._last_activity - began, 3),
                        "adapter": self._adapter_label,
                    },
                )

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): doubling, capped, jittered."""
        exponent = min(max(attempt - 1, 0), 32)
        delay = min(self._backoff_cap_s, self._backoff_base_s * 2.0**exponent)
        return delay * (1.0 - BACKOFF_JITTER * self._rng())

    # ----------------------------------------------------------------------- errors

    @property
    def _adapter_label(self) -> str:
        return self._adapter or "default"

    def _bluez_adapter_state(self) -> AdapterState:
        """The adapter as bleak's BlueZ cache shows it (the default ``adapter_state``)."""
        path = self._adapter_path
        if path is None and self._adapter:
            path = adapter_path(self._adapter)
        return adapter_state(path, discovering=self._mode == "active")

    def _read_adapter_state(self) -> AdapterState:
        reader = self._adapter_state
        if reader is None:
            return AdapterState.UNKNOWN
        try:
            return reader()
        except Exception:  # noqa: BLE001 - a broken reader must not stop the watchdog
            return AdapterState.UNKNOWN

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


class _Looks:
    """When the adapter's state calls for a restart: a down state seen twice in a row.

    A restart after which the adapter never read ``ok`` again (bluetoothd stuck, a discovery
    that never starts) is followed by the next one only after the backoff ladder's delay, so a
    state that does not clear is not answered with a restart every two looks.
    """

    __slots__ = ("_backoff", "_in_row", "_not_before", "_suspect")

    def __init__(self, backoff: Callable[[int], float]) -> None:
        self._backoff = backoff
        self._suspect: AdapterState | None = None
        self._in_row = 0
        """Restarts since the adapter last read ``ok``."""
        self._not_before = 0.0

    def restart_due(self, state: AdapterState, now: float) -> bool:
        """Whether ``state``, read at ``now`` (loop time), calls for a restart now."""
        if state not in DOWN_STATES:
            self._suspect = None
            if state is AdapterState.OK:
                self._in_row, self._not_before = 0, 0.0
            return False
        if state is not self._suspect:
            self._suspect = state
            return False
        return now >= self._not_before

    def restarted(self, now: float) -> None:
        """A restart for the adapter's state just ended."""
        self._suspect = None
        self._in_row += 1
        self._not_before = now + self._backoff(self._in_row)


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


def _check_settings(
    mode: str,
    queue_size: int,
    duplicate_window_s: float,
    startup_timeout_s: float | None,
    **positive: float,
) -> None:
    """ValueError naming the first bad setting of a :class:`BleakSource`."""
    if mode not in {"active", "passive"}:
        msg = f"mode must be 'active' or 'passive', not {mode!r}"
        raise ValueError(msg)
    if queue_size < 1:
        msg = f"queue_size must be at least 1, not {queue_size}"
        raise ValueError(msg)
    for setting, value in positive.items():
        if not value > 0:
            msg = f"{setting} must be positive, not {value}"
            raise ValueError(msg)
    if duplicate_window_s < 0 or (startup_timeout_s is not None and startup_timeout_s < 0):
        msg = "duplicate_window_s and startup_timeout_s must not be negative"
        raise ValueError(msg)


_EVENT_LEVELS: Final = {
    "scanner_started": "info",
    "scanner_resumed": "info",
    "scanner_restart": "warning",  # info for a silence restart: a room with no beacons
    "scanner_start_retry": "warning",
    "scanner_stop_failed": "warning",
    "queue_overflow": "warning",
}
"""Log level of each ``on_event`` event (unknown ones: warning)."""


def log_event(name: str, fields: dict[str, object]) -> None:
    """An ``on_event`` hook that logs each event with structlog (the daemon's choice)."""
    logger = structlog.get_logger(__name__)
    level = _EVENT_LEVELS.get(name, "warning")
    if level == "info" or (name == "scanner_restart" and fields.get("reason") == "watchdog"):
        logger.info(name, **fields)
    else:
        logger.warning(name, **fields)


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
