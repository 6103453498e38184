"""The port every source implements, its error, and the bleak-shape to Sighting conversion."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypedDict

from gateway.core.sighting import Sighting
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping

YIELD_EVERY: Final = 32
"""In virtual time, or paced but behind schedule (a scene the CPU cannot play at the asked speed),
a played source lets other tasks run every this many sightings: often enough for the MQTT
publisher, which shares the loop, to keep up with the events of a replay that runs
the CPU flat out (the store scene makes an event per ~100 sightings; at 256 the outbox backlog
grew all day), for about 1 % of the replay's time."""
EDDYSTONE_SERVICE_UUID: Final = "0000feaa-0000-1000-8000-00805f9b34fb"
"""How bluetoothd (and so bleak) names Eddystone's 16-bit service UUID 0xFEAA."""


class SourceErrorReason(enum.StrEnum):
    """Why a source cannot deliver sightings."""

    NO_BLUETOOTH = "no-bluetooth"
    ADAPTER_MISSING = "adapter-missing"
    POWERED_OFF = "powered-off"
    SCAN_FAILED = "scan-failed"
    BAD_CAPTURE = "bad-capture"
    BAD_SCENE = "bad-scene"


class SourceError(GatewayError):
    """A source cannot deliver sightings; ``reason`` says why (for metrics and exit codes)."""

    def __init__(self, reason: SourceErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SourceOutage:
    """A live source waiting for its radio to come back; it retries on its own meanwhile.

    A source that can tell offers ``outage() -> SourceOutage | None`` besides ``sightings()``
    (the daemon looks for it): ``reason`` is why nothing can be heard (the adapter powered off
    or missing, bluetoothd away, scanning failing), ``seconds`` how long it has lasted, and
    ``message`` what an operator can do about it.
    """

    reason: SourceErrorReason
    seconds: float
    message: str


class SightingSource(Protocol):
    """An async stream of sightings; ``name`` appears in logs and metrics."""

    name: str

    def sightings(self) -> AsyncIterator[Sighting]:
        """Sightings in the order they were heard, until the source ends or is cancelled."""
        ...


def eddystone_sighting(  # noqa: PLR0917 - mirrors bleak's callback fields
    address: str,
    rssi: int,
    service_data: Mapping[str, bytes],
    at: float,
    gateway: str,
    tx_power: int | None = None,
    source: str = "",
) -> Sighting | None:
    """The sighting in an advert's service data, or None when it carries no Eddystone frame.

    bleak gives service data keyed by 128-bit UUID strings; only the 0xFEAA entry matters.
    """
    data = service_data.get(EDDYSTONE_SERVICE_UUID)
    if not data:
        return None
    return Sighting(
        address=address,
        rssi=rssi,
        service_data=bytes(data),
        at=at,
        gateway=gateway,
        tx_power=tx_power,
        source=source,
    )


def check_speed(speed: float) -> float:
    """A realtime speed factor, or ValueError saying why not."""
    if not speed > 0:
        msg = f"speed must be positive, got {speed!r}"
        raise ValueError(msg)
    return speed


async def played(
    sightings: Iterable[Sighting],
    *,
    realtime: bool,
    speed: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[Sighting]:
    """Recorded or simulated sightings as an async stream.

    In virtual time they come as fast as the consumer takes them. With ``realtime`` each one
    waits for its moment, counted from the first sighting and scaled by ``speed``.
    """
    began = clock()
    first: float | None = None
    for count, sighting in enumerate(sightings):
        delay = 0.0
        if realtime:
            first = sighting.at if first is None else first
            delay = began + (sighting.at - first) / speed - clock()
        if delay > 0:
            await sleep(delay)
        elif count % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # never starve the loop: publisher, ticks, signal handlers
        yield sighting


class Pacing(TypedDict, total=False):
    """How a :class:`PlayedSource` plays (every key optional: virtual time by default)."""

    realtime: bool
    speed: float
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]


class PlayedSource:
    """Sightings from ``load()`` (a scene, a capture) as a source, in virtual or paced time.

    ``realtime`` paces them by ``clock`` at ``speed`` times the recorded pace (see
    :func:`played`); ``load`` is called anew for each :meth:`sightings` stream.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Iterable[Sighting]],
        *,
        realtime: bool = False,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._load = load
        self._realtime = realtime
        self._speed = check_speed(speed)
        self._clock = clock
        self._sleep = sleep

    async def sightings(self) -> AsyncIterator[Sighting]:
        """The sightings, in their recorded order."""
        async for sighting in played(
            self._load(),
            realtime=self._realtime,
            speed=self._speed,
            clock=self._clock,
            sleep=self._sleep,
        ):
            yield sighting
