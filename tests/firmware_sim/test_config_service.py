"""The GATT configuration service, characteristic by characteristic (eddystone-spec.md 8.2-8.4)."""

from __future__ import annotations

import random

import pytest

import eid
from eid.lock import seal_with_lock_code
from firmware_sim.config_service import (
    AttError,
    Capabilities,
    Characteristic,
    ConfigurationService,
    Firmware,
    GattError,
    LockState,
)

C = Characteristic
T0 = 1_767_225_600.0
LOCK_CODE = bytes(range(16))
NAMESPACE = bytes.fromhex("8b0ca750095477cb3e77")
INSTANCE = bytes.fromhex("000000000001")
SERVICE_PUBLIC = bytes.fromhex("29769a045dcb811ba3025985b9de91eb9a57dadbceb68a1e6a3c2b1af4868e1f")
ALL = list(Characteristic)


def beacon(*, unlocked: bool, **firmware_options: object) -> ConfigurationService:
    firmware = Firmware(
        lock_code=LOCK_CODE,
        factory_namespace=NAMESPACE,
        factory_instance=INSTANCE,
        **firmware_options,  # type: ignore[arg-type]
    )
    service = ConfigurationService(firmware, random.Random(7))
    service.connect()
    if unlocked:
        challenge = service.read(C.UNLOCK, T0)
        service.write(C.UNLOCK, eid.unlock_token(LOCK_CODE, challenge), T0)
    return service


def error_of(call: object) -> AttError:
    assert callable(call)
    with pytest.raises(GattError) as caught:
        call()
    return caught.value.code


# ----------------------------------------------------------------------------------- locked


@pytest.mark.parametrize("characteristic", [c for c in ALL if c not in (C.LOCK_STATE, C.UNLOCK)])
def test_locked_reads_are_refused_with_0x02(characteristic: Characteristic) -> None:
    service = beacon(unlocked=False)
    assert error_of(lambda: service.read(characteristic, T0)) is AttError.READ_NOT_PERMITTED


@pytest.mark.parametrize("characteristic", [c for c in ALL if c is not C.UNLOCK])
def test_locked_writes_are_refused_with_0x03(characteristic: Characteristic) -> None:
    service = beacon(unlocked=False)
    assert error_of(lambda: service.write(characteristic, b"\x00", T0)) is (
        AttError.WRITE_NOT_PERMITTED
    )


def test_lock_state_reads_while_locked_and_challenges_are_one_time() -> None:
    service = beacon(unlocked=False)
    assert service.read(C.LOCK_STATE, T0) == b"\x00"
    first = service.read(C.UNLOCK, T0)
    second = service.read(C.UNLOCK, T0)
    assert len(first) == 16
    assert first != second  # a new challenge on every read
    stale = eid.unlock_token(LOCK_CODE, first)
    assert error_of(lambda: service.write(C.UNLOCK, stale, T0)) is AttError.WRITE_NOT_PERMITTED
    # the failed attempt used up the challenge: the right token for it is refused too
    right = eid.unlock_token(LOCK_CODE, second)
    assert error_of(lambda: service.write(C.UNLOCK, right, T0)) is AttError.WRITE_NOT_PERMITTED
    challenge = service.read(C.UNLOCK, T0)
    service.write(C.UNLOCK, eid.unlock_token(LOCK_CODE, challenge), T0)
    assert service.read(C.LOCK_STATE, T0) == b"\x01"


def test_unlock_token_of_the_wrong_size_is_0x0d_and_without_challenge_0x03() -> None:
    service = beacon(unlocked=False)
    assert error_of(lambda: service.write(C.UNLOCK, bytes(15), T0)) is (
        AttError.INVALID_ATTRIBUTE_LENGTH
    )
    assert error_of(lambda: service.write(C.UNLOCK, bytes(16), T0)) is (
        AttError.WRITE_NOT_PERMITTED
    )


# --------------------------------------------------------------------------------- unlocked


def test_capabilities_match_the_spec_illustration() -> None:
    service = beacon(
        unlocked=True,
        capabilities=Capabilities(
            max_slots=4, max_eid_slots=1, variable_adv=True, variable_tx=True,
            tx_powers=(-30, -20, -16, -12, -8, -4, 0, 4),
        ),
    )  # fmt: skip
    assert service.read(C.CAPABILITIES, T0).hex() == "00040103000fe2ecf0f4f8fc0004"


@pytest.mark.parametrize(
    ("characteristic", "expected"),
    [
        (C.ACTIVE_SLOT, "00"),
        (C.ADVERTISING_INTERVAL, "03e8"),
        (C.RADIO_TX_POWER, "00"),
        (C.ADVERTISED_TX_POWER, "00"),
        (C.LOCK_STATE, "01"),
        (C.REMAIN_CONNECTABLE, "01"),
        (C.ADV_SLOT_DATA, "0000" + NAMESPACE.hex() + INSTANCE.hex() + "0000"),
    ],
)
def test_unlocked_reads(characteristic: Characteristic, expected: str) -> None:
    assert beacon(unlocked=True).read(characteristic, T0).hex() == expected


@pytest.mark.parametrize(
    "characteristic",
    [C.UNLOCK, C.PUBLIC_ECDH_KEY, C.EID_IDENTITY_KEY, C.FACTORY_RESET],
)
def test_unlocked_reads_refused(characteristic: Characteristic) -> None:
    service = beacon(unlocked=True)  # unlocked already; no EID slot yet; write-only
    assert error_of(lambda: service.read(characteristic, T0)) is AttError.READ_NOT_PERMITTED


@pytest.mark.parametrize(
    ("characteristic", "value", "code"),
    [
        (C.CAPABILITIES, b"\x00", AttError.WRITE_NOT_PERMITTED),
        (C.PUBLIC_ECDH_KEY, bytes(32), AttError.WRITE_NOT_PERMITTED),
        (C.EID_IDENTITY_KEY, bytes(16), AttError.WRITE_NOT_PERMITTED),
        (C.UNLOCK, bytes(16), AttError.WRITE_NOT_PERMITTED),
        (C.ACTIVE_SLOT, b"\x04", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ACTIVE_SLOT, b"\x00\x00", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADVERTISING_INTERVAL, b"\x01", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.RADIO_TX_POWER, b"\x00\x00", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADVERTISED_TX_POWER, b"", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.LOCK_STATE, b"\x01", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.LOCK_STATE, b"\x00\x00", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.FACTORY_RESET, b"\x0c", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.REMAIN_CONNECTABLE, b"", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x00" + bytes(15), AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x10\x07abc", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x10\x01ab c", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x20\x00", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x30" + bytes(19), AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x10", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x30" + bytes(32) + b"\x0a", AttError.INVALID_ATTRIBUTE_LENGTH),
        (C.ADV_SLOT_DATA, b"\x40\x00", AttError.INVALID_ATTRIBUTE_LENGTH),
    ],
)
def test_unlocked_write_errors(
    characteristic: Characteristic, value: bytes, code: AttError
) -> None:
    service = beacon(unlocked=True)
    assert error_of(lambda: service.write(characteristic, value, T0)) is code


def test_interval_is_clamped_and_tx_power_snaps_to_supported() -> None:
    service = beacon(unlocked=True)
    service.write(C.ADVERTISING_INTERVAL, (50).to_bytes(2, "big"), T0)
    assert service.read(C.ADVERTISING_INTERVAL, T0) == (100).to_bytes(2, "big")
    service.write(C.ADVERTISING_INTERVAL, (60_000).to_bytes(2, "big"), T0)
    assert service.read(C.ADVERTISING_INTERVAL, T0) == (10_240).to_bytes(2, "big")
    service.write(C.RADIO_TX_POWER, (-25).to_bytes(1, "big", signed=True), T0)
    assert service.read(C.RADIO_TX_POWER, T0) == (-20).to_bytes(1, "big", signed=True)
    service.write(C.RADIO_TX_POWER, (10).to_bytes(1, "big", signed=True), T0)
    assert service.read(C.RADIO_TX_POWER, T0) == (4).to_bytes(1, "big", signed=True)
    assert service.read(C.ADVERTISED_TX_POWER, T0) == (4).to_bytes(1, "big", signed=True)
    service.write(C.ADVERTISED_TX_POWER, (-18).to_bytes(1, "big", signed=True), T0)
    assert service.read(C.ADV_SLOT_DATA, T0)[:2] == bytes((0x00, 0xEE))


def test_slot_data_writes_read_back_as_frames() -> None:
    service = beacon(unlocked=True)
    service.write(C.ACTIVE_SLOT, b"\x01", T0)
    service.write(C.ADV_SLOT_DATA, b"\x10\x01" + bytes.fromhex("676f6f676c6500"), T0)
    url = eid.frames.parse(service.read(C.ADV_SLOT_DATA, T0))
    assert url == eid.frames.UrlFrame(0, "https://www.google.com/")
    service.write(C.ACTIVE_SLOT, b"\x02", T0)
    service.write(C.ADV_SLOT_DATA, b"\x00" + NAMESPACE + bytes(6), T0)
    assert service.read(C.ADV_SLOT_DATA, T0)[2:18] == NAMESPACE + bytes(6)
    service.write(C.ADV_SLOT_DATA, b"", T0)
    assert service.read(C.ADV_SLOT_DATA, T0) == b""
    service.write(C.ADV_SLOT_DATA, b"\x20", T0)
    plain = eid.frames.parse(service.read(C.ADV_SLOT_DATA, T0))
    assert plain == eid.frames.TlmFrame(0, None, 0, 0)  # no running beacon: no readings


def test_eid_slot_by_ecdh_reads_back_14_bytes_and_the_public_key() -> None:
    service = beacon(unlocked=True)
    service.write(C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x0a", T0)
    data = service.read(C.ADV_SLOT_DATA, T0 + 5)
    assert len(data) == 14
    assert data[:2] == b"\x30\x0a"
    assert int.from_bytes(data[2:6], "big") == 65_280 + 5
    public = service.read(C.PUBLIC_ECDH_KEY, T0)
    state = service.firmware.slots[0].eid
    assert state is not None
    assert state.identity_key == eid.resolver_identity_key(
        bytes.fromhex("61136adab1bf302f1c49e860196aeefd8fbaa41518b4c226372d6cc469c47278"), public
    )
    assert data[6:] == eid.compute_eid(state.identity_key, 10, 65_285)
    sealed = service.read(C.EID_IDENTITY_KEY, T0)
    assert sealed == seal_with_lock_code(LOCK_CODE, state.identity_key)
    # one EID slot only: a second is refused
    service.write(C.ACTIVE_SLOT, b"\x01", T0)
    assert (
        error_of(lambda: service.write(C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x0a", T0))
        is AttError.WRITE_NOT_PERMITTED
    )
    # clearing the EID slot destroys its state
    service.write(C.ACTIVE_SLOT, b"\x00", T0)
    service.write(C.ADV_SLOT_DATA, b"\x00", T0)
    assert service.firmware.slots[0].eid is None
    assert error_of(lambda: service.read(C.PUBLIC_ECDH_KEY, T0)) is AttError.READ_NOT_PERMITTED


def test_eid_slot_by_sealed_identity_key() -> None:
    service = beacon(unlocked=True)
    identity_key = bytes.fromhex("0102030405060708090a111213141516")
    sealed = seal_with_lock_code(LOCK_CODE, identity_key)
    service.write(C.ADV_SLOT_DATA, b"\x30" + sealed + b"\x0a", T0)
    assert service.read(C.EID_IDENTITY_KEY, T0) == sealed
    state = service.firmware.slots[0].eid
    assert state is not None
    assert state.identity_key == identity_key
    assert error_of(lambda: service.read(C.PUBLIC_ECDH_KEY, T0)) is AttError.READ_NOT_PERMITTED


def test_long_writes_assemble_and_need_contiguous_parts() -> None:
    service = beacon(unlocked=True)
    value = b"\x30" + SERVICE_PUBLIC + b"\x0a"
    assert error_of(lambda: service.write(C.ADV_SLOT_DATA, value[18:], T0, offset=18)) is (
        AttError.INVALID_OFFSET
    )
    service.prepare_write(C.ADV_SLOT_DATA, 0, value[:18])
    service.prepare_write(C.ADV_SLOT_DATA, 18, value[18:])
    service.execute_write(T0, commit=False)
    assert service.firmware.slots[0].kind == "uid"  # cancelled
    service.prepare_write(C.ADV_SLOT_DATA, 0, value[:18])
    service.prepare_write(C.ADV_SLOT_DATA, 19, value[19:])
    assert error_of(lambda: service.execute_write(T0)) is AttError.INVALID_OFFSET
    service.prepare_write(C.ADV_SLOT_DATA, 0, value[:18])
    service.prepare_write(C.ADV_SLOT_DATA, 18, value[18:])
    service.execute_write(T0)
    assert service.firmware.slots[0].kind == "eid"


def test_lock_code_change_and_relock() -> None:
    service = beacon(unlocked=True)
    new_code = bytes(range(100, 116))
    service.write(C.LOCK_STATE, b"\x00" + seal_with_lock_code(LOCK_CODE, new_code), T0)
    assert service.read(C.LOCK_STATE, T0) == b"\x00"
    challenge = service.read(C.UNLOCK, T0)
    assert (
        error_of(lambda: service.write(C.UNLOCK, eid.unlock_token(LOCK_CODE, challenge), T0))
        is AttError.WRITE_NOT_PERMITTED
    )
    challenge = service.read(C.UNLOCK, T0)
    service.write(C.UNLOCK, eid.unlock_token(new_code, challenge), T0)
    assert service.read(C.LOCK_STATE, T0) == b"\x01"
    service.write(C.LOCK_STATE, b"\x00", T0)
    assert service.read(C.LOCK_STATE, T0) == b"\x00"


@pytest.mark.parametrize(
    ("state", "relock", "after"),
    [
        (b"\x01", True, LockState.LOCKED),  # Nordic relocks on disconnect
        (b"\x01", False, LockState.UNLOCKED),  # mbed does not
        (b"\x02", True, LockState.UNLOCKED_NO_RELOCK),
    ],
)
def test_disconnect_relocks_only_state_01(state: bytes, relock: bool, after: LockState) -> None:
    service = beacon(unlocked=True, relock_on_disconnect=relock)
    if state == b"\x02":
        service.write(C.LOCK_STATE, state, T0)
    service.write(C.ACTIVE_SLOT, b"\x02", T0)
    service.disconnect()
    assert service.firmware.lock_state is after
    service.connect()
    if after is not LockState.LOCKED:
        assert service.read(C.ACTIVE_SLOT, T0) == b"\x00"  # reset on each connection


def test_factory_reset_needs_state_01_and_keeps_the_lock_code() -> None:
    service = beacon(unlocked=True)
    service.write(C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x0a", T0)
    service.write(C.LOCK_STATE, b"\x02", T0)
    assert error_of(lambda: service.write(C.FACTORY_RESET, b"\x0b", T0)) is (
        AttError.WRITE_NOT_PERMITTED
    )
    service.disconnect()
    service.connect()
    service.write(C.LOCK_STATE, b"\x00", T0)
    challenge = service.read(C.UNLOCK, T0)
    service.write(C.UNLOCK, eid.unlock_token(LOCK_CODE, challenge), T0)
    service.write(C.FACTORY_RESET, b"\x0b", T0)
    assert service.firmware.slots[0].kind == "uid"
    assert service.firmware.slots[0].eid is None
    assert service.firmware.lock_code == LOCK_CODE
    service.write(C.REMAIN_CONNECTABLE, b"\x00", T0)
    assert service.read(C.REMAIN_CONNECTABLE, T0) == b"\x00"


def test_firmware_repr_hides_the_lock_code() -> None:
    service = beacon(unlocked=True)
    service.write(C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x0a", T0)
    text = repr(service.firmware) + repr(service.firmware.slots[0].eid)
    assert LOCK_CODE.hex() not in text
    state = service.firmware.slots[0].eid
    assert state is not None
    assert state.identity_key.hex() not in text
    with pytest.raises(ValueError, match="16 bytes"):
        Firmware(lock_code=bytes(15))


def test_tlm_slot_reads_the_running_beacons_counters_encrypted_with_an_eid_slot() -> None:
    service = beacon(unlocked=True)
    service.firmware.telemetry = lambda _now: bytes.fromhex("0bb81780000003e800008ca0")
    service.write(C.ACTIVE_SLOT, b"\x01", T0)
    service.write(C.ADV_SLOT_DATA, b"\x20", T0)
    assert eid.frames.parse(service.read(C.ADV_SLOT_DATA, T0)) == eid.frames.TlmFrame(
        3000, 23.5, 1000, 36000
    )
    service.write(C.ACTIVE_SLOT, b"\x00", T0)
    service.write(C.ADV_SLOT_DATA, b"\x30" + SERVICE_PUBLIC + b"\x0a", T0)
    service.write(C.ACTIVE_SLOT, b"\x01", T0)
    etlm = service.read(C.ADV_SLOT_DATA, T0 + 7)
    state = service.firmware.slots[0].eid
    assert state is not None
    telemetry = eid.decrypt_etlm(state.identity_key, 10, state.counter_at(T0 + 7), etlm)
    assert telemetry == bytes.fromhex("0bb81780000003e800008ca0")
