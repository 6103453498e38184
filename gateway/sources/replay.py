"""The ``replay`` source: a JSONL capture (docs/capture-format.md) played back as sightings.

Captures are recorded by ``beacon-sim run --capture`` (or from a radio); reading goes through
the capture format's own total reader, so a bad line stops the replay with
:class:`SourceError` naming the line.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from firmware_sim.capture import CaptureError, read_capture
from gateway.sources.base import SourceError, SourceErrorReason, eddystone_sighting

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    from gateway.core.sighting import Sighting

_YIELD_EVERY = 256


def read_sightings(path: Path) -> Iterator[Sighting]:
    """The capture's Eddystone sightings, in file order (other adverts are skipped)."""
    source = f"replay:{path.name}"
    try:
        with path.open(encoding="utf-8") as handle:
            _, adverts = read_capture(handle)
            for advert in adverts:
                sighting = eddystone_sighting(
                    advert.address, advert.rssi, advert.service_data, advert.at,
                    advert.gateway, advert.tx_power, source,
                )  # fmt: skip
                if sighting is not None:
                    yield sighting
    except CaptureError as exc:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: {exc.strerror}") from None


class ReplaySource:
    """A capture as an async source; ``realtime`` keeps the recorded pace (times ``speed``)."""

    def __init__(
        self,
        path: Path,
        *,
        realtime: bool = False,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed <= 0:
            msg = f"speed must be positive, got {speed!r}"
            raise ValueError(msg)
        self.name = f"replay:{path.name}"
        self._path = path
        self._realtime = realtime
        self._speed = speed
        self._clock = clock
        self._sleep = sleep

    async def sightings(self) -> AsyncIterator[Sighting]:
        """The capture's sightings."""
        began = self._clock()
        first: float | None = None
        for count, sighting in enumerate(read_sightings(self._path)):
            if self._realtime:
                first = sighting.at if first is None else first
                delay = began + (sighting.at - first) / self._speed - self._clock()
                if delay > 0:
                    await self._sleep(delay)
            elif count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            yield sighting
