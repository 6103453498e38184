"""Outbox throughput: accepts per group-commit size, acks per batch, and the asyncio writer.

    .venv/bin/python benchmarks/outbox_bench.py                  (2 s per case, temp dir in /tmp)
    .venv/bin/python benchmarks/outbox_bench.py --seconds 5 --dir /var/lib/beacon-gateway

Every event is a ~400-byte JSON presence event (what the daemon publishes). Each case runs on a
fresh outbox file in a temporary directory on the disk under ``--dir``, for ``--seconds``:

1. ``Outbox.accept`` with 1, 10, 100 and 1000 events per transaction, synchronous=full and
   normal: the price of an fsync per commit, and how group commit amortises it.
2. ``Outbox.ack`` deleting delivered rows in batches of 1, 10, 100 and 1000.
3. ``AsyncOutbox`` sustained: a producer puts as fast as it can while a publisher-like task
   reads ``pending`` and acks in batches of 100; events/s from the first put to the last ack,
   and the mean batch the writer committed. The target is >= 5,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import pin_to_one_core

from gateway.delivery.message import Message
from gateway.delivery.outbox import AsyncOutbox, Outbox, Synchronous

BATCHES = (1, 10, 100, 1000)
MODES: tuple[Synchronous, ...] = ("full", "normal")
TARGET = 5_000


def payload(n: int) -> bytes:
    event = {
        "schema": "beacon-gateway/event/v1",
        "event_id": str(uuid.UUID(int=n, version=4)),
        "type": "dwell",
        "at": 1_767_225_600.0 + n / 1000,
        "gateway": "gw-terminal-2-hall-b-07",
        "zone": "gate-b12-seating",
        "subject": {"id": f"bag-{n:08d}", "kind": "luggage", "profile": "priority-transfer"},
        "beacon": {"id": f"loyalty-{n % 5000:06d}", "frame": "eid"},
        "proximity": "near",
        "distance_m": 2.35,
        "rssi": -67,
        "dwell_s": 184.0,
        "confidence": 0.93,
        "tags": ["transfer", "priority", "fragile"],
    }
    return json.dumps(event, separators=(",", ":")).encode()


def make_messages(count: int) -> list[Message]:
    return [
        Message("bg/gw-terminal-2-hall-b-07/events/dwell", payload(n), f"ev-{n}")
        for n in range(count)
    ]


def filesystem_of(directory: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if str(directory.resolve()).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return f"{kind} on {best or '?'}"


def accept_rate(root: Path, synchronous: Synchronous, batch: int, seconds: float) -> str:
    pool = make_messages(batch)
    with Outbox.open(root / f"accept-{synchronous}-{batch}.sqlite3", synchronous=synchronous) as o:
        events = 0
        began = time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds:
            o.accept(pool)
            events += batch
        commits = o.stats().commits
    return (
        f"accept  synchronous={synchronous:<6} {batch:>5} per commit "
        f"{events / elapsed:>10,.0f} events/s {commits / elapsed:>8,.0f} commits/s "
        f"{elapsed / commits * 1e3:>7.2f} ms/commit"
    )


def ack_rate(root: Path, synchronous: Synchronous, batch: int, seconds: float) -> str:
    path = root / f"ack-{synchronous}-{batch}.sqlite3"
    with Outbox.open(path, synchronous=synchronous) as o:
        pool = make_messages(1000)
        rows = 0
        while rows < max(batch * 2_000, 50_000):  # more rows than the timed loop can delete
            rows += len(o.accept(pool).seqs)
        seqs = [row.seq for row in o.pending(limit=rows)]
        deleted = 0
        filled = o.stats().commits
        began = time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds and deleted < len(seqs):
            deleted += o.ack(seqs[deleted : deleted + batch])
        commits = o.stats().commits - filled
    return (
        f"ack     synchronous={synchronous:<6} {batch:>5} per commit "
        f"{deleted / elapsed:>10,.0f} events/s {commits / elapsed:>8,.0f} commits/s"
    )


async def writer_rate(root: Path, synchronous: Synchronous, seconds: float) -> str:
    pool = make_messages(10_000)
    path = root / f"async-{synchronous}.sqlite3"
    async with await AsyncOutbox.open(path, synchronous=synchronous) as outbox:
        writer = asyncio.create_task(outbox.run())
        acked = acks = 0
        done = asyncio.Event()

        async def publisher() -> None:
            nonlocal acked, acks
            after = 0
            while not (done.is_set() and outbox.queued == 0 and outbox.stats().depth == 0):
                outbox.changed.clear()
                rows = await outbox.pending(after=after, limit=100)
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(outbox.changed.wait(), timeout=0.05)
                    continue
                after = rows[-1].seq
                acked += await outbox.ack([row.seq for row in rows])
                acks += 1

        consumer = asyncio.create_task(publisher())
        put = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            await outbox.put(pool[put % len(pool)])
            put += 1
        await outbox.flush()
        done.set()
        await consumer
        elapsed = time.perf_counter() - began
        accepts = outbox.stats().commits - acks
        writer.cancel()
        await asyncio.wait([writer])
    verdict = "ok" if put / elapsed >= TARGET else f"BELOW the {TARGET:,}/s target"
    return (
        f"async   synchronous={synchronous:<6} put+commit+pending+ack "
        f"{put / elapsed:>10,.0f} events/s  ({put:,} put in {accepts:,} commits, "
        f"{put / accepts:,.0f} per commit; {acked:,} acked in {acks:,})  {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outbox-bench-", dir=args.dir) as name:
        root = Path(name)
        print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
              f"{pin_to_one_core()}, {root} ({filesystem_of(root)})")  # fmt: skip
        print(f"payload {len(payload(0))} bytes of JSON, {args.seconds:g} s per case")
        for synchronous in MODES:
            for batch in BATCHES:
                print(accept_rate(root, synchronous, batch, args.seconds))
        for synchronous in MODES:
            for batch in BATCHES:
                print(ack_rate(root, synchronous, batch, args.seconds))
        for synchronous in MODES:
            print(asyncio.run(writer_rate(root, synchronous, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
