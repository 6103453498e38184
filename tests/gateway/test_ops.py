"""Environment overrides, the topic contract, sd_notify and the ops HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from gateway.config import load_config
from gateway.delivery_config import find_mqtt_password
from gateway.errors import ConfigError
from gateway.events import PresenceEvent, SubjectView
from gateway.ops.http import OpsServer
from gateway.ops.sdnotify import Notifier
from gateway.sealed_file import SecretFileError
from gateway.topics import Topics, safe_segment

if TYPE_CHECKING:
    from pathlib import Path

BASE = """
site = "store-1"
gateway_id = "gw-1"
[[gateways]]
id = "gw-a"
[mqtt]
host = "broker.lan"
"""


def _write(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_environment_overrides_fields_with_typed_values(tmp_path: Path) -> None:
    environ = {
        "BEACON_GATEWAY__MQTT__PORT": "18883",
        "BEACON_GATEWAY__MQTT__HOST": "broker.example",
        "BEACON_GATEWAY__GATEWAYS__0__RSSI_OFFSET_DB": "-3.5",
        "BEACON_GATEWAY__OUTBOX__PATH": "state/outbox.db",
        "BEACON_GATEWAY__PRESENCE__DWELL_THRESHOLDS_S": "[10, 20]",
        "UNRELATED": "x",
    }
    config = load_config(_write(tmp_path), environ)
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port) == ("broker.example", 18883)
    assert config.gateways[0].rssi_offset_db == -3.5
    assert config.outbox.path == tmp_path / "state" / "outbox.db"
    assert config.presence.dwell_thresholds_s == [10, 20]


def test_a_bad_override_names_the_field_and_the_variable(tmp_path: Path) -> None:
    environ = {"BEACON_GATEWAY__MQTT__PORT": "99999", "BEACON_GATEWAY__MQTT__HOSTT": "x"}
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path), environ)
    text = str(caught.value)
    assert "mqtt.port" in text
    assert "from BEACON_GATEWAY__MQTT__PORT" in text
    assert "99999" in text
    assert "mqtt.hostt" in text
    assert "from BEACON_GATEWAY__MQTT__HOSTT" in text


def test_an_override_into_a_missing_list_item_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gateways has no item 5"):
        load_config(_write(tmp_path), {"BEACON_GATEWAY__GATEWAYS__5__ID": "x"})


def test_unknown_keys_in_delivery_sections_are_refused(tmp_path: Path) -> None:
    text = BASE + 'passwd = "inline"\n[outbox]\nwhen_full = "panic"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), {})
    problems = {problem.path for problem in caught.value.problems}
    assert problems == {"mqtt.passwd", "outbox.when_full"}


def test_the_password_comes_from_a_file_the_environment_or_a_credential(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = load_config(_write(tmp_path, BASE + 'password_file = "password"\n'), {})
    assert config.mqtt is not None
    assert find_mqtt_password(config.mqtt) == "s3cret"
    assert "s3cret" not in repr(config)


def test_topics_follow_the_contract() -> None:
    topics = Topics("beacon-gateway", "store 1", "gw/1")
    assert topics.status == "beacon-gateway/v1/store_1/gw_1/status"
    event = PresenceEvent(
        event_id=uuid.UUID("6f1c3f52-61a4-4d43-9a55-0c6e0b3a8d17"),
        event_time=datetime(2026, 1, 1, tzinfo=UTC),
        gateway_time=datetime(2026, 1, 1, tzinfo=UTC),
        site="store 1",
        gateway_id="gw/1",
        subject=SubjectView(kind="customer", id="cust+#1"),
        type="enter",
        zone="entrance",
        dwell_s=0,
        proximity="near",
        distance_m=1.0,
        rssi=-60.0,
        nearest_gateway="gw-a",
    )
    assert topics.for_event(event) == "beacon-gateway/v1/store_1/gw_1/presence/cust__1"
    anonymous = event.model_copy(update={"subject": SubjectView(kind="customer")})
    assert topics.for_event(anonymous).endswith("/presence/-")
    assert safe_segment("") == "_"


def test_sd_notify_sends_datagrams_to_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_s == 30.0
        assert notifier.ready("scanning")
        assert server.recv(256) == b"READY=1\nSTATUS=scanning"
        assert notifier.watchdog()
        assert server.recv(256) == b"WATCHDOG=1"
    assert not Notifier({}).ready("x")  # not under systemd: a no-op
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).watchdog()  # never raises


async def _get(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_ops_server_serves_metrics_and_health() -> None:
    state = {"ready": True}

    async def scenario() -> None:
        server = OpsServer(lambda: b"gw_up 1\n", lambda: (state["ready"], {"mqtt": "connected"}))
        _, port = await server.start("127.0.0.1", 0)
        try:
            assert await _get(port, b"GET /metrics HTTP/1.1\r\n\r\n") == (200, b"gw_up 1\n")
            status, body = await _get(port, b"GET /healthz HTTP/1.1\r\n\r\n")
            assert (status, json.loads(body)) == (200, {"ready": True, "mqtt": "connected"})
            state["ready"] = False
            assert (await _get(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == 503
            assert (await _get(port, b"GET /other HTTP/1.1\r\n\r\n"))[0] == 404
            assert (await _get(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
            assert (await _get(port, b"nonsense\r\n\r\n"))[0] == 400
        finally:
            await server.close()

    asyncio.run(scenario())


def test_the_password_falls_back_to_the_environment_then_the_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(_write(tmp_path), {})
    assert config.mqtt is not None
    monkeypatch.delenv("BEACON_GATEWAY_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert find_mqtt_password(config.mqtt) is None
    (tmp_path / "mqtt-password").write_text("from-credential\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert find_mqtt_password(config.mqtt) == "from-credential"
    monkeypatch.setenv("BEACON_GATEWAY_MQTT_PASSWORD", "from-environment")
    assert find_mqtt_password(config.mqtt) == "from-environment"


def test_an_unreadable_password_file_is_named_but_never_shown(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE + 'password_file = "missing"\n'), {})
    assert config.mqtt is not None
    with pytest.raises(SecretFileError, match=r"cannot read the MQTT password file .*missing"):
        find_mqtt_password(config.mqtt)
    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    config = load_config(_write(tmp_path, BASE + 'password_file = "latin1"\n'), {})
    assert config.mqtt is not None
    with pytest.raises(SecretFileError, match="not UTF-8") as caught:
        find_mqtt_password(config.mqtt)
    assert "caf" not in str(caught.value)
