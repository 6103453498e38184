"""The arbiter's source without a broker: what it makes of each message it is handed."""

from __future__ import annotations

import paho.mqtt.client as paho

from gateway.core.wire import Batch, BatchKind, HeardRecord, ObservedRecord, encode
from gateway.delivery.mqtt_settings import MqttSettings
from gateway.fleet.observations import LATE_S, ObservationSource
from gateway.topics import FleetTopics

TOPICS = FleetTopics("fleet", "hall")
T0_MS = 1_767_225_600_000


def _source() -> ObservationSource:
    settings = MqttSettings(host="127.0.0.1", client_id="arbiter", status_topic="s")
    return ObservationSource(settings, TOPICS)


def _message(payload: bytes, topic: str | None = None) -> paho.MQTTMessage:
    message = paho.MQTTMessage(mid=1, topic=(topic or TOPICS.observations(0)).encode())
    message.payload = payload
    message.qos = 1
    return message


def _batch(seq: int, *at_ms: int, gateway: str = "gw-1") -> bytes:
    records = tuple(ObservedRecord(at, -60, 1, -20, f"bag-{i}") for i, at in enumerate(at_ms))
    return encode(Batch(BatchKind.OBSERVATIONS, gateway, 7, seq, records))


def test_a_batch_becomes_identified_sightings_of_its_gateway() -> None:
    source = _source()
    sightings = source._take(_message(_batch(1, T0_MS, T0_MS + 100)))
    assert [(s.gateway, s.at, s.rssi) for s in sightings] == [
        ("gw-1", T0_MS / 1000, -60),
        ("gw-1", (T0_MS + 100) / 1000, -60),
    ]
    assert [s.resolved.beacon_id for s in sightings if s.resolved] == ["bag-0", "bag-1"]


def test_a_redelivered_batch_is_skipped_but_the_same_name_on_another_shard_is_not() -> None:
    source = _source()
    payload = _batch(1, T0_MS)
    assert source._take(_message(payload))
    assert source._take(_message(payload)) == []
    assert source.duplicates == 1
    assert source._take(_message(payload, TOPICS.observations(1)))


def test_late_observations_are_counted_and_kept_out() -> None:
    source = _source()
    source._take(_message(_batch(1, T0_MS + 60_000)))
    late_ms = T0_MS + 60_000 - round(LATE_S * 1000) - 1
    timely_ms = T0_MS + 60_000 - round(LATE_S * 1000) + 1
    kept = source._take(_message(_batch(2, late_ms, timely_ms, gateway="gw-2")))
    assert [s.at for s in kept] == [timely_ms / 1000]
    assert source.late == 1


def test_unreadable_payloads_and_sightings_batches_are_rejected() -> None:
    source = _source()
    heard = Batch(BatchKind.SIGHTINGS, "gw-1", 1, 1, (HeardRecord(T0_MS, -60, 1, b"\x30"),))
    assert source._take(_message(b"not a batch")) == []
    assert source._take(_message(encode(heard))) == []
    assert source.rejected == 2
