"""The daemon end to end: `beacon-gateway run` publishing a scene to a real mosquitto.

The gateway runs as a child process (as systemd runs it), configured by environment overrides;
a persistent-session subscriber checks what arrives against the same scene printed with
``--stdout`` (event ids are stable, so the two runs name the same events).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING

import pytest

from tests.gateway.test_sensing_cli import SCENE
from tests.mosquitto import Mosquitto, Subscriber, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOPICS = "beacon-gateway/v1/tiny/tiny-sim"
RUN_TIMEOUT_S = 120


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        yield running


def _environ(broker: Mosquitto, state: Path, http_port: int = 0) -> dict[str, str]:
    return {
        **os.environ,
        "BEACON_GATEWAY__MQTT__HOST": "127.0.0.1",
        "BEACON_GATEWAY__MQTT__PORT": str(broker.port),
        "BEACON_GATEWAY__MQTT__BACKOFF_BASE_S": "0.2",
        "BEACON_GATEWAY__MQTT__BACKOFF_CAP_S": "1",
        "BEACON_GATEWAY__OUTBOX__PATH": str(state / "outbox.sqlite3"),
        "BEACON_GATEWAY__HTTP__PORT": str(http_port),
        "BEACON_GATEWAY__LOGGING__FORMAT": "json",
    }


def _command(scene: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "run", "--scene", str(scene), *extra]


def _expected(scene: Path) -> dict[str, dict[str, object]]:
    printed = subprocess.run(
        _command(scene, "--stdout"), capture_output=True, check=True, timeout=RUN_TIMEOUT_S
    )
    events = [json.loads(line) for line in printed.stdout.splitlines()]
    return {str(event["event_id"]): event for event in events}


def _run(command: list[str], environ: dict[str, str]) -> None:
    done = subprocess.run(
        command, env=environ, capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]


def _ids(subscriber: Subscriber) -> set[str]:
    return {
        json.loads(m.payload)["event_id"]
        for m in subscriber.messages()
        if not m.topic.endswith("/status")
    }


def _offline(subscriber: Subscriber) -> bool:
    status = [m for m in subscriber.messages() if m.topic.endswith("/status")]
    return bool(status) and json.loads(status[-1].payload)["status"] == "offline"


def test_a_scene_run_publishes_every_event_at_qos1_and_goes_offline(
    broker: Mosquitto, tmp_path: Path
) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    expected = _expected(scene)
    assert expected
    with Subscriber(broker.port, [f"{TOPICS}/#"]) as subscriber:
        _run(_command(scene), _environ(broker, tmp_path))
        wait_until(
            lambda: _ids(subscriber) >= set(expected) and _offline(subscriber),
            "every event and the offline status",
        )
        received = subscriber.messages()
    events = [m for m in received if not m.topic.endswith("/status")]
    ids = {json.loads(m.payload)["event_id"] for m in events}
    assert ids == set(expected)
    assert all(m.qos == 1 for m in events)
    for message in events:
        event = json.loads(message.payload)
        kind = "presence" if event["type"] in {"enter", "dwell", "exit"} else event["type"]
        assert message.topic.startswith(f"{TOPICS}/{kind}/")
    status = [json.loads(m.payload)["status"] for m in received if m.topic.endswith("/status")]
    assert status[-1] == "offline"


def test_sigkill_fires_the_will_and_ops_endpoints_answer(broker: Mosquitto, tmp_path: Path) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    http_port = free_port()
    environ = _environ(broker, tmp_path, http_port)
    with Subscriber(broker.port, [f"{TOPICS}/#"]) as subscriber:
        gateway = subprocess.Popen(
            _command(scene, "--realtime", "--speed", "20"), env=environ, stderr=subprocess.DEVNULL
        )
        try:
            wait_until(lambda: bool(_ids(subscriber)), "a first event")
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics") as reply:
                metrics = reply.read().decode()
            assert "beacon_gateway_outbox_depth" in metrics
            assert "beacon_gateway_mqtt_connected 1.0" in metrics
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz") as reply:
                assert json.loads(reply.read())["ready"] is True
        finally:
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=RUN_TIMEOUT_S)
        wait_until(lambda: _offline(subscriber), "the will (offline) after SIGKILL")


def _outbox_ids(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
        return {row[0] for row in database.execute("SELECT event_id FROM outbox")}


def test_events_accepted_while_the_broker_is_down_survive_a_sigkill(
    broker: Mosquitto, tmp_path: Path
) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    environ = _environ(broker, tmp_path)
    outbox = tmp_path / "outbox.sqlite3"
    with Subscriber(broker.port, [f"{TOPICS}/#"]) as subscriber:
        gateway = subprocess.Popen(
            _command(scene, "--realtime", "--speed", "20"), env=environ, stderr=subprocess.DEVNULL
        )
        try:
            wait_until(lambda: bool(_ids(subscriber)), "a first event")
            broker.stop()
            wait_until(
                lambda: len(_outbox_ids(outbox)) >= 3, "events kept while the broker is away"
            )
        finally:
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=RUN_TIMEOUT_S)
        accepted = _outbox_ids(outbox)
        broker.start()
        # Another seed: other events, so what arrives of the killed run came from the outbox.
        _run(_command(scene, "--seed", "99"), environ)
        wait_until(lambda: _ids(subscriber) >= accepted, "the killed run's accepted events")
        assert not _outbox_ids(outbox) & accepted


def test_sigterm_stops_cleanly_and_systemd_hears_ready_and_stopping(
    broker: Mosquitto, tmp_path: Path
) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    notify_path = str(tmp_path / "notify")
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify,
        Subscriber(broker.port, [f"{TOPICS}/#"]) as subscriber,
    ):
        notify.bind(notify_path)
        notify.settimeout(RUN_TIMEOUT_S)
        environ = {**_environ(broker, tmp_path), "NOTIFY_SOCKET": notify_path}
        gateway = subprocess.Popen(
            _command(scene, "--realtime", "--speed", "20"), env=environ, stderr=subprocess.DEVNULL
        )
        try:
            assert b"READY=1" in notify.recv(4096)
            wait_until(lambda: bool(_ids(subscriber)), "a first event")
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=RUN_TIMEOUT_S) == 0
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
        messages = []
        with contextlib.suppress(TimeoutError):
            notify.settimeout(0.5)
            while True:
                messages.append(notify.recv(4096))
        assert any(b"STOPPING=1" in message for message in messages)
        wait_until(lambda: _offline(subscriber), "the retained offline status")
    # Nothing accepted is left behind when the broker was there to take it.
    assert not _outbox_ids(tmp_path / "outbox.sqlite3") - _ids(subscriber)
