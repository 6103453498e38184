"""The private broker's queue limit, and how a run learns that mosquitto dropped messages.

mosquitto drops QoS 1 messages silently once a session's queue is full; the only trace is a
notice in its log. The fleet command reads it to say a run lost messages (docs/fleet.md).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes

from gateway.delivery.mqtt_client import properties
from gateway.demo.broker import Broker, config_text
from tests.mosquitto import require_mosquitto, wait_until

QUEUE = 3


def _client(port: int, client_id: str) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    session = properties(PacketTypes.CONNECT)
    session.SessionExpiryInterval = 600
    client.connect("127.0.0.1", port, clean_start=False, properties=session)
    client.loop_start()
    return client


def test_the_queue_limit_is_written_to_the_config(tmp_path: Path) -> None:
    assert "max_queued_messages 100000" in config_text(tmp_path, 41234).splitlines()
    assert "max_queued_messages 7" in config_text(tmp_path, 41234, 7).splitlines()


def test_a_full_session_queue_is_named_from_the_brokers_log() -> None:
    with tempfile.TemporaryDirectory() as directory:
        broker = Broker(require_mosquitto(), Path(directory), max_queued=QUEUE)
        broker.start()
        try:
            assert broker.dropped_clients() == []
            away = _client(broker.port, "away-subscriber")
            subscribed = threading.Event()
            away.on_subscribe = lambda *_args: subscribed.set()
            away.subscribe("queue/test", qos=1)
            assert subscribed.wait(10)
            away.disconnect()
            away.loop_stop()  # the session stays: its messages queue at the broker
            publisher = _client(broker.port, "publisher")
            infos = [publisher.publish("queue/test", b"x", qos=1) for _ in range(QUEUE * 10)]
            for info in infos:
                info.wait_for_publish(10)
            publisher.disconnect()
            publisher.loop_stop()
            wait_until(lambda: broker.dropped_clients() != [], "the drop notice")
            assert broker.dropped_clients() == ["away-subscriber"]
        finally:
            broker.stop()
