"""A day of the store scene in virtual time: memory, descriptors and tables stay flat.

Three processes, as in production plus a simulator:

- ``beacon-sim run configs/scenes/store.toml --duration <hours> --out <fifo>`` plays the store
  for :data:`HOURS` virtual hours (flows keep arriving for the whole run; the scene file says
  30 minutes, ``--duration`` stretches it) into a named pipe, as fast as it goes;
- the gateway, ``beacon-gateway run --config <store config> --replay <fifo>`` with the systemd
  unit's malloc setting, run through :mod:`tests.faults.soak_gateway`, which samples it at every
  virtual hour of the source's clock (its VmRSS, open fds, Python objects, outbox depth and the
  sizes of its tables), publishing through its SQLite outbox to a real mosquitto;
- this test: a QoS 1 subscriber with a persistent session that keeps every event id, and a
  scraper reading ``/metrics`` and ``/healthz`` while the day plays.

The simulator runs in its own process so that its memory is not the gateway's. The replay is
finite: when the pipe closes, the daemon settles the silence (the presence horizon), delivers
the backlog, publishes ``offline`` and exits 0.

Three memories of the gateway fill during its first day by design, all bounded: the resolver
remembers retired EIDs for a day (at most ``eid.resolver.DEFAULT_MAX_RETIRED``, ~10 MiB: replays
are told from unknown EIDs), ``eid.telemetry`` caches one eTLM cipher per beacon key (at most
1,024, ~3 KiB each), and the floor-plan fitter caches a model per gateway combination beacons
are heard by (``gateway.core.floorplan.CACHE_BYTES``; rarer combinations keep turning up for
hours). Their sizes are sampled, checked against their bounds, and set aside; what is left
must be flat. Asserted after a warm-up of :data:`WARMUP_HOURS`: open fds, tasks and
threads stay the same; Python objects and resident memory (less the set-aside memories) do not
grow beyond a small slack between the second and the last quarter of the run, nor climb
steadily; the per-beacon and per-address tables follow the crowd; the outbox does not
accumulate; every event the gateway accepted was received. Nothing is asserted about time.

The short mode (the default) plays :data:`SHORT_HOURS` virtual hours; the long mode
(``BEACON_GATEWAY_LONG_FAULTS=1``) plays a full day.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import pytest

from eid.resolver import DEFAULT_MAX_RETIRED
from firmware_sim.run import prepare
from firmware_sim.scene import load_scene
from gateway.sources.sim import SimScene
from tests.faults.report import long_mode
from tests.mosquitto import Mosquitto, Subscriber, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    import paho.mqtt.client as paho

    from tests.faults.report import FaultReport

ROOT: Final = Path(__file__).resolve().parents[2]
STORE: Final = ROOT / "configs" / "scenes" / "store.toml"
HOUR_S: Final = 3600.0
SHORT_HOURS: Final = 6
LONG_HOURS: Final = 24
HOURS: Final = LONG_HOURS if long_mode() else SHORT_HOURS
WARMUP_HOURS: Final = 3 if long_mode() else 2
"""Hours left out of the flatness checks: the crowd builds up, caches and pools fill."""
RUN_LIMIT_S: Final = 3600.0 if long_mode() else 900.0
"""Hang guard for the whole day (a limit, never a measurement)."""
RSS_SLACK_KIB: Final = 2 * 1024
"""Resident memory (less the set-aside memories) may grow this much from the second to the last
quarter of the run: allocator noise (arenas, SQLite's page cache). A leak of one object per
event (~2,500 an hour) passes it within the long run's dozen hours between the quarters."""
BACKLOG_SLACK: Final = 1000.0
"""The undelivered events an hour of unpaced replay leaves at its end may differ this much from
the second to the last quarter of the run (it depends on where the hour falls in a burst)."""
OBJECT_SLACK: Final = 0.01
"""Python objects (less the cached ciphers') may grow this share between those quarters."""
RETIRED_BYTES_PER_ENTRY: Final = 24
"""The resolver's retired-EID ring: key, value and time, 8 bytes each (eid/retired.py); its
hash map adds 16 bytes per slot, counted from the sampled slot count."""
AS_DEPLOYED: Final = {"MALLOC_MMAP_THRESHOLD_": "131072"}
"""The gateway's environment from configs/systemd/beacon-gateway.service: large blocks (the
resolver's tables when they grow) are mmapped, so freed ones go back to the OS."""
CIPHER_KIB: Final = 3.0
"""Resident memory of one cached eTLM cipher (measured: 2.7 KiB, its OpenSSL AES contexts)."""


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        yield running


class EventIds(Subscriber):
    """A subscriber that keeps event ids only (a day of payloads is not needed here)."""

    def __init__(self, port: int, topics: list[str]) -> None:
        super().__init__(port, topics)
        self.ids: set[str] = set()
        self.deliveries = 0
        self.statuses: list[str] = []

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        document = json.loads(message.payload)
        with self._lock:
            if message.topic.endswith("/status"):
                self.statuses.append(str(document["status"]))
                return
            self.deliveries += 1
            self.ids.add(str(document["event_id"]))


def toml_value(value: object) -> str:
    """A TOML value for the numbers, strings and lists of a scene's gateway configuration."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def store_config(directory: Path, broker: Mosquitto, http_port: int) -> tuple[Path, str]:
    """The store's gateway configuration, its key registry for :data:`HOURS`, and its topics."""
    scene = load_scene(STORE).model_copy(update={"duration_s": HOURS * HOUR_S})
    registry = directory / "keys.toml"
    registry.write_text(prepare(scene).registry_toml(), encoding="utf-8")
    registry.chmod(0o600)
    document = SimScene.from_scene(scene).config_document()
    lines = [
        f"site = {toml_value(document['site'])}",
        f"gateway_id = {toml_value(document['gateway_id'])}",
        f"key_registry = {toml_value(str(registry))}",
        "",
        "[presence]",
        *(f"{key} = {toml_value(value)}" for key, value in document["presence"].items()),
        "",
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {broker.port}",
        "backoff_base_s = 0.2",
        "backoff_cap_s = 1",
        "",
        "[outbox]",
        f"path = {toml_value(str(directory / 'outbox.sqlite3'))}",
        "",
        "[http]",
        f"port = {http_port}",
        "",
        "[logging]",
        'format = "json"',
    ]
    for table in ("gateways", "zones"):
        for entry in document[table]:
            lines += ["", f"[[{table}]]"]
            lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
    config = directory / "gateway.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    topics = f"beacon-gateway/v1/{document['site']}/{document['gateway_id']}"
    return config, topics


class Scraper(threading.Thread):
    """Reads ``/metrics`` and ``/healthz`` in a loop while the gateway runs (ops under load)."""

    def __init__(self, port: int) -> None:
        super().__init__(name="scraper", daemon=True)
        self.port = port
        self.scrapes = 0
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for path in ("/metrics", "/healthz"):
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.port}{path}", timeout=5
                    ) as reply:
                        reply.read()
                    self.scrapes += 1
                except urllib.error.HTTPError:
                    self.scrapes += 1  # /healthz answers 503 while not ready: still an answer
                except OSError:
                    self.failures += 1  # not listening yet, or already gone


@contextlib.contextmanager
def child(
    command: list[str], log: IO[bytes], environment: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that is always gone afterwards (terminated, then killed)."""
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=log, env={**os.environ, **(environment or {})}
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(20)


def play_a_day(
    directory: Path, broker: Mosquitto
) -> tuple[list[dict[str, Any]], EventIds, Scraper]:
    """Run simulator, gateway and subscriber for :data:`HOURS`; the gateway's samples."""
    http_port = free_port()
    config, topics = store_config(directory, broker, http_port)
    fifo = directory / "capture.fifo"
    os.mkfifo(fifo)
    samples = directory / "samples.jsonl"
    start = load_scene(STORE).start
    simulate = [sys.executable, "-m", "firmware_sim", "run", str(STORE)]
    simulate += ["--duration", str(HOURS * HOUR_S), "--out", str(fifo)]
    gateway = [sys.executable, "-m", "tests.faults.soak_gateway", str(samples), str(start)]
    gateway += [str(HOUR_S), "--", "run", "--config", str(config), "--replay", str(fifo)]
    scraper = Scraper(http_port)
    with (
        EventIds(broker.port, [f"{topics}/#"]) as subscriber,
        (directory / "sim.log").open("wb") as sim_log,
        (directory / "gateway.log").open("wb") as gateway_log,
        child(simulate, sim_log) as sim,
        child(gateway, gateway_log, AS_DEPLOYED) as gateway_process,
    ):
        scraper.start()
        try:
            gateway_process.wait(RUN_LIMIT_S)
            sim.wait(RUN_LIMIT_S)
        finally:
            scraper.stopping.set()
            scraper.join()
        log = (directory / "gateway.log").read_text(errors="replace")
        assert gateway_process.returncode == 0, log[-4000:]
        assert sim.returncode == 0, (directory / "sim.log").read_text(errors="replace")
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        produced = rows[-1]["events"]
        wait_until(
            lambda: len(subscriber.ids) >= produced and "offline" in subscriber.statuses,
            "every event and the offline status",
            limit_s=60,
        )
    return rows, subscriber, scraper


def quarter_medians(values: list[float]) -> tuple[float, float]:
    """Medians of the second and the last quarter of ``values``."""
    quarter = max(len(values) // 4, 1)
    return statistics.median(values[quarter : 2 * quarter]), statistics.median(values[-quarter:])


def steady_climb(values: list[float], slack: float) -> bool:
    """Whether ``values`` rise at every step and by more than ``slack`` in all (a trend)."""
    rising = all(after > before for before, after in itertools.pairwise(values))
    return len(values) > 2 and rising and values[-1] - values[0] > slack


def set_aside_kib(row: dict[str, Any]) -> float:
    """Resident memory of the bounded first-day memories in ``row`` (EIDs, ciphers, models)."""
    retired: int = row["retired_eids"] * RETIRED_BYTES_PER_ENTRY + row["retired_map_slots"] * 16
    ciphers: int = row["etlm_ciphers"]
    fitter: int = row["fitter_cache_bytes"]
    return (retired + fitter) / 1024 + ciphers * CIPHER_KIB


def check_flat(name: str, values: list[float], slack: float) -> None:
    """No growth beyond ``slack`` from the second to the last quarter, no steady climb."""
    second, last = quarter_medians(values)
    assert last - second <= slack, (name, values)
    assert not steady_climb(values, slack), (name, values)


@pytest.mark.timeout(RUN_LIMIT_S + 120)
def test_a_day_of_the_store_stays_flat(
    tmp_path: Path, broker: Mosquitto, fault_report: FaultReport
) -> None:
    rows, subscriber, scraper = play_a_day(tmp_path, broker)
    hourly = [row for row in rows if not row.get("final")]
    final = rows[-1]
    assert final.get("final") is True
    assert [row["hour"] for row in hourly] == list(range(1, len(hourly) + 1))
    assert len(hourly) >= HOURS - 1  # the last boundary may coincide with the scene's end
    settled = [row for row in hourly if row["hour"] > WARMUP_HOURS]

    # Every event accepted was delivered (QoS 1: at least once); nothing is left behind.
    assert final["outbox_depth"] == 0
    assert final["acked"] >= final["events"]
    assert len(subscriber.ids) == final["events"]
    # It drains as it goes: the backlog an unpaced replay builds up within an hour does not
    # grow from hour to hour, and once delivered at each sample nothing is left in the outbox.
    check_flat("backlog", [float(row["backlog"]) for row in settled], BACKLOG_SLACK)
    assert all(row["outbox_depth"] == 0 for row in hourly)

    # The bounded first-day memories stay within their bounds.
    assert all(0 <= row["retired_eids"] <= DEFAULT_MAX_RETIRED for row in rows)
    assert all(0 <= row["etlm_ciphers"] <= row["etlm_cipher_cap"] for row in rows)
    assert all(0 <= row["fitter_cache_bytes"] <= row["fitter_cache_cap"] for row in rows)

    # Descriptors, tasks and threads: the same at every settled hour, give or take what one
    # /metrics or /healthz request in flight holds (its socket and its handler task).
    for figure, transient in (("fds", 2), ("tasks", 2), ("threads", 1)):
        values = [row[figure] for row in settled]
        assert max(values) - min(values) <= transient, (figure, values)

    # Python objects and resident memory, less the set-aside memories: flat.
    objects = [
        row["gc_objects"] - row["etlm_ciphers"] * row["objects_per_cipher"] for row in settled
    ]
    check_flat("gc_objects", objects, OBJECT_SLACK * statistics.median(objects))
    check_flat("rss_kib", [row["rss_kib"] - set_aside_kib(row) for row in settled], RSS_SLACK_KIB)

    # Tables that follow the crowd: they come and go with it.
    for table in ("beacons_tracked", "paired_addresses", "telemetry_notes"):
        sizes = [float(row[table]) for row in settled]
        check_flat(table, sizes, statistics.median(sizes) + 10)
    assert scraper.scrapes > 0

    first, end = hourly[0], hourly[-1]
    fault_report.record(
        f"{HOURS}-hour soak (virtual)",
        f"store scene for {HOURS} virtual hours (beacon-sim --duration, unpaced) -> "
        "beacon-gateway run --replay -> SQLite outbox -> mosquitto -> QoS 1 subscriber; "
        f"sampled every virtual hour, flatness checked after {WARMUP_HOURS} h",
        virtual_hours=HOURS,
        sightings=final["sightings"],
        events_produced=final["events"],
        events_received=len(subscriber.ids),
        duplicates=subscriber.deliveries - len(subscriber.ids),
        backlog_max=max(row["backlog"] for row in hourly),
        outbox_depth_end=final["outbox_depth"],
        rss_kib_start=first["rss_kib"],
        rss_kib_end=end["rss_kib"],
        rss_kib_max=max(row["rss_kib"] for row in hourly),
        rss_kib_set_aside_end=round(set_aside_kib(end)),
        rss_kib_rest_start=round(first["rss_kib"] - set_aside_kib(first)),
        rss_kib_rest_end=round(end["rss_kib"] - set_aside_kib(end)),
        retired_eids_end=end["retired_eids"],
        etlm_ciphers_end=end["etlm_ciphers"],
        fitter_cache_kib_end=end["fitter_cache_bytes"] // 1024,
        gc_objects_start=first["gc_objects"],
        gc_objects_end=end["gc_objects"],
        fds_start=first["fds"],
        fds_end=end["fds"],
        beacons_tracked_max=max(row["beacons_tracked"] for row in hourly),
        paired_addresses_max=max(row["paired_addresses"] for row in hourly),
        telemetry_notes_max=max(row["telemetry_notes"] for row in hourly),
        readings_end=end["readings"],
        threads=end["threads"],
        tasks=end["tasks"],
        ops_scrapes=scraper.scrapes,
    )
