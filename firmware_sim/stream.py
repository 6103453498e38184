"""A gateway's view of a running scene: an async stream of what bleak would deliver.

``gateway_stream(run, "gw-entrance")`` yields ``(timestamp, BLEDevice, AdvertisementData)`` for
every advert that gateway hears, in time order. In virtual time (the default) it goes as fast as
the consumer takes them; with ``realtime=True`` it waits until each advert's moment, scaled by
``speed`` (2.0 plays twice as fast), so a gateway process can run against the simulator as it
would against a radio. The clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from firmware_sim.bleak_output import to_bleak

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from firmware_sim.run import SceneRun


async def gateway_stream(
    run: SceneRun,
    gateway_id: str,
    *,
    realtime: bool = False,
    speed: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[tuple[float, BLEDevice, AdvertisementData]]:
    """What ``gateway_id`` hears during the scene, as bleak would deliver it."""
    if gateway_id not in {gateway.id for gateway in run.scene.gateways}:
        msg = f"scene {run.scene.name!r} has no gateway {gateway_id!r}"
        raise ValueError(msg)
    if speed <= 0:
        msg = f"speed must be positive, got {speed!r}"
        raise ValueError(msg)
    began = clock()
    yielded = 0
    for advert in run.adverts():
        if advert.gateway != gateway_id:
            continue
        if realtime:
            due = began + (advert.at - run.scene.start) / speed
            delay = due - clock()
            if delay > 0:
                await sleep(delay)
        elif yielded % 256 == 0:
            await asyncio.sleep(0)  # let other tasks run in virtual time too
        yielded += 1
        device, data = to_bleak(advert)
        yield advert.at, device, data
