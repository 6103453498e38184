"""Throughput of the eid hot paths against their straightforward baselines, on one core.

    make bench            (or: .venv/bin/python benchmarks/eid_bench.py [--quick])

Prints frames parsed per second over a mixed corpus (eid.frames.parse vs beacontools'
parse_packet on the same frames wrapped in an AD structure) and EIDs computed per second for a
fixed key (eid.compute_eid and eid.EidGenerator vs building a fresh AES cipher per call).
Figures are the best of several rounds, to keep scheduler noise out.
"""

from __future__ import annotations

import argparse
import platform
import random
import struct
import sys
import time
from typing import TYPE_CHECKING

from common import pin_to_one_core
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import eid
from eid import frames

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SEED = 20261122
KEY = bytes.fromhex("0102030405060708090a111213141516")
EXPONENT = 10


def corpus(size: int, rng: random.Random) -> list[bytes]:
    """A mixed corpus of service data as a busy store hears it: EIDs, eTLM, UID, URL, TLM."""
    urls = [
        "https://www.example.com/",
        "https://goo.gl/S6zT6P",
        "http://shop.example.org/sale",
        "https://www.store.net/aisle7",
    ]
    makers: list[tuple[float, Callable[[], bytes]]] = [
        (0.35, lambda: bytes((0x30, 0xEE)) + rng.randbytes(8)),
        (0.05, lambda: bytes((0x30, 0xEE)) + rng.randbytes(16)),  # mbed's 18-byte EID
        (0.15, lambda: b"\x20\x01" + rng.randbytes(16)),
        (0.15, lambda: bytes((0x00, 0xE7)) + rng.randbytes(16) + b"\x00\x00"),
        (0.05, lambda: bytes((0x00, 0xE7)) + rng.randbytes(16)),  # legacy 18-byte UID
        (0.10, lambda: frames.encode(frames.UrlFrame(-18, rng.choice(urls)))),
        (
            0.15,
            lambda: frames.encode(
                frames.TlmFrame(
                    battery_mv=rng.randrange(2000, 3300),
                    temperature_c=rng.randrange(-2560, 10240) / 256,
                    adv_count=rng.randrange(1 << 32),
                    uptime_ds=rng.randrange(1 << 32),
                )
            ),
        ),
    ]
    weights = [weight for weight, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(size)]


def best_rate(run: Callable[[], int], rounds: int) -> float:
    """The best operations per second over ``rounds`` runs of ``run`` (it returns its count)."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        count = run()
        elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
    return best


def parse_rate(data: Sequence[bytes], rounds: int) -> float:
    parse = frames.parse

    def run() -> int:
        for item in data:
            parse(item)
        return len(data)

    return best_rate(run, rounds)


def beacontools_rate(data: Sequence[bytes], rounds: int) -> float | None:
    try:
        from beacontools import parse_packet  # noqa: PLC0415 - optional baseline
    except ImportError:
        return None
    packets = [bytes((3 + len(item), 0x16, 0xAA, 0xFE)) + item for item in data]
    parsed = sum(parse_packet(packet) is not None for packet in packets)
    if parsed != len(packets):
        print(f"  note: beacontools parsed {parsed} of {len(packets)} packets")

    def run() -> int:
        for packet in packets:
            parse_packet(packet)
        return len(packets)

    return best_rate(run, rounds)


def eid_rate(counters: Sequence[int], rounds: int) -> float:
    compute = eid.compute_eid

    def run() -> int:
        for counter in counters:
            compute(KEY, EXPONENT, counter)
        return len(counters)

    return best_rate(run, rounds)


def generator_rate(counters: Sequence[int], rounds: int) -> float:
    generate = eid.EidGenerator(KEY).eid

    def run() -> int:
        for counter in counters:
            generate(EXPONENT, counter)
        return len(counters)

    return best_rate(run, rounds)


def fresh_cipher_eid(identity_key: bytes, exponent: int, counter: int) -> bytes:
    """The textbook implementation: a new AES cipher object for every block."""
    tk_block = bytes(11) + b"\xff\x00\x00" + struct.pack(">H", counter >> 16)
    tk_cipher = Cipher(algorithms.AES(identity_key), modes.ECB()).encryptor()  # noqa: S305
    tk = tk_cipher.update(tk_block) + tk_cipher.finalize()
    eid_block = (
        bytes(11) + bytes((exponent,)) + struct.pack(">I", (counter >> exponent) << exponent)
    )
    eid_cipher = Cipher(algorithms.AES(tk), modes.ECB()).encryptor()  # noqa: S305
    return (eid_cipher.update(eid_block) + eid_cipher.finalize())[:8]


def baseline_eid_rate(counters: Sequence[int], rounds: int) -> float:
    def run() -> int:
        for counter in counters:
            fresh_cipher_eid(KEY, EXPONENT, counter)
        return len(counters)

    return best_rate(run, rounds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpus, fewer rounds")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    rounds = 3 if args.quick else 7

    pinning = pin_to_one_core()
    rng = random.Random(SEED)
    data = corpus(200_000 // scale, rng)
    # Consecutive seconds, as a beacon's clock runs: the temporary key is reused within 2**16 s.
    start = rng.randrange(1 << 31)
    counters = list(range(start, start + 200_000 // scale))

    # The fresh-cipher baseline must agree with the library before it is worth timing.
    assert all(
        fresh_cipher_eid(KEY, EXPONENT, c) == eid.compute_eid(KEY, EXPONENT, c)
        for c in counters[:100]
    )

    print(f"eid benchmark: Python {platform.python_version()} on {platform.machine()}, {pinning}")
    print(
        f"corpus: {len(data)} mixed service-data frames, {len(counters)} EID counters, seed {SEED}"
    )
    print()
    ours_parse = parse_rate(data, rounds)
    theirs_parse = beacontools_rate(data[: 20_000 // scale], max(1, rounds // 2))
    ours_eid = eid_rate(counters, rounds)
    ours_gen = generator_rate(counters, rounds)
    base_eid = baseline_eid_rate(counters[: 50_000 // scale], max(1, rounds // 2))

    rows = [
        ("frames parsed/s", "eid.frames.parse", ours_parse),
        ("", "beacontools.parse_packet (baseline)", theirs_parse),
        ("EIDs computed/s", "eid.compute_eid (fixed key)", ours_eid),
        ("", "eid.EidGenerator.eid (fixed key)", ours_gen),
        ("", "fresh cipher per AES call (baseline)", base_eid),
    ]
    for figure, what, rate in rows:
        shown = "not installed (make bench installs it)" if rate is None else f"{rate:>12,.0f}"
        print(f"{figure:<17}{what:<40}{shown}")
    print()
    if theirs_parse:
        print(f"parse speed-up over beacontools: {ours_parse / theirs_parse:,.1f}x")
    print(f"EID speed-up over a fresh cipher per call: {ours_eid / base_eid:,.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
