"""Provisioning end to end: configuration app, simulated beacon, gateway registry and resolver.

The spec's section 7.1 vectors pin the key agreement: with the first set's beacon private key,
the beacon must derive identity key f40d6f18... from the resolver's public key.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest

import eid
from firmware_sim.config_service import Characteristic, ConfigurationService, Firmware, LockState
from firmware_sim.provisioning import RegistrationRecord, provision_eid
from gateway.cli import main
from gateway.registry import KeyRegistry

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_767_225_600
h = bytes.fromhex
RESOLVER_PRIVATE = h("61136adab1bf302f1c49e860196aeefd8fbaa41518b4c226372d6cc469c47278")
RESOLVER_PUBLIC = h("29769a045dcb811ba3025985b9de91eb9a57dadbceb68a1e6a3c2b1af4868e1f")
BEACON_PRIVATE = h("6ea13b5ef3cc642fd6102c1d85c096b510f56efc488114a4562a987bf4525628")
BEACON_PUBLIC = h("c63e6f89aab47552c8d621a59c81d0af203f6570a4bd7a267a08a17561c8bc2b")
IDENTITY_KEY = h("f40d6f18e5882260e847e99ca33ac44f")
LOCK_CODE = bytes(16)  # Estimote's default lock code


class SpecKeys(random.Random):
    """Hands out the spec's beacon private key when the firmware makes a key pair."""

    def randbytes(self, n: int) -> bytes:
        return BEACON_PRIVATE if n == 32 else super().randbytes(n)


def test_the_beacon_derives_the_spec_identity_key_and_shows_the_spec_public_key() -> None:
    firmware = Firmware(lock_code=LOCK_CODE)
    record = provision_eid(
        ConfigurationService(firmware, SpecKeys(1)),
        beacon_id="bag-1",
        lock_code=LOCK_CODE,
        service_public_key=RESOLVER_PUBLIC,
        exponent=10,
        now=T0,
    )
    assert record.beacon_public_key == BEACON_PUBLIC
    state = firmware.slots[0].eid
    assert state is not None
    assert state.identity_key == IDENTITY_KEY
    assert record.initial_clock == 65_280  # started just before a temporary-key roll-over
    assert record.initial_eid == eid.compute_eid(IDENTITY_KEY, 10, 65_280)
    assert firmware.lock_state is LockState.LOCKED  # relocked on disconnect
    registered = eid.register_ecdh(
        service_private=RESOLVER_PRIVATE,
        beacon_public=record.beacon_public_key,
        exponent=record.rotation_exponent,
        initial_clock=record.initial_clock,
        initial_eid=record.initial_eid,
        registered_at=record.registered_at,
        service_public=record.service_public_key,
    )
    assert registered.identity_key == IDENTITY_KEY


@pytest.mark.parametrize("long_write", [True, False])
@pytest.mark.parametrize("exponent", [0, 4, 10, 15])
def test_a_provisioned_beacon_is_registered_and_resolved_for_hours(
    long_write: bool, exponent: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = KeyRegistry.create()
    service_public = registry.service_public_key
    assert service_public is not None
    path = tmp_path / "registry.toml"
    registry.save(path)

    firmware = Firmware(lock_code=LOCK_CODE)
    record = provision_eid(
        ConfigurationService(firmware, random.Random(exponent)),
        beacon_id="bag-1",
        lock_code=LOCK_CODE,
        service_public_key=service_public,
        exponent=exponent,
        now=T0,
        long_write=long_write,
    )
    record_file = tmp_path / "record.json"
    record_file.write_text(json.dumps(record.to_json()))
    assert main(["keys", "register", str(path), "--record", str(record_file)]) == 0
    capsys.readouterr()

    loaded = KeyRegistry.load(path)
    state = firmware.slots[0].eid
    assert state is not None
    assert loaded["bag-1"].identity_key == state.identity_key  # both sides derived the same key

    resolver = loaded.resolver()
    for now in range(T0, T0 + 5 * 3600, 97):
        current = eid.compute_eid(state.identity_key, exponent, state.counter_at(now))
        match = resolver.resolve(current, now)
        assert match is not None
        assert match.beacon_id == "bag-1"


def test_the_record_hides_nothing_secret_in_its_repr() -> None:
    record = RegistrationRecord("b", BEACON_PUBLIC, 10, 65_280, bytes(8), T0, RESOLVER_PUBLIC)
    assert BEACON_PUBLIC.hex() not in repr(record)
    assert json.loads(json.dumps(record.to_json()))["beacon_public_key"] == BEACON_PUBLIC.hex()


def test_provisioning_a_locked_beacon_with_the_wrong_code_fails() -> None:
    firmware = Firmware(lock_code=LOCK_CODE)
    service = ConfigurationService(firmware, random.Random(3))
    with pytest.raises(Exception, match="wrong unlock token"):
        provision_eid(
            service,
            beacon_id="b",
            lock_code=b"\x01" * 16,
            service_public_key=RESOLVER_PUBLIC,
            exponent=10,
            now=T0,
        )
    assert firmware.slots[0].kind == "uid"  # untouched
    service.connect()
    with pytest.raises(Exception, match="locked"):
        service.read(Characteristic.ADV_SLOT_DATA, T0)
