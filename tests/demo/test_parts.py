"""The demo's parts that need no processes: scenes, the broker's config, the child's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.demo.broker import config_text, find_mosquitto
from gateway.demo.errors import DemoError
from gateway.demo.gateway_child import GatewayOptions, command, environment
from gateway.demo.scenes import find_scene, shipped_scenes

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_scene_names_and_paths(tmp_path: Path) -> None:
    assert find_scene("store", tmp_path) == ROOT / "configs" / "scenes" / "store.toml"
    assert find_scene("airport", tmp_path) == ROOT / "configs" / "scenes" / "airport.toml"
    assert {"store", "airport"} <= set(shipped_scenes(tmp_path))
    own = tmp_path / "mine.toml"
    own.write_text("")
    assert find_scene(str(own), tmp_path) == own


def test_unknown_scenes_say_what_there_is(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"no scene named 'moon': pick one of .*airport.*store"):
        find_scene("moon", tmp_path)
    with pytest.raises(DemoError, match="no scene file"):
        find_scene(str(tmp_path / "missing.toml"), tmp_path)


def test_a_bad_mosquitto_path_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"not found at .*sudo apt-get install mosquitto"):
        find_mosquitto(str(tmp_path / "mosquitto"))
    plain = tmp_path / "plain"
    plain.write_text("")
    plain.chmod(0o644)
    with pytest.raises(DemoError, match="is not executable"):
        find_mosquitto(str(plain))


def test_the_broker_listens_on_loopback_only_and_persists_in_its_directory(
    tmp_path: Path,
) -> None:
    text = config_text(tmp_path, 41234)
    listeners = [line for line in text.splitlines() if line.startswith(("listener", "port"))]
    assert listeners == ["listener 41234 127.0.0.1"]
    assert f"persistence_location {tmp_path}/" in text


def test_the_child_gets_the_demo_settings_over_the_users(tmp_path: Path) -> None:
    options = GatewayOptions(
        scene=tmp_path / "s.toml", speed=30.0, seed=7, broker_port=1, http_port=2,
        directory=tmp_path,
    )  # fmt: skip
    base = {
        "PATH": "/bin",
        "beacon_gateway__mqtt__port": "1883",  # any case names the same field
        "BEACON_GATEWAY__PUBLISH__RAW_EIDS": "false",
    }
    env = environment(options, base)
    assert env["PATH"] == "/bin"
    assert env["BEACON_GATEWAY__PUBLISH__RAW_EIDS"] == "false"
    assert "beacon_gateway__mqtt__port" not in env
    assert env["BEACON_GATEWAY__MQTT__PORT"] == "1"
    assert env["BEACON_GATEWAY__HTTP__PORT"] == "2"
    assert env["BEACON_GATEWAY__OUTBOX__PATH"] == f'"{tmp_path / "outbox.sqlite3"}"'
    assert command(options)[1:] == [
        "-m", "gateway", "run", "--scene", str(tmp_path / "s.toml"), "--seed", "7",
        "--realtime", "--speed", "30",
    ]  # fmt: skip
