"""Sensing throughput: sightings through parse, resolve, filter and presence, on one core.

    .venv/bin/python benchmarks/pipeline_bench.py            (100,000 registered, 10,000 active)
    .venv/bin/python benchmarks/pipeline_bench.py --registered 20000 --active 2000 --seconds 10

A site of 5 zones in a row (one gateway each, 8 m apart). Every active beacon sends an EID
frame once a second (interleaved with an eTLM frame every tenth second) from a fixed spot; every
gateway within 20 m hears it, with log-distance RSSI plus Gaussian noise. Sightings are made in
advance (not timed), in time order; the timed loop is `Pipeline.process` for each, as the gateway
runs it. Two presence modes are measured: gateway zones, and a floor plan (zones as rectangles,
with the misfit fit of gateway.core.floorplan).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import platform
import random
import sys
import time

from common import pin_to_one_core

import eid
from eid import frames
from gateway.core.floorplan import FloorPlan
from gateway.core.identity import EidKey, Identifier
from gateway.core.pipeline import Pipeline
from gateway.core.presence import PresenceEngine, ZoneSpec
from gateway.core.sighting import Sighting

START = 1_767_225_600
EXPONENT = 10
ZONES = 5
SPACING_M = 8.0
HEARING_M = 20.0


def key(index: int) -> bytes:
    return hashlib.blake2b(index.to_bytes(8, "big"), digest_size=16).digest()


def make_sightings(active: int, seconds: int, rng: random.Random) -> list[Sighting]:
    gateways = [(f"gw-{i}", (i * SPACING_M, 0.0)) for i in range(ZONES)]
    spots = [(rng.uniform(0, (ZONES - 1) * SPACING_M), rng.uniform(-4, 4)) for _ in range(active)]
    phase = [rng.random() for _ in range(active)]
    sightings = []
    for second in range(seconds):
        now = START + second
        for index in range(active):
            at = now + phase[index]
            counter = (at + index) // 1  # clock offset = index (see register below)
            period = (int(counter) >> EXPONENT) << EXPONENT
            if second % 10 == 9:
                data = eid.encrypt_etlm(key(index), EXPONENT, period, b"\x00\x01", bytes(12))
            else:
                data = frames.encode(
                    frames.EidFrame(-12, eid.compute_eid(key(index), EXPONENT, period))
                )
            x, y = spots[index]
            for gateway, (gx, gy) in gateways:
                distance = math.hypot(gx - x, gy - y)
                if distance > HEARING_M:
                    continue
                rssi = -53 - 20 * math.log10(max(distance, 0.5)) + rng.gauss(0, 4)
                sightings.append(Sighting(f"A{index:05X}", round(rssi), data, at, gateway))
    sightings.sort(key=lambda s: s.at)
    return sightings


def build(registered: int, *, floor_plan: bool) -> Pipeline:
    resolver = eid.Resolver()
    keys = {}
    for index in range(registered):
        resolver.register(f"b{index}", key(index), EXPONENT, index)
        keys[f"b{index}"] = EidKey(key(index), EXPONENT)
    # The EID table is built once at start-up (benchmarks/resolver_bench.py times that), not
    # per sighting: build it here, outside the timed loop.
    resolver.resolve(bytes(8), START)
    specs = [ZoneSpec(f"z{i}", frozenset({f"gw-{i}"})) for i in range(ZONES)]
    plan = None
    if floor_plan:
        plan = FloorPlan(
            gateways={f"gw-{i}": (i * SPACING_M, 0.0) for i in range(ZONES)},
            zones={
                f"z{i}": (i * SPACING_M - 4, -5.0, i * SPACING_M + 4, 5.0) for i in range(ZONES)
            },
        )
    return Pipeline(
        Identifier(resolver=resolver, eid_keys=keys), PresenceEngine(specs, floor_plan=plan)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registered", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {pin_to_one_core()}")
    rng = random.Random(7)
    sightings = make_sightings(args.active, args.seconds, rng)
    print(f"{len(sightings):,} sightings: {args.active:,} active beacons over {args.seconds} s, "
          f"{args.registered:,} registered")  # fmt: skip
    for floor_plan in (False, True):
        pipeline = build(args.registered, floor_plan=floor_plan)
        process = pipeline.process
        outputs = 0
        began = time.perf_counter()
        for sighting in sightings:
            outputs += len(process(sighting))
        elapsed = time.perf_counter() - began
        mode = "floor plan" if floor_plan else "gateway zones"
        counts = pipeline.counts()
        print(f"{mode:<14} {len(sightings) / elapsed:>12,.0f} sightings/s   "
              f"({outputs:,} outputs, {counts.beacons_tracked:,} beacons tracked, "
              f"identity {dict(sorted(counts.identity.items()))})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
