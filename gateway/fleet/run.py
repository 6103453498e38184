"""``beacon-gateway fleet``: a scene's whole fleet on this machine, scored against its truth.

A private mosquitto (as the demo's), ``--workers`` resolver workers and one arbiter per shard as
child processes (the same commands a deployment runs), the scene's gateways played as keyless
gateways (:class:`~gateway.fleet.player.FleetPlayer`, paced at ``--speed``), a subscriber
counting the arbiters' events, and at the end the presence score against the scene's ground
truth (the rules of ``beacon-gateway score``). Everything it started is stopped, whatever
happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.demo import children
from gateway.demo.broker import Broker, find_mosquitto
from gateway.demo.session import remove, work_directories
from gateway.demo.summary import Tally
from gateway.fleet.player import FleetPlayer
from gateway.fleet.site import ARBITER_ID, write_site
from gateway.scoring import score
from gateway.topics import FleetTopics

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from gateway.sources.sim import SimScene

READY_S: Final = 60.0
"""How long a child may take to connect before the run gives up."""
QUIET_S: Final = 5.0
"""The run ends once the arbiter has published nothing new for this long (wall time)..."""
EXIT_SETTLE_S: Final = 130.0
"""...and the last exits had time to be decided: the longest exit timeout (scene time)."""
QUEUE_LIMIT: Final = 50_000_000
"""The broker's queue per consumer session. The player may run ahead of a busy arbiter by
millions of observations: here that is a backlog to hold, not a slow client to shed."""


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """What to run."""

    workers: int = 2
    shards: int = 1
    speed: float = 10.0
    mosquitto: str | None = None


class _Child:
    """A child process of the run, its log in a file."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_dir: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_GATEWAY__")}
        env.update(settings or {})  # this child's own settings, as BEACON_GATEWAY__ variables
        self.process = children.start(command, self._log, env)  # stopped if the run dies

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + READY_S
        while text not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                msg = f"{self.name} did not start:\n{tail}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float | None:
        """The CPU time (user and system) it used so far; None where /proc cannot tell."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=READY_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


class _Events:
    """A subscriber counting the arbiter's events (duplicates by ``event_id`` dropped)."""

    def __init__(self, port: int, topic: str) -> None:
        self.tally = Tally()
        self.received = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="beacon-gateway-fleet-events",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = lambda c, *_: c.subscribe(topic, options=SubscribeOptions(qos=1))
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._ready.wait(READY_S):
            msg = "the events subscriber was not granted its subscription"
            raise RuntimeError(msg)

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        with contextlib.suppress(ValueError):
            event = json.loads(message.payload)
            with self._lock:
                self.received += 1
                if isinstance(event, dict):
                    self.tally.add(event)

    def count(self) -> int:
        with self._lock:
            return self.received

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run_fleet(scene: SimScene, options: FleetOptions, out: IO[str]) -> int:
    """Run the scene's fleet (see the module docstring); 0 when it ran to its end."""
    started = time.monotonic()
    directory, broker_dir = work_directories()  # as the demo's: mosquitto's own directory
    try:
        broker = Broker(find_mosquitto(options.mosquitto), broker_dir, max_queued=QUEUE_LIMIT)
        broker.start()
        started_children: list[_Child] = []
        try:
            document = scene.config_document()
            site = write_site(
                document, scene.run.registry_toml(), directory, broker.port, shards=options.shards
            )
            topics = FleetTopics("fleet", str(document["site"]))
            python = [sys.executable, "-m", "gateway"]
            for n in range(1, options.workers + 1):
                worker = _Child(
                    f"worker-{n}",
                    [*python, "resolve", "--config", str(site.config), "--worker-id", f"w{n}"],
                    directory,
                )
                started_children.append(worker)
                worker.wait_for("resolver_subscribed")
            arbiters = [
                _arbiter(python, site.config, options, shard, directory)
                for shard in range(options.shards)
            ]
            started_children += arbiters
            for arbiter in arbiters:
                arbiter.wait_for("observations_subscribed")
            # After the children: its paho thread would make their preexec_fn unsafe.
            events = _Events(broker.port, f"{topics.site_base}/+/presence/+")  # arbiters only
            out.write(
                f"fleet: {scene.name}: {len(document['gateways'])} gateways, "
                f"{options.workers} resolver worker(s), {options.shards} shard(s), "
                f"{options.speed:g}x\n"
            )
            out.flush()
            player = FleetPlayer("127.0.0.1", broker.port, topics)
            try:
                played = player.play(scene.sightings(), pace=_pacer(options.speed))
            finally:
                player.close()
            _settle(events, EXIT_SETTLE_S / options.speed)
            cpu: dict[str, float | None] = {"player": time.process_time()}
            cpu.update({child.name: child.cpu_seconds() for child in started_children})
            codes = {child.name: child.stop() for child in reversed(started_children)}
            started_children.clear()
            events.close()
            late = any("observations_late" in arbiter.log_text() for arbiter in arbiters)
            dropped = broker.dropped_clients()
            result = score(scene.truth(), events.tally.changes)
            tally = events.tally
            out.write(
                f"  played     {played.sightings} sightings -> {played.records} reports in "
                f"{played.batches} batches\n"
                f"  events     {tally.events} received: "
                + ", ".join(f"{n} {t}" for t, n in sorted(tally.by_type.items()))
                + f"\n  subjects   {len(tally.beacons)} beacons named by events\n"
                f"  accuracy   F1 {result.f1:.2f} (precision {result.precision:.2f}, "
                f"recall {result.recall:.2f}), zone IoU {result.zone_iou:.2f}\n"
                f"  cpu        {_cpu_line(cpu)}\n"
                f"  children   {', '.join(f'{k} exit {v}' for k, v in codes.items())}"
                f"{'; an arbiter logged late observations' if late else ''}\n"
                + (
                    f"  LOST       the broker dropped messages for {', '.join(dropped)}\n"
                    if dropped
                    else ""
                )
                + f"  wall time  {time.monotonic() - started:.0f} s\n"
            )
            return 0 if not dropped and all(code == 0 for code in codes.values()) else 1
        finally:
            for child in started_children:
                child.stop()
            broker.stop()
    finally:
        remove(directory, broker_dir)


def process_cpu_seconds(pid: int) -> float | None:
    """A live process's CPU time (user and system, seconds), from /proc; None if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = stat[stat.rindex(")") + 2 :].split()  # after the name, which may hold spaces
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_line(cpu: Mapping[str, float | None]) -> str:
    """``name N s`` for each process whose CPU time is known; what the line is about."""
    known = [f"{name} {seconds:.0f} s" for name, seconds in cpu.items() if seconds is not None]
    return ", ".join(known) + " (player: the simulator, the reporters and this command)"


def _arbiter(
    python: Sequence[str], config: Path, options: FleetOptions, shard: int, directory: Path
) -> _Child:
    """The arbiter of ``shard``: its own id (its MQTT session) and outbox when there are more."""
    command = [*python, "run", "--observations", "--config", str(config),
               "--realtime", "--speed", str(options.speed)]  # fmt: skip
    if options.shards == 1:
        return _Child(ARBITER_ID, command, directory)
    name = f"{ARBITER_ID}-{shard}"
    settings = {
        "BEACON_GATEWAY__GATEWAY_ID": name,
        "BEACON_GATEWAY__OUTBOX__PATH": str(directory / f"{name}.sqlite"),
    }
    return _Child(name, [*command, "--shard", str(shard)], directory, settings)


def _pacer(speed: float) -> Callable[[float], None]:
    """Sleep so that scene time runs ``speed`` times faster than the wall clock."""
    origin: list[float] = []

    def pace(at: float) -> None:
        if not origin:
            origin.extend((at, time.monotonic()))
            return
        due = origin[1] + (at - origin[0]) / speed
        delay = due - time.monotonic()
        if delay > 0.001:  # noqa: PLR2004 - below a millisecond, sleeping costs more
            time.sleep(delay)

    return pace


def _settle(events: _Events, exits_s: float) -> None:
    """Wait until the arbiter is quiet and its last exits had time to be decided."""
    deadline = time.monotonic() + exits_s
    seen, quiet_since = -1, time.monotonic()
    while True:
        count = events.count()
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        now = time.monotonic()
        if now >= deadline and now - quiet_since >= QUIET_S:
            return
        time.sleep(0.2)
