"""MqttPublisher against a real mosquitto (tests/mosquitto.py) and the real SQLite outbox.

Nothing of ours is mocked: events go from an :class:`AsyncOutbox` on disk through paho to a
mosquitto started per test on a free loopback port, and a separate subscriber with a persistent
session checks what arrives. Faults are real too: the broker is stopped, killed and restarted,
a gateway process is SIGKILLed, certificates come from another CA, passwords are wrong, an ACL
denies a topic. No test asserts on wall-clock time: every wait is bounded (``WAIT_S``) only to
fail a hung test, and backoff settings are small only to keep the file fast. Every broker,
subscriber, publisher and paho thread is stopped when its test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import socket
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.delivery.backoff import backoff_ceiling, full_jitter
from gateway.delivery.message import Message
from gateway.delivery.mqtt import MqttPublisher, PublisherState
from gateway.delivery.mqtt_problems import ProblemKind
from gateway.delivery.mqtt_settings import MqttConfigError, MqttSettings, MqttTls
from gateway.delivery.mqtt_tls import build_ssl_context
from gateway.delivery.outbox import AsyncOutbox, Outbox
from tests.mosquitto import (
    WAIT_S,
    Mosquitto,
    Received,
    free_port,
    make_test_ca,
    subscribed,
    until,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

STATUS = "gateways/gw-test/status"
NOT_AUTHORIZED = 0x87


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def no_paho_thread_left() -> Iterator[None]:
    yield
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-")],
        "every paho network thread to end",
    )


def settings_for(port: int, **changes: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": f"gw-{uuid.uuid4().hex[:8]}",
        "status_topic": STATUS,
        "keepalive_s": 10,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.5,
        "connect_timeout_s": 5.0,
    }
    values.update(changes)
    return MqttSettings(**values)


def event(index: int, topic: str = "events/a") -> Message:
    payload = json.dumps({"n": index, "name": "customer-secret"}).encode()
    return Message(topic=topic, payload=payload, event_id=f"ev-{index:05d}")


def index_of(message: Received) -> int:
    number: int = json.loads(message.payload)["n"]
    return number


def statuses(received: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in received if m.topic == STATUS]


@contextlib.asynccontextmanager
async def opened_outbox(path: Path) -> AsyncIterator[AsyncOutbox]:
    outbox = await AsyncOutbox.open(path)
    writer = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await outbox.aclose()


@contextlib.asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        await publisher.stop(10)
        await asyncio.wait_for(task, WAIT_S)  # run() ends after stop(); re-raises its failure


async def put_all(outbox: AsyncOutbox, messages: list[Message]) -> None:
    for message in messages:
        await outbox.put(message)


# --------------------------------------------------------------------------- delivery


def test_events_arrive_at_qos1_with_their_event_id_and_seq(tmp_path: Path) -> None:
    latencies: list[float] = []
    messages = [event(i, f"events/{'abc'[i % 3]}") for i in range(60)]

    async def main() -> None:
        with Mosquitto() as broker, subscribed(broker.port, ["events/#"]) as subscriber:
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(
                    settings_for(broker.port), outbox, on_ack=latencies.append
                )
                await put_all(outbox, messages)
                async with running(publisher):
                    assert await publisher.flush(WAIT_S)
                    received = await subscriber.until(lambda m: len(m) >= 60, "60 events")
                    stats = publisher.stats()
                assert outbox.stats().depth == 0

        assert [index_of(m) for m in received] == list(range(60))
        for seq, (message, sent) in enumerate(zip(received, messages, strict=True), start=1):
            assert message.topic == sent.topic
            assert message.payload == sent.payload
            assert message.qos == 1
            assert message.user_properties == {"event_id": sent.event_id, "seq": str(seq)}
        assert (stats.published, stats.acked, stats.in_flight, stats.parked) == (60, 60, 0, 0)
        assert stats.connects == 1
        assert stats.last_error is None
        assert len(latencies) == 60
        assert all(latency >= 0 for latency in latencies)

    asyncio.run(main())


def test_retained_online_on_connect_and_offline_on_clean_stop(tmp_path: Path) -> None:
    async def main() -> None:
        with Mosquitto() as broker, subscribed(broker.port, [STATUS]) as watcher:
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                settings = settings_for(broker.port)
                publisher = MqttPublisher(settings, outbox)
                task = asyncio.create_task(publisher.run())
                seen = await watcher.until(lambda m: len(statuses(m)) >= 1, "online")
                assert statuses(seen)[0]["status"] == "online"
                assert statuses(seen)[0]["gateway"] == settings.client_id
                assert seen[0].retain
                assert publisher.stats().state is PublisherState.CONNECTED

                await publisher.stop(10)
                await asyncio.wait_for(task, WAIT_S)  # run() returns after stop()
                await publisher.stop(10)  # idempotent
                seen = await watcher.until(lambda m: len(statuses(m)) >= 2, "offline")
                assert statuses(seen)[1] | {"at": None} == {
                    "status": "offline",
                    "gateway": settings.client_id,
                    "reason": "stopped",
                    "at": None,
                }
                stats = publisher.stats()
                assert stats.state is PublisherState.STOPPED
                assert not stats.connected
                assert stats.disconnects == 1

            # A newcomer gets the retained status: offline, not the will.
            with subscribed(broker.port, [STATUS]) as newcomer:
                late = await newcomer.until(lambda m: len(m) >= 1, "the retained status")
                assert late[0].retain
                assert json.loads(late[0].payload)["reason"] == "stopped"

    asyncio.run(main())


def test_stop_before_run_is_safe_and_final(tmp_path: Path) -> None:
    async def main() -> None:
        async with opened_outbox(tmp_path / "outbox.db") as outbox:
            publisher = MqttPublisher(settings_for(free_port()), outbox)
            await publisher.stop(1)
            await publisher.stop(1)
            assert publisher.stats().state is PublisherState.STOPPED
            await asyncio.wait_for(publisher.run(), WAIT_S)  # returns at once
            assert publisher.stats().connects == 0

    asyncio.run(main())


def test_cancelling_run_still_says_offline(tmp_path: Path) -> None:
    async def main() -> None:
        with Mosquitto() as broker, subscribed(broker.port, [STATUS]) as watcher:
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings_for(broker.port), outbox)
                task = asyncio.create_task(publisher.run())
                await until(lambda: publisher.stats().connected, "a connection")
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, WAIT_S)
                assert publisher.stats().state is PublisherState.STOPPED
                seen = await watcher.until(lambda m: len(statuses(m)) >= 2, "offline")
        assert [(s["status"], s.get("reason")) for s in statuses(seen)] == [
            ("online", None),
            ("offline", "stopped"),
        ]

    asyncio.run(main())


GATEWAY_SCRIPT = """
import asyncio, sys
from pathlib import Path
from gateway.delivery.mqtt import MqttPublisher
from gateway.delivery.mqtt_settings import MqttSettings
from gateway.delivery.outbox import AsyncOutbox

async def main() -> None:
    port, topic, client_id, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    will_delay_s, session_expiry_s = int(sys.argv[5]), int(sys.argv[6])
    outbox = await AsyncOutbox.open(path)
    writer = asyncio.create_task(outbox.run())
    settings = MqttSettings(
        host="127.0.0.1", port=port, client_id=client_id, status_topic=topic,
        will_delay_s=will_delay_s, session_expiry_s=session_expiry_s, keepalive_s=10,
    )
    publisher = MqttPublisher(settings, outbox)
    task = asyncio.create_task(publisher.run())
    while not publisher.stats().connected:
        await asyncio.sleep(0.01)
    print("GATEWAY-CONNECTED", flush=True)
    await asyncio.gather(task, writer)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("will_delay_s", "session_expiry_s"),
    # The second: the delay is capped at the session's 0 s, as MQTT 5 has it (mosquitto
    # 2.0.11 itself would wait the 5 s).
    [(1, 60), (5, 0)],
)
def test_will_fires_when_the_gateway_process_is_sigkilled(
    tmp_path: Path, will_delay_s: int, session_expiry_s: int
) -> None:
    script = tmp_path / "gateway_main.py"
    script.write_text(GATEWAY_SCRIPT)

    async def main() -> None:
        with Mosquitto() as broker, subscribed(broker.port, [STATUS]) as watcher:
            gateway = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                str(broker.port),
                STATUS,
                "gw-killed",
                str(tmp_path / "outbox.db"),
                str(will_delay_s),
                str(session_expiry_s),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                assert gateway.stdout is not None
                output = gateway.stdout

                async def connected() -> None:
                    while line := await output.readline():
                        if line.strip() == b"GATEWAY-CONNECTED":
                            return
                    pytest.fail("the gateway process ended before it connected")

                await asyncio.wait_for(connected(), WAIT_S)
                await watcher.until(lambda m: len(statuses(m)) >= 1, "online")
                gateway.send_signal(signal.SIGKILL)
                await asyncio.wait_for(gateway.wait(), WAIT_S)
                seen = await watcher.until(lambda m: len(statuses(m)) >= 2, "the will")
            finally:
                if gateway.returncode is None:
                    gateway.kill()
                    await asyncio.wait_for(gateway.wait(), WAIT_S)

        assert [s["status"] for s in statuses(seen)] == ["online", "offline"]
        assert statuses(seen)[1] == {
            "status": "offline",
            "gateway": "gw-killed",
            "reason": "connection_lost",
        }
        assert seen[1].retain

    asyncio.run(main())


# --------------------------------------------------------------------------- TLS and auth


def test_tls_with_a_test_ca_and_client_certificate(tmp_path: Path) -> None:
    pki = make_test_ca(tmp_path / "pki")

    async def main() -> None:
        with Mosquitto(tls=pki) as broker, subscribed(broker.port, ["events/#"]) as subscriber:
            assert broker.tls_port is not None
            tls = MqttTls(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
            settings = settings_for(broker.tls_port, host="localhost", tls=tls)
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings, outbox)
                await put_all(outbox, [event(i) for i in range(10)])
                async with running(publisher):
                    assert await publisher.flush(WAIT_S)
                received = await subscriber.until(lambda m: len(m) >= 10, "10 events over TLS")
        assert [index_of(m) for m in received] == list(range(10))

    asyncio.run(main())


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # OpenSSL's words: whether the broker sends its CA along decides which one.
        ("untrusted-ca", "self.signed certificate in certificate chain|unable to get local issuer"),
        ("wrong-host-name", "mismatch, certificate is not valid for '127.0.0.1'"),
    ],
)
def test_certificate_problems_are_clear_tls_errors(
    tmp_path: Path, case: str, expected: str
) -> None:
    pki = make_test_ca(tmp_path / "pki")
    other = make_test_ca(tmp_path / "other", name="other CA")

    async def main() -> None:
        with Mosquitto(tls=pki) as broker:
            assert broker.tls_port is not None
            if case == "untrusted-ca":  # the gateway trusts another CA
                host = "localhost"
                tls = MqttTls(
                    ca_file=other.ca_cert, cert_file=other.client_cert, key_file=other.client_key
                )
            else:  # the certificate names localhost only
                host = "127.0.0.1"
                tls = MqttTls(
                    ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key
                )
            settings = settings_for(broker.tls_port, host=host, tls=tls)
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings, outbox)
                async with running(publisher):
                    await until(lambda: publisher.stats().connect_failures >= 2, "2 attempts")
                    stats = publisher.stats()

        assert stats.last_error is not None
        assert stats.last_error.kind is ProblemKind.TLS_VERIFY_FAILED
        assert re.search(expected, stats.last_error.message)
        assert f"{host}:{broker.tls_port}" in stats.last_error.message
        assert not stats.connected
        assert stats.state in {PublisherState.RETRYING, PublisherState.CONNECTING}

    asyncio.run(main())


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_wrong_password_is_a_clear_auth_error(tmp_path: Path, protocol: str) -> None:
    secret = "wrong-horse-battery"  # the password that must never be shown

    async def main() -> None:
        with Mosquitto(users={"gateway": "right-password"}) as broker:
            settings = settings_for(
                broker.port, protocol=protocol, username="gateway", password=secret
            )
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings, outbox)
                with structlog.testing.capture_logs() as logs:
                    async with running(publisher):
                        await until(lambda: publisher.stats().connect_failures >= 2, "2 tries")
                        stats = publisher.stats()
                # The right password gets in.
                good = MqttPublisher(
                    settings_for(
                        broker.port,
                        protocol=protocol,
                        username="gateway",
                        password="right-password",
                    ),
                    outbox,
                )
                async with running(good):
                    await until(lambda: good.stats().connected, "a connection")

        error = stats.last_error
        assert error is not None
        # mosquitto 2.0.11 answers a wrong password with 0x87 (v5) / 5 (3.1.1), not 0x86.
        assert error.kind is ProblemKind.NOT_AUTHORIZED
        assert "Not authorized (0x87)" in error.message
        assert "mqtt.password" in error.message
        assert any(entry["event"] == "mqtt_connect_failed" for entry in logs)
        for shown in (repr(logs), str(error), repr(settings), repr(stats), repr(publisher)):
            assert secret not in shown

    asyncio.run(main())


@pytest.mark.parametrize(
    ("host", "kind"),
    [("127.0.0.1", ProblemKind.CONNECTION_REFUSED), ("broker.invalid", ProblemKind.DNS_FAILED)],
)
def test_an_unreachable_broker_is_retried_and_explained(
    tmp_path: Path, host: str, kind: ProblemKind
) -> None:
    async def main() -> None:
        async with opened_outbox(tmp_path / "outbox.db") as outbox:
            publisher = MqttPublisher(settings_for(free_port(), host=host), outbox)
            await outbox.put(event(0))
            async with running(publisher):
                await until(lambda: publisher.stats().connect_failures >= 3, "3 attempts")
                assert not await publisher.flush(0.1)  # the event waits in the outbox
                stats = publisher.stats()
            assert outbox.stats().depth == 1
        assert stats.last_error is not None
        assert stats.last_error.kind is kind
        assert host in stats.last_error.message
        assert stats.published == 0

    asyncio.run(main())


def test_a_listener_that_never_answers_is_a_connack_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        with socket.socket() as silent:  # accepts TCP (kernel backlog), never says a word
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                settings = settings_for(port, connect_timeout_s=0.2)
                publisher = MqttPublisher(settings, outbox)
                async with running(publisher):
                    await until(lambda: publisher.stats().connect_failures >= 2, "2 attempts")
                    stats = publisher.stats()
        assert stats.last_error is not None
        assert stats.last_error.kind is ProblemKind.TIMEOUT
        assert "no CONNACK" in stats.last_error.message

    asyncio.run(main())


def test_plain_mqtt_to_a_tls_listener_is_explained(tmp_path: Path) -> None:
    pki = make_test_ca(tmp_path / "pki")

    async def main() -> None:
        with Mosquitto(tls=pki) as broker:
            assert broker.tls_port is not None
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings_for(broker.tls_port), outbox)
                async with running(publisher):
                    await until(lambda: publisher.stats().connect_failures >= 2, "2 attempts")
                    stats = publisher.stats()
        assert stats.last_error is not None
        assert stats.last_error.kind is ProblemKind.CONNECTION_LOST
        assert "before CONNACK" in stats.last_error.message
        assert "set mqtt.tls" in stats.last_error.message

    asyncio.run(main())


# --------------------------------------------------------------------------- faults


def check_stream(received: list[Received], total: int, window: int, *, complete: bool) -> None:
    """In order per topic; a duplicate only of an event at most ``window`` events back."""
    firsts: list[int] = []
    position: dict[int, int] = {}
    per_topic: dict[str, list[int]] = {}
    for message in received:
        index = index_of(message)
        if index in position:
            assert len(firsts) - position[index] <= window, f"duplicate of {index} too late"
            continue
        position[index] = len(firsts)
        firsts.append(index)
        per_topic.setdefault(message.topic, []).append(index)
    for topic, indexes in per_topic.items():
        assert indexes == sorted(indexes), f"out of order on {topic}"
    if complete:
        assert sorted(firsts) == list(range(total))


@pytest.mark.parametrize("crash", [False, True], ids=["broker-sigterm", "broker-sigkill"])
def test_a_broker_restart_mid_stream_loses_nothing(tmp_path: Path, crash: bool) -> None:
    total = 300
    topics = ["events/a", "events/b", "events/c"]

    async def main() -> None:
        with Mosquitto() as broker, subscribed(broker.port, ["events/#"]) as subscriber:
            # The subscriber's session must outlive a SIGKILL, which keeps only the last save.
            await asyncio.to_thread(broker.save)
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                settings = settings_for(broker.port)
                publisher = MqttPublisher(settings, outbox)
                async with running(publisher):

                    async def produce() -> None:
                        for i in range(total):
                            await outbox.put(event(i, topics[i % 3]))
                            await asyncio.sleep(0.002)

                    producer = asyncio.create_task(produce())
                    await until(lambda: publisher.stats().acked >= 100, "100 PUBACKs")
                    # Freeze the broker until a whole window waits for PUBACKs, then end it:
                    # those messages must be re-sent after the reconnect.
                    broker.pause()
                    window = settings.max_inflight
                    await until(lambda: publisher.stats().in_flight == window, "a full window")
                    await asyncio.to_thread(broker.restart, kill=crash)
                    await producer
                    assert await publisher.flush(WAIT_S)
                    stats = publisher.stats()
                    assert outbox.stats().depth == 0
                # The last event is published after the restart: it arrives either way.
                await subscriber.until(
                    lambda m: any(index_of(x) == total - 1 for x in m), "the last event"
                )
                if not crash:
                    await subscriber.until(
                        lambda m: {index_of(x) for x in m} == set(range(total)), "every event"
                    )
                received = subscriber.messages()

        assert stats.disconnects >= 1
        assert stats.connects >= 2
        assert stats.acked >= total
        assert stats.published - stats.acked <= settings.max_inflight
        # With SIGKILL the broker itself may lose what it had PUBACKed but not yet delivered
        # (its persistence is a snapshot), so end to end only order and duplicates are checked.
        # A duplicate can only be a re-send of a message in flight at the drop: at most a
        # window back (20 both ways here: ours, and mosquitto's towards the subscriber).
        check_stream(received, total, settings.max_inflight, complete=not crash)

    asyncio.run(main())


def test_the_window_is_capped_by_the_brokers_receive_maximum(tmp_path: Path) -> None:
    most = 0

    async def main() -> None:
        nonlocal most
        with Mosquitto(max_inflight_messages=5) as broker:
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                publisher = MqttPublisher(settings_for(broker.port, max_inflight=20), outbox)
                await put_all(outbox, [event(i) for i in range(200)])
                async with running(publisher):

                    async def watch() -> None:
                        nonlocal most
                        while True:
                            most = max(most, publisher.stats().in_flight)
                            await asyncio.sleep(0)

                    watcher = asyncio.create_task(watch())
                    assert await publisher.flush(WAIT_S)
                    watcher.cancel()
                    stats = publisher.stats()
        assert stats.window == 5
        assert stats.acked == 200
        assert 1 <= most <= 5

    asyncio.run(main())


@pytest.mark.parametrize("policy", ["park", "retry"])
def test_a_refused_publish_is_parked_or_retried(tmp_path: Path, policy: str) -> None:
    acl = "topic readwrite events/#\ntopic readwrite gateways/#\n"  # everything else: denied
    path = tmp_path / "outbox.db"

    async def main() -> None:
        with Mosquitto(acl=acl) as broker, subscribed(broker.port, ["events/#"]) as subscriber:
            settings = settings_for(
                broker.port, on_refused=policy, max_attempts=2, backoff_base_s=0.01
            )
            async with opened_outbox(path) as outbox:
                publisher = MqttPublisher(settings, outbox)
                messages = [event(0), event(1, "denied/zone-1"), event(2)]
                with structlog.testing.capture_logs() as logs:
                    await put_all(outbox, messages)
                    async with running(publisher):
                        assert await publisher.flush(WAIT_S)
                        stats = publisher.stats()
                received = await subscriber.until(lambda m: len(m) >= 2, "the allowed events")
                assert outbox.stats().parked == 1

        assert [index_of(m) for m in received] == [0, 2]
        refused = [entry for entry in logs if entry["event"] == "publish_refused"]
        assert refused[0]["reason_code"] == "0x87"
        assert refused[0]["event_id"] == "ev-00001"
        assert refused[0]["topic"] == "denied/zone-1"
        assert "customer-secret" not in repr(logs)  # payloads are never logged
        expected_refusals = 1 if policy == "park" else 3  # first try + max_attempts retries
        assert dict(stats.refused) == {NOT_AUTHORIZED: expected_refusals}
        assert stats.retried == expected_refusals - 1
        assert (stats.acked, stats.parked) == (2, 1)

        with Outbox.open(path) as store:
            [(row, reason, _)] = store.parked(limit=10)
        assert row.message.event_id == "ev-00001"
        assert row.attempts == expected_refusals - 1
        assert "Not authorized (0x87)" in reason

    asyncio.run(main())


def test_rows_that_can_never_be_sent_are_parked_at_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"

    def broken_hook(_latency: float) -> None:
        raise RuntimeError

    async def main() -> None:
        with (
            Mosquitto(extra=["max_packet_size 1000"]) as broker,
            subscribed(broker.port, ["events/#"]) as subscriber,
        ):
            async with opened_outbox(path) as outbox:
                publisher = MqttPublisher(settings_for(broker.port), outbox, on_ack=broken_hook)
                huge = Message(topic="events/a", payload=b"x" * 2000, event_id="ev-huge")
                wildcard = Message(topic="events/+", payload=b"{}", event_id="ev-wild")
                with structlog.testing.capture_logs() as logs:
                    await put_all(outbox, [event(0), wildcard, huge, event(3)])
                    async with running(publisher):
                        assert await publisher.flush(WAIT_S)
                        stats = publisher.stats()
                received = await subscriber.until(lambda m: len(m) >= 2, "the good events")

        assert [index_of(m) for m in received] == [0, 3]
        assert (stats.acked, stats.parked, stats.connects, dict(stats.refused)) == (2, 2, 1, {})
        events = [entry["event"] for entry in logs]
        assert events.count("publish_unsendable") == 2
        assert events.count("on_ack_hook_failed") == 2  # a broken metrics hook stops nothing
        with Outbox.open(path) as store:
            reasons = {row.message.event_id: reason for row, reason, _ in store.parked(limit=10)}
        assert "wildcards" in reasons["ev-wild"]
        assert "Maximum Packet Size (1000)" in reasons["ev-huge"]

    asyncio.run(main())


def test_mqtt_311_mode(tmp_path: Path) -> None:
    async def main() -> None:
        with (
            Mosquitto(max_inflight_messages=5) as broker,
            subscribed(broker.port, ["events/#", STATUS]) as subscriber,
        ):
            async with opened_outbox(tmp_path / "outbox.db") as outbox:
                settings = settings_for(broker.port, protocol="3.1.1", max_inflight=8)
                publisher = MqttPublisher(settings, outbox)
                await put_all(outbox, [event(i) for i in range(20)])
                async with running(publisher):
                    assert await publisher.flush(WAIT_S)
                    stats = publisher.stats()
                received = await subscriber.until(
                    lambda m: len(statuses(m)) >= 2, "online and offline"
                )
        events = [m for m in received if m.topic != STATUS]
        assert [index_of(m) for m in events] == list(range(20))
        assert all(m.qos == 1 and not m.user_properties for m in events)  # no v5 properties
        assert [s["status"] for s in statuses(received)] == ["online", "offline"]
        assert stats.window == 8  # no Receive Maximum in 3.1.1: the setting rules

    asyncio.run(main())


# --------------------------------------------------------------------------- settings, backoff


def test_settings_hide_the_password_and_check_their_values(tmp_path: Path) -> None:
    settings = settings_for(1883, username="gateway", password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings)

    bad: dict[str, Any] = {
        "port": 0,
        "protocol": "4",
        "client_id": "",
        "status_topic": "gateways/+/status",
        "keepalive_s": -1,
        "max_inflight": 0,
        "backoff_base_s": 0,
        "on_refused": "drop",
        "max_attempts": -1,
        "connect_timeout_s": 0,
    }
    for field, value in bad.items():
        with pytest.raises(MqttConfigError, match=re.escape(f"mqtt.{field}")):
            settings_for(**{"port": 1883, field: value})
    # The will goes when the delay passes or the session ends, whichever is first.
    assert settings_for(1883, will_delay_s=30, session_expiry_s=10).effective_will_delay_s == 10
    assert settings_for(1883, will_delay_s=5, session_expiry_s=0).effective_will_delay_s == 0
    with pytest.raises(MqttConfigError, match=re.escape("mqtt.username")):
        settings_for(1883, password="x")
    with pytest.raises(MqttConfigError, match="cert_file"):
        MqttTls(key_file=tmp_path / "client.key")


def test_tls_files_are_checked_at_start_up(tmp_path: Path) -> None:
    pki = make_test_ca(tmp_path / "pki")
    context = build_ssl_context(MqttTls(ca_file=pki.ca_cert))
    assert context.check_hostname

    with pytest.raises(MqttConfigError, match=re.escape("mqtt.tls.ca_file")):
        build_ssl_context(MqttTls(ca_file=tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(MqttConfigError, match=re.escape("mqtt.tls.ca_file")):
        build_ssl_context(MqttTls(ca_file=garbage))

    locked = tmp_path / "locked.key"
    locked.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(MqttConfigError, match="passphrase-protected"):
        build_ssl_context(MqttTls(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=locked))

    with structlog.testing.capture_logs() as logs:
        insecure = build_ssl_context(MqttTls(ca_file=pki.ca_cert, insecure=True))
    assert not insecure.check_hostname
    assert [entry["event"] for entry in logs] == ["mqtt_tls_insecure"]
    assert logs[0]["log_level"] == "warning"


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    ceilings = [backoff_ceiling(n, base_s=1.0, cap_s=60.0) for n in range(9)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_ceiling(10_000, base_s=1.0, cap_s=60.0) == 60
    assert full_jitter(3, base_s=1.0, cap_s=60.0, rng=lambda: 0.0) == 0
    assert full_jitter(3, base_s=1.0, cap_s=60.0, rng=lambda: 0.5) == 4
    draws = [full_jitter(4, base_s=1.0, cap_s=60.0, rng=random.Random(7).random) for _ in range(3)]
    rng = random.Random(7)
    spread = [full_jitter(4, base_s=1.0, cap_s=60.0, rng=rng.random) for _ in range(500)]
    assert all(0 <= delay < 16 for delay in spread)
    assert min(spread) < 2
    assert max(spread) > 14  # the whole window is used, not just its top
    assert len(set(draws)) == 1  # a seeded rng repeats
