"""Central resolution on one mosquitto: sightings resolved per second by N workers, and latency.

    .venv/bin/python benchmarks/fleet_bench.py
    .venv/bin/python benchmarks/fleet_bench.py --workers 1 2 4 8 --latency-seconds 60
    .venv/bin/python benchmarks/fleet_bench.py --scene configs/scenes/airport-fleet.toml \\
        --scene-seconds 900 --latency-speed 1

Starts its own mosquitto (gateway.demo.broker: a private broker on a free loopback port, its
``max_queued_messages`` 100,000) and runs real resolver workers, ``python -m gateway resolve``,
as separate processes against it, with the site configuration and key registry of the scene
(docs/fleet.md). Nothing is pinned: the workers, mosquitto, the publisher and the subscriber
share the machine's CPUs, and the figures say how many there are.

The load: the scene (``--scene``, the whole of it or ``--scene-seconds``) is simulated and every
gateway's sightings go through the :class:`~gateway.core.fleet.Reporter` a keyless gateway
runs, once, before anything is timed. The reporter condenses adverts into at most one report
record per address per second (telemetry as heard), so two figures are given: report
*records* resolved per second (what a worker does: one lookup each), and *advert-equivalent*
sightings per second (the raw adverts the gateways heard that those records stand for).

* Throughput, for each ``--workers`` count: the workers start, subscribe, and are paused
  (SIGSTOP); every sightings batch is then published at QoS 1 and queued by mosquitto in the
  workers' sessions (round-robin over the shared subscription); the workers are released at
  once (SIGCONT). A subscriber process on the observations topics timestamps each observations
  batch; the rate is the records resolved over the wall time from the first observations batch
  received to the last. The CPU time of the workers, of mosquitto, of the benchmark's own
  processes and of every other process on the machine over the run are read from /proc: records
  per CPU-second of worker is the figure for sizing a machine (it holds whatever else ran), and
  "others" says how much CPU something else took from the run (a warning above 0.1 core).
* Latency, a separate run: ``--latency-workers`` workers; the scene's sightings from
  ``--latency-from`` are played through :class:`~gateway.fleet.player.FleetPlayer` paced at
  ``--latency-speed`` times scene time (far below capacity, so the figure is not queueing) for
  ``--latency-seconds`` of wall time (a warning if that is over a third of the throughput the
  same number of workers reached). Latency is from the moment the player handed a sightings
  batch to paho (``PlayCounts.sent_at``) to the subscriber process receiving that batch's
  observations (both read CLOCK_MONOTONIC, one clock for every process on Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.core.fleet import Reporter
from gateway.core.wire import encode
from gateway.demo import children
from gateway.demo.broker import Broker, find_mosquitto
from gateway.demo.errors import DemoError
from gateway.fleet.player import FleetPlayer
from gateway.sources.sim import SimScene
from gateway.topics import FleetTopics

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from multiprocessing.connection import Connection

    from gateway.core.sighting import Sighting
    from gateway.core.wire import Batch

REPO: Final = Path(__file__).resolve().parents[1]
PREFIX: Final = "bench"
QUEUE_LIMIT: Final = 100_000
"""gateway.demo.broker's ``max_queued_messages``: what one paused worker's session can hold."""
KEEPALIVE_S: Final = 600
"""The workers' MQTT keepalive: mosquitto must not drop them while they are paused."""
WAIT_S: Final = 60.0
"""A worker must connect, a publish be acknowledged, within this (never a timing claim)."""
QUIET_S: Final = 3.0
"""A run is over when every batch's observations arrived, or nothing arrived (and the workers
used no more than :data:`IDLE_CPU_S`) for this long."""
IDLE_CPU_S: Final = 0.05
RUN_LIMIT_S: Final = 900.0
SUMMARY: Final = re.compile(
    r"resolver (\S+): (\d+) batches, (\d+) records, (\d+) observations, (\d+) acknowledged"
)
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
LATENCY_LOAD: Final = 1 / 3
"""The latency run should load the workers at most this much of what they can resolve."""
BUSY_CORES: Final = 0.1
BUSY_WARNING: Final = (
    "other processes on the machine used {:.2f} cores during the run: the wall-time figures "
    "are low (per worker-CPU-s much less so)"
)


# ------------------------------------------------------------------------------- the load


@dataclass(slots=True)
class Load:
    """The scene's sightings batches (encoded), and the sightings kept for the latency run."""

    adverts: int = 0
    scene_s: float = 0.0
    records: int = 0
    advert_equivalent: int = 0
    payloads: list[tuple[str, bytes]] = field(default_factory=list)
    latency_sightings: list[Sighting] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(payload) for _, payload in self.payloads)


def build_load(
    scene: SimScene, topics: FleetTopics, seconds: float | None, latency: tuple[float, float]
) -> Load:
    """Simulate, report as keyless gateways would, encode; keep the latency window's sightings."""
    load = Load()
    reporters: dict[str, Reporter] = {}
    start: float | None = None
    latency_from, latency_to = latency

    def add(batches: Iterable[Batch]) -> None:
        for batch in batches:
            load.payloads.append((topics.sightings(batch.gateway), encode(batch)))
            load.records += len(batch.records)
            load.advert_equivalent += sum(record.adverts for record in batch.records)

    for sighting in scene.sightings():
        if start is None:
            start = sighting.at
        offset = sighting.at - start
        if latency_from <= offset < latency_to:
            load.latency_sightings.append(sighting)
        if seconds is not None and offset >= seconds:
            if offset >= latency_to:
                break
            continue
        load.adverts += 1
        load.scene_s = offset
        reporter = reporters.get(sighting.gateway)
        if reporter is None:
            reporter = reporters[sighting.gateway] = Reporter(
                sighting.gateway, int.from_bytes(os.urandom(4), "big")
            )
        add(reporter.process(sighting))
    for reporter in reporters.values():
        add(reporter.flush())
    return load


def site_config(scene: SimScene, directory: Path, port: int, max_inflight: int | None) -> Path:
    """The site's configuration (the scene's floor, the broker on ``port``) and its registry."""
    document: dict[str, Any] = scene.config_document()
    registry = directory / "registry.toml"
    registry.write_text(scene.run.registry_toml())
    registry.chmod(0o600)

    def toml(value: object) -> str:
        return json.dumps(value)  # TOML's basic strings, numbers and arrays read like JSON's

    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntopic_prefix = "{PREFIX}"\n'
    mqtt += f"keepalive_s = {KEEPALIVE_S}"
    if max_inflight is not None:
        mqtt += f"\nmax_inflight = {max_inflight}"
    lines = [
        f"site = {toml(document['site'])}",
        'gateway_id = "arbiter"',
        f"key_registry = {toml(str(registry))}",
        *(
            f"[[gateways]]\nid = {toml(g['id'])}\nposition = {toml(list(g['position']))}\n"
            f"rssi_offset_db = {toml(float(g['rssi_offset_db']))}"
            for g in document["gateways"]
        ),
        *(
            f"[[zones]]\nid = {toml(z['id'])}\ngateways = {toml(z['gateways'])}\n"
            f"rect = {toml(list(z['rect']))}"
            for z in document["zones"]
        ),
        mqtt,
        "[fleet]\nshards = 1",
        f"[outbox]\npath = {toml(str(directory / 'outbox.sqlite'))}",
        "[http]\nenabled = false",
        '[logging]\nformat = "json"',
    ]
    config = directory / "site.toml"
    config.write_text("\n\n".join(lines) + "\n")
    return config


def record_count(payload: bytes | bytearray) -> int:
    """A batch's record count, read from its header (docs/fleet.md) without decoding it."""
    gateway = payload[5]
    (count,) = struct.unpack_from(">H", payload, 6 + gateway + 16)
    return int(count)


# ------------------------------------------------------------------------------- processes


def machine_busy_seconds() -> tuple[float, float]:
    """CPU time the machine's CPUs spent busy so far, and of it in niced processes (/proc/stat)."""
    fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS, nice / CLOCK_TICKS


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def workers_cpu(workers: Sequence[Worker]) -> float:
    return sum(cpu_seconds(worker.process.pid) for worker in workers)


class Worker:
    """``python -m gateway resolve`` as a child process, its output in a file."""

    def __init__(self, config: Path, worker_id: str, log_dir: Path) -> None:
        self.worker_id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_GATEWAY__")}
        argv = [sys.executable, "-m", "gateway", "resolve", "--config", str(config)]
        argv += ["--worker-id", worker_id, "--leave"]
        self.process = children.start(argv, self._log, env)

    def wait_connected(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while "resolver_subscribed" not in self.log_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker {self.worker_id} did not connect:\n{self.log_text()[-2000:]}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self) -> tuple[int, int]:
        """SIGTERM (it finishes what it holds and leaves); its (batches, records) summary."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        found = SUMMARY.search(self.log_text())
        return (0, 0) if found is None else (int(found[2]), int(found[3]))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def start_workers(config: Path, count: int, run: str, log_dir: Path) -> list[Worker]:
    """``count`` workers (ids ``<run>-w<n>``), connected and subscribed."""
    workers = [Worker(config, f"{run}-w{n}", log_dir) for n in range(1, count + 1)]
    for worker in workers:
        worker.wait_connected()
    return workers


def subscriber_main(port: int, topic: str, conn: Connection) -> None:
    """The subscriber process: timestamps every observations batch; answers the parent."""
    received: list[tuple[float, str, int]] = []
    subscribed = threading.Event()

    def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        now = time.monotonic()
        name = ""
        for key, value in getattr(message.properties, "UserProperty", []):
            if key == "batch":
                name = value
        received.append((now, name, record_count(message.payload)))

    def on_connect(client: paho.Client, *_args: object) -> None:
        client.subscribe(topic, options=SubscribeOptions(qos=1))

    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fleet-bench-subscriber-{os.getpid()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    try:
        while True:
            try:
                command = conn.recv()
            except EOFError:
                return
            if command == "ready":
                conn.send(subscribed.wait(WAIT_S))
            elif command == "progress":
                conn.send((len(received), received[-1][0] if received else math.nan))
            elif command == "take":
                conn.send(received[:])
                received.clear()
            else:
                return
    finally:
        client.disconnect()
        client.loop_stop()


class Subscriber:
    """The parent's handle on the subscriber process."""

    def __init__(self, port: int, topic: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=subscriber_main, args=(port, topic, child), daemon=True
        )
        self.process.start()
        self._conn.send("ready")
        if not self._conn.recv():
            sys.exit("the subscriber did not subscribe")

    def progress(self) -> tuple[int, float]:
        self._conn.send("progress")
        count, last = self._conn.recv()
        return int(count), float(last)

    def take(self) -> list[tuple[float, str, int]]:
        self._conn.send("take")
        received: list[tuple[float, str, int]] = self._conn.recv()
        return received

    def wait_for(self, expected: int, workers: Sequence[Worker]) -> None:
        """Until ``expected`` observations batches arrived, or the workers went quiet.

        Quiet: no observations batch arrived and the workers used no CPU for :data:`QUIET_S`
        (some batches may resolve to no observation, so ``expected`` may never be reached).
        """
        began = time.monotonic()
        seen, changed, cpu = -1, began, workers_cpu(workers)
        while time.monotonic() - began < RUN_LIMIT_S:
            count, _ = self.progress()
            now = time.monotonic()
            if count >= expected:
                return
            if count != seen:
                seen, changed, cpu = count, now, workers_cpu(workers)
            elif now - changed >= QUIET_S:
                if workers_cpu(workers) - cpu < IDLE_CPU_S:
                    return
                changed, cpu = now, workers_cpu(workers)
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def publish_all(port: int, payloads: Sequence[tuple[str, bytes]]) -> float:
    """Publish every batch at QoS 1 as fast as the broker acknowledges them; the seconds taken."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id="fleet-bench-publisher",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    began = time.monotonic()
    try:
        unacked: list[paho.MQTTMessageInfo] = []
        for topic, payload in payloads:
            unacked.append(client.publish(topic, payload, qos=1))
            if len(unacked) >= 1000:
                unacked = wait_published(unacked, 500)
        wait_published(unacked, 0)
        return time.monotonic() - began
    finally:
        client.disconnect()
        client.loop_stop()


def wait_published(infos: list[paho.MQTTMessageInfo], leave: int) -> list[paho.MQTTMessageInfo]:
    deadline = time.monotonic() + WAIT_S
    while len(infos) > leave:
        infos = [info for info in infos if not info.is_published()]
        if time.monotonic() > deadline:
            sys.exit(f"mosquitto did not acknowledge {len(infos)} batches in {WAIT_S:g} s")
        if len(infos) > leave:
            time.sleep(0.002)
    return infos


# ------------------------------------------------------------------------------- the runs


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU seconds used over a run, by whom."""

    workers: float
    broker: float
    bench: float
    """The benchmark's own processes: the publisher or player, and the subscriber."""
    others: float
    """Every other process on the machine: not ours; near zero on a quiet machine."""
    niced: float
    """Of ``others``, niced processes' user time. They still compete with the run: with the
    kernel's autogroup scheduling (sched_autogroup_enabled) nice only ranks processes of one
    session, and every worker runs in a session of its own."""
    span_s: float
    """The wall time metered."""

    @property
    def others_cores(self) -> float:
        """Other processes' load, in cores: above ~0.1 they took CPU the run needed."""
        return self.others / self.span_s if self.span_s > 0 else 0.0


class CpuMeter:
    """CPU seconds used over a span, per :class:`Cpu` category (from /proc)."""

    def __init__(self, workers: Sequence[Worker], broker: Broker, subscriber: Subscriber) -> None:
        self._pids = (
            [worker.process.pid for worker in workers],
            [broker.pid],
            [os.getpid(), subscriber.process.pid],
        )
        self._start = self._read()
        self._began = time.monotonic()

    def _read(self) -> list[float]:
        return [sum(cpu_seconds(pid) for pid in pids) for pids in self._pids] + list(
            machine_busy_seconds()
        )

    def stop(self) -> Cpu:
        workers, broker, bench, busy, niced = (
            b - a for a, b in zip(self._start, self._read(), strict=True)
        )
        others = busy - workers - broker - bench
        return Cpu(workers, broker, bench, others, niced, time.monotonic() - self._began)


@dataclass(frozen=True, slots=True)
class Throughput:
    workers: int
    publish_s: float
    wall_s: float
    resume_s: float
    records: int
    observations: int
    batches_seen: int
    cpu: Cpu
    split: list[int]
    resolved_records: int
    longest_gap_s: float
    """The longest silence between two observations batches received."""


@dataclass(frozen=True, slots=True)
class Bench:
    """What every run uses: the site, the broker, the subscriber, the load."""

    config: Path
    topics: FleetTopics
    broker: Broker
    subscriber: Subscriber
    load: Load
    log_dir: Path


def throughput_run(bench: Bench, count: int) -> Throughput:
    broker, subscriber, load = bench.broker, bench.subscriber, bench.load
    workers = start_workers(bench.config, count, f"t{count}", bench.log_dir)
    try:
        for worker in workers:
            worker.signal(signal.SIGSTOP)
        publish_s = publish_all(broker.port, load.payloads)
        meter = CpuMeter(workers, broker, subscriber)
        resumed = time.monotonic()
        for worker in workers:
            worker.signal(signal.SIGCONT)
        subscriber.wait_for(len(load.payloads), workers)
        cpu = meter.stop()
        summaries = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    received = subscriber.take()
    if not received:
        sys.exit(f"no observations arrived with {count} workers")
    arrivals = sorted(at for at, _, _ in received)
    first, last = arrivals[0], arrivals[-1]
    return Throughput(
        workers=count,
        publish_s=publish_s,
        wall_s=last - first,
        resume_s=last - resumed,
        records=load.records,
        observations=sum(n for _, _, n in received),
        batches_seen=len({name for _, name, _ in received}),
        cpu=cpu,
        split=[batches for batches, _ in summaries],
        resolved_records=sum(records for _, records in summaries),
        longest_gap_s=max((b - a for a, b in itertools.pairwise(arrivals)), default=0.0),
    )


@dataclass(frozen=True, slots=True)
class Latency:
    workers: int
    scene_s: float
    wall_s: float
    sightings: int
    records: int
    batches: int
    latencies_ms: list[float]
    cpu: Cpu


def latency_run(bench: Bench, count: int, speed: float) -> Latency:
    broker, subscriber = bench.broker, bench.subscriber
    sightings = bench.load.latency_sightings
    if not sightings:
        sys.exit("no sightings in the latency window: lower --latency-from")
    workers = start_workers(bench.config, count, f"l{count}", bench.log_dir)
    try:
        player = FleetPlayer(
            "127.0.0.1", broker.port, bench.topics, client_id="fleet-bench-latency-player"
        )
        origin = sightings[0].at
        meter = CpuMeter(workers, broker, subscriber)
        began = time.monotonic()

        def pace(at: float) -> None:
            delay = began + (at - origin) / speed - time.monotonic()
            if delay > 0.0005:
                time.sleep(delay)

        try:
            counts = player.play(sightings, pace=pace)
        finally:
            player.close()
        wall = time.monotonic() - began
        subscriber.wait_for(counts.batches, workers)
        cpu = meter.stop()
        for worker in workers:
            worker.stop()
    finally:
        for worker in workers:
            worker.kill()
    arrived: dict[tuple[str, int, int], float] = {}
    for at, name, _ in subscriber.take():
        gateway, boot, seq = name.rsplit("/", 2)
        arrived.setdefault((gateway, int(boot), int(seq)), at)
    latencies = [
        (arrived[key] - sent) * 1000 for key, sent in counts.sent_at.items() if key in arrived
    ]
    return Latency(
        workers=count,
        scene_s=sightings[-1].at - origin,
        wall_s=wall,
        sightings=counts.sightings,
        records=counts.records,
        batches=counts.batches,
        latencies_ms=latencies,
        cpu=cpu,
    )


# ------------------------------------------------------------------------------- output


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), {platform.machine()}, Python " + (
        platform.python_version()
    )


def mosquitto_version(binary: str) -> str:
    try:
        output = subprocess.run(  # noqa: S603 - the broker binary, asking its version
            [binary, "-h"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "mosquitto"
    return output.splitlines()[0].replace(" version", "") if output else "mosquitto"


def cpu_text(cpu: Cpu) -> str:
    return (
        f"CPU over {cpu.span_s:.1f} s: workers {cpu.workers:.1f} s, mosquitto {cpu.broker:.1f} s, "
        f"benchmark (publisher/player, subscriber) {cpu.bench:.1f} s, other processes on the "
        f"machine {cpu.others:.1f} s (niced {cpu.niced:.1f} s)"
    )


def print_throughput(load: Load, results: list[Throughput]) -> None:
    per_record = load.advert_equivalent / load.records
    print(
        "\nthroughput: every sightings batch queued in the paused workers' sessions, then the "
        "workers released at once;\nrecords/s = sightings records / wall time from the first "
        "observations batch received to the last;\nper worker-CPU-s = sightings records / CPU "
        "seconds the workers used (a core's worth of worker)"
    )
    header = (
        f"{'workers':>7} {'wall s':>6} {'records/s':>9} {'advert-eq/s':>11} {'batches/s':>9} "
        f"{'per worker-CPU-s':>16} {'CPU s: workers':>14} {'mosquitto':>9} {'bench':>5} "
        f"{'others':>6}  batches per worker"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate = r.records / r.wall_s
        print(
            f"{r.workers:>7} {r.wall_s:>6.1f} {rate:>9,.0f} {rate * per_record:>11,.0f} "
            f"{len(load.payloads) / r.wall_s:>9,.0f} {r.records / r.cpu.workers:>16,.0f} "
            f"{r.cpu.workers:>14.1f} {r.cpu.broker:>9.1f} {r.cpu.bench:>5.1f} "
            f"{r.cpu.others:>6.1f}  {'/'.join(str(n) for n in r.split)}"
        )
    for r in results:
        complete = r.resolved_records == r.records
        print(
            f"  {r.workers} worker(s): published in {r.publish_s:.1f} s; resume to last "
            f"observation {r.resume_s:.1f} s; workers resolved {r.resolved_records:,} of "
            f"{r.records:,} records ({'complete' if complete else 'INCOMPLETE'}); "
            f"{r.observations:,} observation records in {r.batches_seen:,} batches received; "
            f"longest gap between two {r.longest_gap_s * 1000:,.0f} ms"
        )
        if r.cpu.others_cores > BUSY_CORES:
            print(f"    WARNING: {BUSY_WARNING.format(r.cpu.others_cores)}")


def print_latency(result: Latency, capacity: float | None) -> None:
    values = result.latencies_ms
    if not values:
        print("\nlatency: no observations arrived")
        return
    quantiles = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    print(
        f"\nlatency: {result.workers} workers, player paced at "
        f"{result.scene_s / result.wall_s:.1f}x scene time: "
        f"{result.records / result.wall_s:,.0f} records/s in "
        f"{result.batches / result.wall_s:,.0f} batches/s ({result.sightings:,} adverts, "
        f"{result.scene_s:.0f} s of scene in {result.wall_s:.1f} s);\nfrom the player handing "
        "a sightings batch to paho to the subscriber process receiving its observations batch"
    )
    header = f"{'batches':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    print(header)
    print("-" * len(header))
    print(
        f"{len(values):>8,} {quantiles[49]:>7.2f} {quantiles[94]:>7.2f} {quantiles[98]:>7.2f} "
        f"{max(values):>7.2f}"
    )
    print(f"  {cpu_text(result.cpu)}")
    if result.cpu.others_cores > BUSY_CORES:
        print(f"  WARNING: {BUSY_WARNING.format(result.cpu.others_cores)}")
    rate = result.records / result.wall_s
    if capacity is not None and rate > LATENCY_LOAD * capacity:
        print(
            f"  WARNING: {rate:,.0f} records/s is {rate / capacity:.0%} of the "
            f"{capacity:,.0f} records/s {result.workers} workers reached: the latency includes "
            "queueing; lower --latency-speed"
        )
    missing = result.batches - len(values)
    if missing:
        print(f"  {missing} batches resolved to no observation (not counted)")


# ------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", type=Path, default=REPO / "configs" / "scenes" / "airport.toml")
    parser.add_argument("--seed", type=int, help="the scene's seed (default: the scene's own)")
    parser.add_argument(
        "--scene-seconds",
        type=float,
        help="scene time resolved in each throughput run (default: the whole scene)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-workers", type=int, default=2)
    parser.add_argument(
        "--latency-speed", type=float, default=10.0, help="scene seconds per wall second"
    )
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="wall seconds")
    parser.add_argument(
        "--latency-from", type=float, default=1200.0, help="scene offset of the latency run (s)"
    )
    parser.add_argument(
        "--max-inflight", type=int, help="the workers' [mqtt] max_inflight (default: the default)"
    )
    parser.add_argument("--mosquitto", help="the mosquitto program (default: found on PATH)")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # the table's lines as they come

    try:
        binary = find_mosquitto(args.mosquitto)
    except DemoError as exc:
        sys.exit(str(exc))
    began = time.monotonic()
    scene = SimScene(args.scene, seed=args.seed)
    latency_window = (
        args.latency_from,
        args.latency_from + args.latency_speed * args.latency_seconds,
    )
    with (
        tempfile.TemporaryDirectory(prefix="fleet-bench-") as work_dir,
        tempfile.TemporaryDirectory(prefix="fleet-bench-broker-") as broker_dir,
    ):
        work = Path(work_dir)
        broker = Broker(binary, Path(broker_dir))
        broker.start()  # first: no thread may run while children start (gateway.demo.children)
        subscriber: Subscriber | None = None
        try:
            config = site_config(scene, work, broker.port, args.max_inflight)
            topics = FleetTopics(PREFIX, str(scene.config_document()["site"]))
            load = build_load(scene, topics, args.scene_seconds, latency_window)
            if len(load.payloads) > QUEUE_LIMIT:
                sys.exit(
                    f"{len(load.payloads):,} batches exceed what one paused worker's session "
                    f"holds ({QUEUE_LIMIT:,}): lower --scene-seconds"
                )
            print(
                f"fleet benchmark: scene {scene.name} ({args.scene.name}, seed "
                f"{scene.run.seed}), {len(scene.run.scene.gateways)} keyless gateways, "
                f"{load.scene_s:,.0f} s of scene\n"
                f"machine: {machine()}; {mosquitto_version(binary)} on 127.0.0.1; nothing "
                "pinned: workers, mosquitto, publisher and subscriber share the CPUs; load "
                f"average at start {os.getloadavg()[0]:.2f}\n"
                f"load: {load.adverts:,} adverts heard -> {load.records:,} report records "
                f"({load.advert_equivalent / load.records:.2f} adverts per record) in "
                f"{len(load.payloads):,} sightings batches ({load.nbytes / 1e6:.1f} MB, "
                f"{load.records / len(load.payloads):.0f} records per batch); prepared in "
                f"{time.monotonic() - began:.0f} s"
            )
            subscriber = Subscriber(broker.port, topics.observations_filter())
            bench = Bench(config, topics, broker, subscriber, load, work)
            results = []
            for count in args.workers:
                results.append(throughput_run(bench, count))
                print(f"  ({count} worker(s) done)", file=sys.stderr)
            print_throughput(load, results)
            capacity = next(
                (r.records / r.wall_s for r in results if r.workers == args.latency_workers), None
            )
            print_latency(latency_run(bench, args.latency_workers, args.latency_speed), capacity)
        finally:
            if subscriber is not None:
                subscriber.close()
            broker.stop()
            dropped = [
                line
                for line in broker.log_tail(1000).splitlines()
                if "dropped" in line.lower() or "error" in line.lower()
            ]
        for line in dropped:
            print(f"mosquitto: {line.strip()}")
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
