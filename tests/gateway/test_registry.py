"""The key registry file: loading, every problem reported, identity keys never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.registry import KeyRegistry

ROOT = Path(__file__).resolve().parents[2]
SECRET_HEX = "0102030405060708090a111213141516"


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "loyalty-0001",
        "identity_key": SECRET_HEX,
        "rotation_exponent": 10,
        "clock_offset": -100,
    }
    base.update(overrides)
    return base


def problems_of(document: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        KeyRegistry.from_document(document, source="test.toml")
    return caught.value


def test_shipped_test_registry_loads() -> None:
    registry = KeyRegistry.load(ROOT / "configs" / "test-registry.toml")
    assert len(registry) == 5
    assert registry["loyalty-0001"].identity_key == bytes.fromhex(SECRET_HEX)
    assert registry["loyalty-0001"].rotation_exponent == 10


def test_every_problem_is_reported_with_path_and_value() -> None:
    error = problems_of(
        {
            "version": 1,
            "beacons": [
                record(rotation_exponent=16),
                record(id="b", identity_key="zz" * 16, colour="red"),
                record(id="c", identity_key="11" * 16, clock_offset="x"),
            ],
        }
    )
    shown = [str(problem) for problem in error.problems]
    assert any(s.startswith("beacons[0].rotation_exponent:") and "(got 16)" in s for s in shown)
    assert any(s.startswith("beacons[1].identity_key:") for s in shown)
    assert "beacons[1].colour: Extra inputs are not permitted" in shown
    assert any(s.startswith("beacons[2].clock_offset:") and "'x'" in s for s in shown)
    assert len(error.problems) == 4
    assert "test.toml" in str(error)


@pytest.mark.parametrize(
    "bad_key",
    [
        SECRET_HEX[:-2],  # 15 bytes: valid hex, wrong size
        SECRET_HEX + "17",  # 17 bytes
        SECRET_HEX[:-1] + "g",  # not hex
        0x0102030405060708090A111213141516,  # not a string
    ],
)
def test_identity_key_values_never_appear_in_errors(bad_key: object) -> None:
    error = problems_of({"version": 1, "beacons": [record(identity_key=bad_key)]})
    text = str(error) + repr(error.problems)
    assert "identity_key" in text
    assert SECRET_HEX[:20] not in text
    assert str(bad_key)[:20] not in text


def test_duplicate_ids_and_keys_are_refused_without_showing_the_key() -> None:
    error = problems_of({"version": 1, "beacons": [record(), record(), record(id="other")]})
    shown = [str(problem) for problem in error.problems]
    assert "beacons[1].id: duplicate id, first used by beacons[0] (got 'loyalty-0001')" in shown
    assert "beacons[1].identity_key: same identity key as beacons[0]" in shown
    assert "beacons[2].identity_key: same identity key as beacons[0]" in shown
    assert SECRET_HEX not in str(error)


def test_version_is_required() -> None:
    error = problems_of({"beacons": []})
    assert [problem.path for problem in error.problems] == ["version"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"version = 1\n[[beacons]\n", "is not valid TOML"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_unreadable_files_are_config_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "registry.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        KeyRegistry.load(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        KeyRegistry.load(tmp_path / "absent.toml")


def test_reprs_hide_identity_keys() -> None:
    registry = KeyRegistry.from_document({"version": 1, "beacons": [record()]})
    key = registry["loyalty-0001"]
    assert SECRET_HEX not in repr(key)
    assert repr(bytes.fromhex(SECRET_HEX)) not in repr(key)
    assert "<hidden>" in repr(key)
    assert repr(registry) == "KeyRegistry(beacons=1, service_key=no)"
    assert [k.beacon_id for k in registry] == ["loyalty-0001"]


def test_resolver_has_every_beacon() -> None:
    registry = KeyRegistry.from_document(
        {"version": 1, "beacons": [record(), record(id="b", identity_key="22" * 16)]}
    )
    resolver = registry.resolver()
    assert len(resolver) == 2
    assert "b" in resolver
