"""A busy consumer holds at most its inbox limit; the rest of a backlog waits at the broker.

With a real mosquitto: a backlog of observations batches is published to the arbiter's source
while it takes them slowly. mosquitto 2.0.11 sends past the Receive Maximum once
acknowledgements flow (mosquitto #2301); the source must still hold no more than its limit in
memory, and every batch must arrive.
"""

from __future__ import annotations

import asyncio
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.core.wire import Batch, BatchKind, ObservedRecord, encode
from gateway.delivery.mqtt_settings import MqttSettings
from gateway.fleet.observations import ObservationSource
from gateway.fleet.session_client import InboxLimit
from gateway.topics import FleetTopics
from tests.mosquitto import WAIT_S, Mosquitto

TOPICS = FleetTopics("fleet", "hall")
LIMIT = 5
BATCHES = 400
T0_MS = 1_767_225_600_000


def _payload(seq: int) -> bytes:
    record = ObservedRecord(T0_MS + seq, -60, 1, -20, f"bag-{seq % 7}")
    return encode(Batch(BatchKind.OBSERVATIONS, "gw-1", 1, seq, (record,)))


def _publish_all(port: int, first_taken: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        while not first_taken.is_set():  # until the source's subscription stands
            client.publish(TOPICS.observations(0), _payload(0), qos=1).wait_for_publish(WAIT_S)
            first_taken.wait(0.1)
        for seq in range(1, BATCHES):
            client.publish(TOPICS.observations(0), _payload(seq), qos=1).wait_for_publish(WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


async def _take_slowly(source: ObservationSource, first_taken: threading.Event) -> set[float]:
    seen: set[float] = set()
    deadline = time.monotonic() + WAIT_S
    async for sighting in source.sightings():
        first_taken.set()
        seen.add(sighting.at)
        if len(seen) == BATCHES or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)  # a busy arbiter: the backlog builds up
    return seen


def test_a_slow_arbiter_holds_its_inbox_limit_and_loses_nothing() -> None:
    with Mosquitto() as broker:
        settings = MqttSettings(
            host="127.0.0.1", port=broker.port, client_id="arbiter", status_topic="s"
        )
        source = ObservationSource(settings, TOPICS, inbox_limit=LIMIT)
        first_taken = threading.Event()
        publisher = threading.Thread(target=_publish_all, args=(broker.port, first_taken))
        publisher.start()
        try:
            seen = asyncio.run(_take_slowly(source, first_taken))
        finally:
            first_taken.set()
            publisher.join(WAIT_S)
    assert seen == {(T0_MS + seq) / 1000 for seq in range(BATCHES)}
    assert 1 <= source.inbox_limit.peak <= LIMIT


def test_a_closed_limit_lets_a_waiting_thread_go() -> None:
    limit = InboxLimit(1)
    assert limit.admit()
    admitted: list[bool] = []
    waiting = threading.Thread(target=lambda: admitted.append(limit.admit()))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()  # full: paho's thread would wait here
    limit.close()
    waiting.join(WAIT_S)
    assert admitted == [False]
    limit.taken()
    assert limit.peak == 1
