"""Delivery: events from the SQLite outbox to mosquitto's PUBACK, through MqttPublisher.

    .venv/bin/python benchmarks/delivery_bench.py
    .venv/bin/python benchmarks/delivery_bench.py --events 50000 --rate 2000 --seconds 20

Starts its own mosquitto (Debian's 2.0) on a free loopback port, without persistence and
without subscribers (PUBACK reason 0x10, a success), so the figures are the gateway's side:
outbox reads, paho, the window, PUBACK handling and the deletes. The gateway process is
pinned to one core (its threads included: event loop, outbox worker, paho); mosquitto is not.
mosquitto runs with ``set_tcp_nodelay true`` (Nagle off for its PUBACKs); the latency run is
repeated with mosquitto's default (Nagle on) to show what that setting is worth.

* Throughput: ``--events`` events are committed to a fresh outbox first (not timed); the
  clock runs from the publisher's start until :meth:`MqttPublisher.flush` reports the outbox
  empty, i.e. every row PUBACKed and deleted.
* Latency: a producer puts ``--rate`` events/s for ``--seconds`` (in 10 ms ticks); the
  publisher's ``on_ack`` hook reports each row's time from ``accepted_at`` (its commit) to
  its PUBACK being handled; p50, p99 and the maximum are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import pin_to_one_core

from gateway.delivery.message import Message
from gateway.delivery.mqtt import MqttPublisher
from gateway.delivery.mqtt_settings import MqttSettings
from gateway.delivery.outbox import AsyncOutbox

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gateway.delivery.outbox_schema import Synchronous

PAYLOAD = (
    b'{"v":1,"type":"dwell","subject":"bag-000123","zone":"belt-3","gateway":"gw-1",'
    b'"proximity":"near","distance_m":1.8,"since":1767225600.0,"at":1767225630.0}'
)
TICK_S = 0.01


class Broker:
    """A throwaway mosquitto on 127.0.0.1 (no persistence, no log)."""

    def __init__(self, *, nodelay: bool) -> None:
        binary = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
        if binary is None:
            sys.exit("mosquitto is not installed (Debian: apt-get install mosquitto)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._directory = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
        config = self._directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "persistence false\nlog_dest none\nmax_queued_messages 0\n"
            f"set_tcp_nodelay {'true' if nodelay else 'false'}\n"
        )
        self._process = subprocess.Popen([binary, "-c", str(config)])  # noqa: S603
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    sys.exit("mosquitto did not start")
                time.sleep(0.02)

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(20)
        shutil.rmtree(self._directory, ignore_errors=True)


def events(count: int, start: int = 0) -> Iterator[Message]:
    for index in range(start, start + count):
        yield Message(topic=f"gw/gw-1/events/{index % 8}", payload=PAYLOAD, event_id=f"e{index}")


def settings(port: int, name: str) -> MqttSettings:
    return MqttSettings(
        host="127.0.0.1", port=port, client_id=f"bench-{name}", status_topic="gw/gw-1/status"
    )


async def throughput(port: int, directory: Path, count: int, synchronous: Synchronous) -> None:
    outbox = await AsyncOutbox.open(directory / "throughput.db", synchronous=synchronous)
    writer = asyncio.create_task(outbox.run())
    for message in events(count):
        await outbox.put(message)
    await outbox.flush()
    publisher = MqttPublisher(settings(port, "throughput"), outbox)
    began = time.perf_counter()
    running = asyncio.create_task(publisher.run())
    drained = await publisher.flush(600)
    elapsed = time.perf_counter() - began
    stats = publisher.stats()
    await publisher.stop(10)
    await running
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await outbox.aclose()
    print(
        f"throughput  {count:,} committed events to PUBACK in {elapsed:.2f} s: "
        f"{count / elapsed:>8,.0f} events/s (window {stats.window}, drained={drained}, "
        f"acked {stats.acked:,})"
    )


async def latency(
    port: int, directory: Path, rate: int, seconds: float, *, synchronous: Synchronous, label: str
) -> None:
    outbox = await AsyncOutbox.open(directory / f"latency-{label}.db", synchronous=synchronous)
    writer = asyncio.create_task(outbox.run())
    latencies: list[float] = []
    publisher = MqttPublisher(settings(port, "latency"), outbox, on_ack=latencies.append)
    running = asyncio.create_task(publisher.run())
    while not publisher.stats().connected:  # noqa: ASYNC110 - a benchmark's start-up poll
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    per_tick = max(1, round(rate * TICK_S))
    ticks = round(seconds / TICK_S)
    began = loop.time()
    sent = 0
    for tick in range(ticks):
        for message in events(per_tick, sent):
            await outbox.put(message)
        sent += per_tick
        await asyncio.sleep(max(0.0, began + (tick + 1) * TICK_S - loop.time()))
    drained = await publisher.flush(60)
    await publisher.stop(10)
    await running
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await outbox.aclose()
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"latency     {sent:,} events at {sent / seconds:,.0f}/s over {seconds:g} s, accept to "
        f"PUBACK: p50 {quantiles[49] * 1000:.2f} ms, p99 {quantiles[98] * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms (drained={drained}; {label})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=1_000, help="events/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    # Brokers first, then pin: mosquitto must not inherit (and share) the gateway's core.
    broker = Broker(nodelay=True)
    nagle = Broker(nodelay=False)
    try:
        print(
            f"python {platform.python_version()}, {pin_to_one_core()}, mosquitto on "
            f"127.0.0.1, outbox synchronous={args.synchronous}, "
            f"{len(PAYLOAD)}-byte payloads, {os.cpu_count()} CPUs"
        )
        with tempfile.TemporaryDirectory(prefix="delivery-bench-outbox-") as directory:
            work = Path(directory)
            asyncio.run(throughput(broker.port, work, args.events, args.synchronous))
            for server, label in ((broker, "set_tcp_nodelay true"), (nagle, "mosquitto default")):
                asyncio.run(
                    latency(
                        server.port,
                        work,
                        args.rate,
                        args.seconds,
                        synchronous=args.synchronous,
                        label=label,
                    )
                )
    finally:
        broker.close()
        nagle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
