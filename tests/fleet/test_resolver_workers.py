"""Resolver workers killed and added mid-run: every batch resolved, never two answers for one.

Five minutes of the store scene are played as its gateways would play them without keys, onto a
real mosquitto; ``beacon-gateway resolve`` workers (child processes) share the work. Mid-run one
worker is SIGKILLed, a new one joins, and the killed one comes back under its own id (its MQTT
session: as systemd restarts it). A second subscriber records every sightings batch and every
observations batch. The oracle is an in-process resolver fed every sightings batch in order:
each batch's observations must arrive (nothing lost), and every delivery of a batch must be the
same bytes (a redelivered batch resolved again gives the same answer).
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Final

import pytest

from gateway.config import load_config
from gateway.core.fleet import Reporter
from gateway.core.wire import Batch, BatchKind, ObservedRecord, decode
from gateway.fleet.player import FleetPlayer
from gateway.fleet_cli import batch_resolver
from gateway.registry import KeyRegistry
from gateway.sources.sim import SimScene
from gateway.topics import FleetTopics
from tests.fleet.fleet_world import STORE_SCENE, WorkerProcess, site_files
from tests.mosquitto import Mosquitto, Subscriber, subscribed, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from gateway.config import Config
    from gateway.core.sighting import Sighting

SCENE_S: Final = 300.0
"""Scene time played: enough batches that the kills land mid-stream."""
SHARDS: Final = 2

pytestmark = pytest.mark.timeout(300)


def _observations(
    received: list[tuple[str, bytes]],
) -> dict[tuple[str, int, int], dict[str, set[bytes]]]:
    """Batch name -> topic -> the distinct payloads delivered there."""
    found: dict[tuple[str, int, int], dict[str, set[bytes]]] = {}
    for topic, payload in received:
        batch = decode(payload)
        found.setdefault(batch.key, {}).setdefault(topic, set()).add(payload)
    return found


def test_workers_killed_and_added_lose_nothing(tmp_path: Path) -> None:
    scene = SimScene(STORE_SCENE, seed=3)
    sightings = list(
        itertools.takewhile(lambda s: s.at < _start(scene) + SCENE_S, scene.sightings())
    )
    with Mosquitto() as broker:
        broker.start()
        files = site_files(scene, tmp_path, broker.port, shards=SHARDS)
        config = load_config(files.config)
        topics = FleetTopics("fleet", config.site)
        with subscribed(
            broker.port, [f"{topics.site_base}/+/sightings", topics.observations_filter()]
        ) as recorder:
            workers = [WorkerProcess(files.config, f"w{n}", tmp_path) for n in (1, 2, 3)]
            try:
                workers[0].start()
                workers[1].start()
                expected_batches = _count_batches(sightings)
                moments: dict[int, Callable[[], object]] = {
                    expected_batches // 4: workers[0].kill,
                    expected_batches // 2: workers[2].start,
                    3 * expected_batches // 4: workers[0].start,
                }

                def between(sent: int) -> None:
                    action = moments.pop(sent, None)
                    if action is not None:
                        action()

                player = FleetPlayer("127.0.0.1", broker.port, topics)
                try:
                    counts = player.play(sightings, between=between)
                finally:
                    player.close()
                assert counts.batches == expected_batches
                assert not moments, "every kill and start happened mid-run"

                sent = _sent(recorder, counts.batches)
                expected = _oracle(config, files.registry, sent)
                wanted = {key for key, records in expected.items() if records}
                wait_until(
                    lambda: wanted <= _observations(_delivered(recorder)).keys(),
                    f"observations of all {len(wanted)} batches",
                )
                time.sleep(0.5)  # let any late redelivery arrive too
                stopped = [worker.stop() for worker in workers]
            finally:
                for worker in workers:
                    worker.kill()
            delivered = _observations(_delivered(recorder))
    assert stopped == [0, 0, 0]
    assert delivered.keys() == wanted
    for key, topics_seen in delivered.items():
        for payloads in topics_seen.values():
            assert len(payloads) == 1, f"batch {key} was resolved into different answers"
        records = sorted(
            (r for p in topics_seen.values() for r in decode(next(iter(p))).records),
            key=_order,
        )
        assert records == sorted(expected[key], key=_order), f"batch {key}"
    # The killed worker came back to its session and took over what waited there.
    assert '"session_present": true' in workers[0].log_text()


def _start(scene: SimScene) -> float:
    return next(iter(scene.sightings())).at


def _order(record: object) -> tuple[int, str]:
    assert isinstance(record, ObservedRecord)
    return record.at_ms, record.beacon_id


def _count_batches(sightings: list[Sighting]) -> int:
    reporters: dict[str, Reporter] = {}
    total = 0
    for sighting in sightings:
        reporter = reporters.setdefault(sighting.gateway, Reporter(sighting.gateway, 0))
        total += len(reporter.process(sighting))
    return total + sum(len(r.flush()) for r in reporters.values())


def _sent(recorder: Subscriber, count: int) -> list[Batch]:
    def copies() -> list[bytes]:
        return [m.payload for m in recorder.messages() if m.topic.endswith("/sightings")]

    wait_until(lambda: len(copies()) >= count, f"the recorder's copy of {count} sightings batches")
    batches = [decode(payload) for payload in copies()]
    assert len(batches) == count
    return batches


def _delivered(recorder: Subscriber) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in recorder.messages() if "/fleet/observations/" in m.topic]


def _oracle(
    config: Config, registry_path: Path, batches: list[Batch]
) -> dict[tuple[str, int, int], list[ObservedRecord]]:
    resolver = batch_resolver(config, KeyRegistry.load(registry_path))
    out: dict[tuple[str, int, int], list[ObservedRecord]] = {}
    for batch in sorted(batches, key=lambda b: min((r.at_ms for r in b.records), default=0)):
        assert batch.kind is BatchKind.SIGHTINGS
        resolved = resolver.resolve(batch)
        out[batch.key] = [r for r in resolved.records if isinstance(r, ObservedRecord)]
    return out
