"""The per-gateway async stream, in virtual time and paced to an (injected) clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_sim.run import SceneRun, prepare
from firmware_sim.scene import load_scene
from firmware_sim.stream import gateway_stream

SCENES = Path(__file__).resolve().parents[2] / "configs" / "scenes"


def run_of(duration: float = 60.0) -> SceneRun:
    scene = load_scene(SCENES / "store.toml")
    return prepare(scene.model_copy(update={"duration_s": duration}))


def test_virtual_time_stream_is_the_gateways_share_of_the_run() -> None:
    expected = [a for a in run_of().adverts() if a.gateway == "gw-entrance"]

    async def collect() -> list[tuple[float, str, int]]:
        return [
            (at, device.address, data.rssi)
            async for at, device, data in gateway_stream(run_of(), "gw-entrance")
        ]

    got = asyncio.run(collect())
    assert got == [(a.at, a.address.upper(), a.rssi) for a in expected]


def test_realtime_stream_waits_for_each_advert() -> None:
    class FakeClock:
        def __init__(self) -> None:
            self.now = 1000.0
            self.slept: list[float] = []

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.slept.append(seconds)
            self.now += seconds

    clock = FakeClock()
    run = run_of(20.0)

    async def collect() -> list[float]:
        return [
            at
            async for at, _, _ in gateway_stream(
                run, "gw-checkout", realtime=True, speed=2.0, clock=clock, sleep=clock.sleep
            )
        ]

    times = asyncio.run(collect())
    assert times
    # each advert came out at (its scene time - start) / speed after the stream began
    assert clock.now == pytest.approx(1000.0 + (times[-1] - run.scene.start) / 2.0)
    assert all(delay > 0 for delay in clock.slept)


def test_unknown_gateway_and_bad_speed() -> None:
    async def first(**options: object) -> object:
        async for item in gateway_stream(run_of(5.0), **options):  # type: ignore[arg-type]
            return item
        return None

    with pytest.raises(ValueError, match="no gateway"):
        asyncio.run(first(gateway_id="gw-none"))
    with pytest.raises(ValueError, match="speed must be positive"):
        asyncio.run(first(gateway_id="gw-entrance", speed=0))
