"""Playing recorded or simulated sightings: virtual time, or paced by an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.sighting import Sighting
from gateway.sources.base import check_speed, played


def sightings(*times: float) -> list[Sighting]:
    return [Sighting("A", -60, b"\x10\x00\x00", at, "gw") for at in times]


async def collect(*, realtime: bool, speed: float = 1.0) -> tuple[list[float], list[float]]:
    now = [100.0]
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(round(delay, 6))
        now[0] += delay

    got = [
        s.at
        async for s in played(
            sightings(10.0, 10.5, 12.0),
            realtime=realtime,
            speed=speed,
            clock=lambda: now[0],
            sleep=sleep,
        )
    ]
    return got, slept


def test_virtual_time_never_sleeps() -> None:
    assert asyncio.run(collect(realtime=False)) == ([10.0, 10.5, 12.0], [])


def test_realtime_waits_for_each_moment_scaled_by_speed() -> None:
    assert asyncio.run(collect(realtime=True)) == ([10.0, 10.5, 12.0], [0.5, 1.5])
    assert asyncio.run(collect(realtime=True, speed=2.0)) == ([10.0, 10.5, 12.0], [0.25, 0.75])


def test_realtime_behind_schedule_still_lets_other_tasks_run() -> None:
    # A scene the CPU cannot play at the asked speed: every sighting is late, none sleeps. The
    # publisher and the signal handlers share the loop, so the source must still yield to them.
    async def main() -> int:
        turns = 0
        done = asyncio.Event()

        async def other() -> None:
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        late = iter(range(1000, 10**6))

        async def never(_delay: float) -> None:
            raise AssertionError

        async for _ in played(
            sightings(*range(200)),
            realtime=True,
            speed=1.0,
            clock=lambda: float(next(late)),
            sleep=never,
        ):
            pass
        seen = turns
        done.set()
        await task
        return seen

    assert asyncio.run(main()) > 0


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        check_speed(speed)
