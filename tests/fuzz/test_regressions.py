"""Inputs the fuzz harnesses (fuzz/) crashed on, each now refused with the parser's own error.

Every input is also in the harness's seed corpus (``fuzz/corpus/<target>/regression-*``), so
the short fuzz run starts from it too. docs/fuzzing.md: how a crash becomes a test here.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from typing import TYPE_CHECKING

import pytest

import eid
from firmware_sim.capture import CaptureError, read_capture
from firmware_sim.scene import SceneError, load_scene
from gateway import keys_cli
from gateway.config import load_config
from gateway.decode import Decoder, InputError, parse_time
from gateway.errors import ConfigError
from gateway.keys_cli import UsageError
from gateway.registry import BeaconKey, KeyRegistry, RegistryError
from gateway.sources.base import SourceError
from gateway.sources.replay import read_sightings

if TYPE_CHECKING:
    from pathlib import Path

EID_OF_LOYALTY_0001 = "30f04144413e45fefa58"
SERVICE_PRIVATE = bytes(range(1, 33))
# A record provisioned against SERVICE_PRIVATE's public key (beacon-sim provision, seed 1).
RECORD = {
    "beacon_id": "bag-7",
    "beacon_public_key": "9989dce94b7f8aec53d47a2845ef4f04f3ec3c903bbb1a6e1dff7f1990eb2e75",
    "rotation_exponent": 10,
    "initial_clock": 65280,
    "initial_eid": "9073d7e1c2528341",
    "registered_at": 1767225600.0,
}
CAPTURE_HEADER = b'{"format":"beacon-gateway-capture","version":1,"meta":{}}\n'
SCENE = b"""name = "tiny"
duration_s = 60
[[zones]]
id = "z"
rect = [0.0, 0.0, 1.0, 1.0]
[[gateways]]
id = "g"
position = [0.5, 0.5]
zone = "z"
[[flows]]
id = "f"
arrivals_per_minute = 1.0
[[flows.steps]]
zones = ["z"]
"""
CONFIG = b'site = "s"\ngateway_id = "g"\n[[gateways]]\nid = "a"\n'


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# ----------------------------------------------------------------------------- decode: fuzz_decode


def test_decode_time_beyond_the_resolver_range_is_an_error_line() -> None:
    # Found by fuzz_decode: eid.Resolver raised ValueError (an int64 column overflowed).
    line = "@1767200000" + "0" * 72 + "025600 " + EID_OF_LOYALTY_0001
    registry = KeyRegistry.from_document(
        {
            "version": 1,
            "beacons": [
                {
                    "id": "loyalty-0001",
                    "identity_key": "0102030405060708090a111213141516",
                    "rotation_exponent": 10,
                    "clock_offset": -1767223600,
                }
            ],
        }
    )
    decoded = Decoder(registry, 1767225600.0).decode_line(1, line)
    assert decoded is not None
    assert not decoded.ok
    assert decoded.text.startswith("error: now must be a finite number of unix seconds")


@pytest.mark.parametrize("now", [2.0**64, -(2.0**64), 10**84, float("nan")])
def test_resolver_refuses_a_time_outside_its_range(now: float) -> None:
    resolver = eid.Resolver()
    resolver.register("b", bytes(16), 10, 0)
    with pytest.raises(eid.EidError, match=r"within \+-2\*\*48"):
        resolver.resolve(bytes(8), now)
    with pytest.raises(eid.EidError, match=r"within \+-2\*\*48"):
        resolver.lookup(bytes(8), now)


def test_an_infinite_time_is_not_called_before_1970() -> None:
    with pytest.raises(InputError, match="must be finite"):
        parse_time("inf")


# ----------------------------------------------------------------------------- record: fuzz_record


def register(tmp_path: Path, record: bytes) -> Path:
    registry = tmp_path / "registry.toml"
    KeyRegistry([], service_private=SERVICE_PRIVATE, test_keys=True).save(registry)
    parser = argparse.ArgumentParser()
    keys_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["keys", "register", str(registry), "--record", str(write(tmp_path, "r.json", record))]
    )
    keys_cli.run(args, io.StringIO())
    return registry


def test_record_registers(tmp_path: Path) -> None:
    registry = register(tmp_path, json.dumps(RECORD).encode())
    assert "bag-7" in KeyRegistry.load(registry)


def test_record_time_that_is_no_time_is_a_usage_error(tmp_path: Path) -> None:
    # Found by fuzz_record: decode's InputError escaped `keys register`, naming no field.
    record = json.dumps({**RECORD, "registered_at": "20262093c8b755dc1b10"}).encode()
    with pytest.raises(UsageError, match=r"^registered_at: time '20262093c8b755dc1b10' is neither"):
        register(tmp_path, record)


def test_record_id_the_registry_file_cannot_hold_is_refused(tmp_path: Path) -> None:
    # Found by the record harness's property: the registry was saved, then no longer loaded.
    with pytest.raises(RegistryError, match="beacon id 'bag 7' must be"):
        register(tmp_path, json.dumps({**RECORD, "beacon_id": "bag 7"}).encode())
    assert len(KeyRegistry.load(tmp_path / "registry.toml")) == 0


def test_record_registered_centuries_ahead_is_refused(tmp_path: Path) -> None:
    # Found by fuzz_record: the clock offset (-22657816320 s) was saved, then the file's
    # +-2**32 bound refused to load the registry.
    record = json.dumps({**RECORD, "registered_at": "2688-01-01T00:00:00Z"}).encode()
    with pytest.raises(RegistryError, match=r"clock offset -22657816320 s is beyond \+-2\*\*32"):
        register(tmp_path, record)
    assert len(KeyRegistry.load(tmp_path / "registry.toml")) == 0


def test_registry_add_refuses_an_id_the_file_cannot_hold() -> None:
    registry = KeyRegistry([])
    with pytest.raises(RegistryError, match=r"must be 1\.\.128 of"):
        registry.add(BeaconKey("a\nb", bytes(16), 10, 0))


def test_record_nested_too_deep_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a JSON registration record"):
        register(tmp_path, b"[" * 100_000)


# --------------------------------------------------------------------------- capture: fuzz_capture


@pytest.mark.parametrize(
    "t",
    [
        b"17672256301767225600.507281",  # found by fuzz_capture: no event can carry that date
        b"1" + b"0" * 400,  # an int too large for a float: OverflowError
        b"253402300800",  # 10000-01-01T00:00:00Z
    ],
)
def test_capture_time_beyond_year_9999_is_refused(tmp_path: Path, t: bytes) -> None:
    line = b'{"t":' + t + b',"gateway":"g","address":"a","rssi":-60,"service_data":{}}\n'
    path = write(tmp_path, "c.jsonl", CAPTURE_HEADER + line)
    with pytest.raises(SourceError, match="line 2: 't' must be non-negative unix seconds before"):
        list(read_sightings(path))


def test_capture_nested_too_deep_is_not_json() -> None:
    _, adverts = read_capture(io.StringIO((CAPTURE_HEADER + b"[" * 100_000).decode()))
    with pytest.raises(CaptureError, match="capture line 2: not JSON"):
        list(adverts)


# ------------------------------------ TOML nested too deep: fuzz_registry, fuzz_config, fuzz_scene


DEEP_TOML = b"a = " + b"[" * 5000


def test_registry_nested_too_deep_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML: nested too deep"):
        KeyRegistry.load(write(tmp_path, "r.toml", DEEP_TOML))


def test_config_nested_too_deep_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML: nested too deep"):
        load_config(write(tmp_path, "g.toml", DEEP_TOML), {})


def test_scene_nested_too_deep_is_a_scene_error(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="not valid TOML: nested too deep"):
        load_scene(write(tmp_path, "s.toml", b"a = " + b"{b=" * 3000))


def test_environment_value_nested_too_deep_is_a_bad_value(tmp_path: Path) -> None:
    environ = {"BEACON_GATEWAY__GATEWAYS__0__ID": "[" * 5000}
    with pytest.raises(ConfigError, match=r"gateways\[0\]\.id: .* \(from BEACON_GATEWAY__"):
        load_config(write(tmp_path, "g.toml", CONFIG), environ)


def test_environment_index_that_is_not_an_ascii_number(tmp_path: Path) -> None:
    # str.isdigit() accepts '²', which int() refuses: a ValueError escaped.
    environ = {"BEACON_GATEWAY__GATEWAYS__²__ID": "x"}
    with pytest.raises(ConfigError, match="gateways has no item ²"):
        load_config(write(tmp_path, "g.toml", CONFIG), environ)


# ----------------------------------------------------------------------------- config: fuzz_config


def test_floor_plan_too_large_to_model_is_a_config_error(tmp_path: Path) -> None:
    # The configuration loaded, then building the zone fitter asked for 74.5 GiB.
    config = CONFIG.replace(b'id = "a"', b'id = "a"\nposition = [0.0, 0.0]') + (
        b'[[zones]]\nid = "z"\ngateways = ["a"]\nrect = [0.0, 0.0, 1e5, 1e5]\n'
    )
    with pytest.raises(ConfigError, match=r"zones: the floor plan spans 100004 x 100004 m"):
        load_config(write(tmp_path, "g.toml", config), {})


# ------------------------------------------------------------------------------- scene: fuzz_scene


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (b"[0.0, 0.0, 1.0, 1.0]", b"[0.0, 0.0, inf, 1.0]", "zones[0].rect[2]"),
        (b"[0.5, 0.5]", b"[nan, 0.5]", "gateways[0].position[0]"),
        (b'zone = "z"', b'zone = "z"\nrssi_offset_db = -inf', "gateways[0].rssi_offset_db"),
        (b"duration_s = 60", b"duration_s = 60\n[radio]\nsensitivity_dbm = nan", "radio."),
    ],
)
def test_scene_number_that_is_not_finite_is_refused(
    tmp_path: Path, old: bytes, new: bytes, field: str
) -> None:
    with pytest.raises(SceneError, match=rf"{re.escape(field)}.*finite number"):
        load_scene(write(tmp_path, "s.toml", SCENE.replace(old, new)))


def test_scene_ending_after_year_9999_is_refused(tmp_path: Path) -> None:
    scene = SCENE.replace(b"duration_s = 60", b"duration_s = 60\nstart = 1e12")
    with pytest.raises(SceneError, match="must end before year 10000"):
        load_scene(write(tmp_path, "s.toml", scene))
