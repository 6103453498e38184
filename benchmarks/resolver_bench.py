"""EID resolution at scale: build time, memory, lookups/s and refresh cost of eid.Resolver.

    .venv/bin/python benchmarks/resolver_bench.py            (1,000,000 and 10,000 beacons)
    .venv/bin/python benchmarks/resolver_bench.py --beacons 100000

Beacons have K=10 and random clock offsets; the window is the previous, current and next period
(the default resolver: its drift allowance stays below one second for the first 1.85 hours).
Identity keys are derived from the beacon index, so the benchmark holds no copy of them and the
memory figure is the resolver's own: registrations plus the table. The brute-force baseline
computes every registered beacon's window EIDs for each sighting (with each beacon's key
schedule prepared in advance, which flatters it).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import pin_to_one_core

import eid
from eid.resolver import ResolutionReason

if TYPE_CHECKING:
    from collections.abc import Sequence

EXPONENT = 10
T0 = 1_767_225_600
SEED = b"resolver-bench"


def rss_mib() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def key_of(index: int) -> bytes:
    return hashlib.blake2b(index.to_bytes(8, "big"), key=SEED, digest_size=16).digest()


def offset_of(index: int) -> int:
    """A clock offset spread over 2**31 s (a multiplicative hash of the index)."""
    return (1 << 20) + (index * 2_654_435_761) % (1 << 31) - T0


def build(count: int) -> tuple[eid.Resolver, float, float]:
    """Register ``count`` beacons and build the table; return the resolver, seconds, MiB."""
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    resolver = eid.Resolver()
    for index in range(count):
        resolver.register(f"bag-{index:07d}", key_of(index), EXPONENT, offset_of(index))
    resolver.lookup(bytes(8), T0)  # the first lookup builds the table
    elapsed = time.perf_counter() - start
    gc.collect()
    return resolver, elapsed, rss_mib() - before


def sightings(count: int, beacons: int, now: int, rng: random.Random) -> list[tuple[bytes, str]]:
    picks = [rng.randrange(beacons) for _ in range(count)]
    return [
        (eid.compute_eid(key_of(i), EXPONENT, now + offset_of(i)), f"bag-{i:07d}") for i in picks
    ]


def lookup_rate(resolver: eid.Resolver, seen: list[tuple[bytes, str]], now: int) -> float:
    for eid8, beacon_id in seen[:1000]:  # correctness first
        match = resolver.resolve(eid8, now)
        assert match is not None
        assert match.beacon_id == beacon_id
    resolve = resolver.resolve
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for eid8, _beacon_id in seen:
            resolve(eid8, now)
        best = max(best, len(seen) / (time.perf_counter() - start))
    return best


def miss_rate(resolver: eid.Resolver, count: int, now: int, rng: random.Random) -> float:
    unknown = [rng.randbytes(8) for _ in range(count)]
    assert resolver.lookup(unknown[0], now).reason is ResolutionReason.UNKNOWN
    start = time.perf_counter()
    for eid8 in unknown:
        resolver.resolve(eid8, now)
    return count / (time.perf_counter() - start)


def refresh_cost(resolver: eid.Resolver, start: int, seconds: int) -> tuple[float, float]:
    """CPU share of one core that rolling the table forward costs, one lookup per second."""
    probe = bytes(8)
    began = time.process_time()
    for second in range(start + 1, start + seconds + 1):
        resolver.lookup(probe, second)
    spent = time.process_time() - began
    return spent / seconds * 100, spent / seconds * 1000


def brute_force_rate(count: int, sightings_to_try: int) -> float:
    generators = [(eid.EidGenerator(key_of(i)), offset_of(i)) for i in range(count)]
    now = T0

    def brute(eid8: bytes) -> int | None:
        for index, (generator, offset) in enumerate(generators):
            counter = now + offset
            period = counter >> EXPONENT
            for candidate in (period - 1, period, period + 1):
                if generator.eid(EXPONENT, candidate << EXPONENT) == eid8:
                    return index
        return None

    targets = [
        eid.compute_eid(key_of(i), EXPONENT, now + offset_of(i))
        for i in range(0, count, count // sightings_to_try)
    ][:sightings_to_try]
    start = time.perf_counter()
    for eid8 in targets:
        assert brute(eid8) is not None
    return len(targets) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beacons", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(
        f"resolver benchmark: Python {platform.python_version()}, {pin_to_one_core()}, K={EXPONENT}"
    )
    threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default (dynamic)")
    print(f"MALLOC_MMAP_THRESHOLD_: {threshold}")
    rng = random.Random(7)

    rows: list[tuple[str, str]] = []
    small, small_seconds, small_mib = build(args.small)
    rows.append(
        (
            f"{args.small:,} beacons: register + build",
            f"{small_seconds:.3f} s ({small_mib:.1f} MiB)",
        )
    )
    brute = brute_force_rate(args.small, 20)
    small_seen = sightings(100_000, args.small, T0, rng)
    rows.append(
        (
            f"{args.small:,} beacons: resolves/s (table)",
            f"{lookup_rate(small, small_seen, T0):,.0f}",
        )
    )
    rows.append((f"{args.small:,} beacons: resolves/s (brute force)", f"{brute:,.1f}"))
    del small, small_seen
    gc.collect()

    big, seconds, mib = build(args.beacons)
    rows.append((f"{args.beacons:,} beacons: register + build", f"{seconds:.1f} s"))
    rows.append((f"{args.beacons:,} beacons: memory growth", f"{mib:.0f} MiB"))
    seen = sightings(200_000, args.beacons, T0, rng)
    rows.append(
        (f"{args.beacons:,} beacons: resolves/s (hits)", f"{lookup_rate(big, seen, T0):,.0f}")
    )
    rows.append(
        (
            f"{args.beacons:,} beacons: resolves/s (unknown EIDs)",
            f"{miss_rate(big, 200_000, T0, rng):,.0f}",
        )
    )
    share, per_second = refresh_cost(big, T0, 300)
    rows.append(
        (
            f"{args.beacons:,} beacons: steady-state refresh",
            f"{share:.2f} % of one core ({per_second:.1f} ms per second)",
        )
    )
    later = T0 + 300
    moved = sightings(20_000, args.beacons, later, rng)
    rows.append(
        (
            f"{args.beacons:,} beacons: resolves/s after 300 s",
            f"{lookup_rate(big, moved, later):,.0f}",
        )
    )

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
