"""The Eddystone GATT configuration service of a simulated beacon (eddystone-spec.md section 8).

A state machine over characteristic reads and writes, as the mbed and Nordic reference firmwares
implement it: twelve characteristics with the spec's lock rules and ATT error codes, one-time
unlock challenges, lock-code change, EID slots written with the service's X25519 public key (34
bytes, the beacon derives the identity key) or with the identity key sealed by the lock code (18
bytes), long (prepared) writes, the 14-byte EID slot read, factory reset and capabilities.

Time is data: reads and writes take ``now`` (unix seconds) for the beacon clock. Randomness
(challenges, beacon key pairs) comes from the ``random.Random`` given, so a simulation repeats
exactly under a seed; it is a simulator, not security.
"""

from __future__ import annotations

import enum
import hmac
import math
import struct
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import eid
from eid import frames
from eid.ephemeral import MAX_EXPONENT
from eid.lock import open_with_lock_code, seal_with_lock_code
from eid.url import decode_url

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

SERVICE_UUID: Final = "a3c87500-8ed3-4bdf-8a39-a01bebede295"


def _characteristic(number: int) -> str:
    return f"a3c875{number:02x}-8ed3-4bdf-8a39-a01bebede295"


class Characteristic(enum.StrEnum):
    """The twelve characteristics, by UUID (spec section 8.2)."""

    CAPABILITIES = _characteristic(0x01)
    ACTIVE_SLOT = _characteristic(0x02)
    ADVERTISING_INTERVAL = _characteristic(0x03)
    RADIO_TX_POWER = _characteristic(0x04)
    ADVERTISED_TX_POWER = _characteristic(0x05)
    LOCK_STATE = _characteristic(0x06)
    UNLOCK = _characteristic(0x07)
    PUBLIC_ECDH_KEY = _characteristic(0x08)
    EID_IDENTITY_KEY = _characteristic(0x09)
    ADV_SLOT_DATA = _characteristic(0x0A)
    FACTORY_RESET = _characteristic(0x0B)
    REMAIN_CONNECTABLE = _characteristic(0x0C)


class AttError(enum.IntEnum):
    """ATT error codes the service answers with."""

    READ_NOT_PERMITTED = 0x02
    WRITE_NOT_PERMITTED = 0x03
    INVALID_OFFSET = 0x07
    INVALID_ATTRIBUTE_LENGTH = 0x0D


class GattError(Exception):
    """A read or write refused with an ATT error code."""

    def __init__(self, code: AttError, message: str) -> None:
        super().__init__(f"ATT error 0x{code:02x} ({code.name}): {message}")
        self.code = code


class LockState(enum.IntEnum):
    """Lock State characteristic values."""

    LOCKED = 0x00
    UNLOCKED = 0x01
    UNLOCKED_NO_RELOCK = 0x02


FACTORY_RESET_VALUE: Final = 0x0B
NO_TELEMETRY: Final = bytes.fromhex("000080000000000000000000")
"""TLM data of a beacon with no readings: 0 mV (none), 0x8000 (no sensor), no counts."""
MIN_INTERVAL_MS: Final = 100
MAX_INTERVAL_MS: Final = 10_240
"""Advertising intervals are clamped to what BLE allows non-connectable adverts (0.1..10.24 s)."""
INITIAL_EID_CLOCK: Final = 65_280
"""Spec 6: start an EID clock just before a temporary-key roll-over, to exercise it early."""
_FRAME_TYPE_BITS: Final = {"uid": 0x0001, "url": 0x0002, "tlm": 0x0004, "eid": 0x0008}
_CAP_VARIABLE_ADV: Final = 0x01
_CAP_VARIABLE_TX: Final = 0x02


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the firmware supports (Capabilities characteristic)."""

    max_slots: int = 4
    max_eid_slots: int = 1
    variable_adv: bool = False
    variable_tx: bool = True
    tx_powers: tuple[int, ...] = (-30, -20, -16, -12, -8, -4, 0, 4)

    def encode(self) -> bytes:
        """The characteristic's bytes."""
        bits = (_CAP_VARIABLE_ADV if self.variable_adv else 0) | (
            _CAP_VARIABLE_TX if self.variable_tx else 0
        )
        types = sum(_FRAME_TYPE_BITS.values())
        head = struct.pack(">BBBBH", 0, self.max_slots, self.max_eid_slots, bits, types)
        return head + bytes(power & 0xFF for power in sorted(self.tx_powers))


@dataclass(frozen=True, slots=True, repr=False)
class EidState:
    """An EID slot's secrets and clock: the beacon counter is ``counter_at(now)``."""

    identity_key: bytes
    exponent: int
    clock_start: int  # beacon counter at clock_epoch
    clock_epoch: float  # unix seconds
    public_key: bytes | None  # the beacon's X25519 public key (ECDH registrations)
    rate: float = 1.0  # beacon seconds per real second (1 + drift in ppm / 1e6)

    def counter_at(self, now: float) -> int:
        """The slot's beacon time counter (uint32 seconds) at ``now``."""
        return (self.clock_start + math.floor((now - self.clock_epoch) * self.rate)) % (1 << 32)

    def restarted(self, counter: int, now: float) -> EidState:
        """The same slot, its clock set to ``counter`` at ``now`` (restored after power loss)."""
        return replace(self, clock_start=counter % (1 << 32), clock_epoch=now)

    def __repr__(self) -> str:
        return f"EidState(identity_key=<hidden>, exponent={self.exponent})"


@dataclass(slots=True)
class Slot:
    """One advertising slot: its frame kind and data, and its radio settings."""

    kind: str | None = None  # "uid", "url", "tlm", "eid" or None (empty)
    data: bytes = b""  # UID: namespace+instance; URL: scheme+body
    eid: EidState | None = None
    radio_tx_power: int = 0
    advertised_tx_power: int | None = None  # None: mirrors the radio power

    def clear(self) -> None:
        """Stop advertising; an EID slot's identity key and clock are destroyed."""
        self.kind, self.data, self.eid = None, b"", None


@dataclass(slots=True)
class Firmware:
    """The beacon's configuration state, as the configuration service exposes it."""

    lock_code: bytes
    capabilities: Capabilities = field(default_factory=Capabilities)
    factory_namespace: bytes = bytes(10)
    factory_instance: bytes = bytes(6)
    lock_state: LockState = LockState.LOCKED
    relock_on_disconnect: bool = True  # Nordic relocks state 0x01 on disconnect; mbed does not
    interval_ms: int = 1000
    remain_connectable: bool = True
    telemetry: Callable[[float], bytes] | None = field(default=None, repr=False, compare=False)
    """The 12 TLM data bytes at a time, from the running beacon (None: no readings)."""
    slots: list[Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.lock_code) != 16:  # noqa: PLR2004 - AES-128
            msg = "lock code must be 16 bytes"
            raise ValueError(msg)
        if not self.slots:
            self.factory_reset()

    def factory_reset(self) -> None:
        """All slots erased (identity keys included); slot 0 sends the factory UID."""
        self.slots = [Slot() for _ in range(self.capabilities.max_slots)]
        self.slots[0].kind = "uid"
        self.slots[0].data = self.factory_namespace + self.factory_instance

    def advertised_power(self, slot: Slot) -> int:
        """Tx power at 0 m put in the slot's frames."""
        return slot.radio_tx_power if slot.advertised_tx_power is None else slot.advertised_tx_power

    def has_eid(self) -> bool:
        """Whether any slot is an EID slot (TLM then goes out encrypted)."""
        return any(slot.kind == "eid" for slot in self.slots)

    def __repr__(self) -> str:
        return f"Firmware(lock_state={self.lock_state.name}, lock_code=<hidden>)"


class ConfigurationService:
    """One connection's view of the configuration service of ``firmware``."""

    def __init__(self, firmware: Firmware, rng: random.Random) -> None:
        self.firmware = firmware
        self._rng = rng
        self._active = 0
        self._challenge: bytes | None = None
        self._prepared: dict[str, list[tuple[int, bytes]]] = {}
        self.connected = False

    # ------------------------------------------------------------------------------- connection

    def connect(self) -> None:
        """A client connects: the active slot resets to 0 (spec 8.2)."""
        self.connected = True
        self._active = 0
        self._challenge = None
        self._prepared.clear()

    def disconnect(self) -> None:
        """The client leaves: a state-0x01 beacon relocks (if its firmware does)."""
        self.connected = False
        self._prepared.clear()
        firmware = self.firmware
        if firmware.relock_on_disconnect and firmware.lock_state is LockState.UNLOCKED:
            firmware.lock_state = LockState.LOCKED

    # ------------------------------------------------------------------------------------ reads

    def read(self, characteristic: Characteristic, now: float) -> bytes:
        """Read a characteristic; :class:`GattError` if refused."""
        firmware = self.firmware
        locked = firmware.lock_state is LockState.LOCKED
        if characteristic is Characteristic.LOCK_STATE:
            return bytes((firmware.lock_state,))
        if characteristic is Characteristic.UNLOCK:
            if not locked:
                raise GattError(AttError.READ_NOT_PERMITTED, "the beacon is unlocked already")
            self._challenge = self._rng.randbytes(16)  # a new one-time challenge on every read
            return self._challenge
        if locked:
            raise GattError(AttError.READ_NOT_PERMITTED, "the beacon is locked")
        slot = firmware.slots[self._active]
        readers: dict[Characteristic, Callable[[], bytes]] = {
            Characteristic.CAPABILITIES: firmware.capabilities.encode,
            Characteristic.ACTIVE_SLOT: lambda: bytes((self._active,)),
            Characteristic.ADVERTISING_INTERVAL: lambda: struct.pack(">H", firmware.interval_ms),
            Characteristic.RADIO_TX_POWER: lambda: struct.pack(">b", slot.radio_tx_power),
            Characteristic.ADVERTISED_TX_POWER: lambda: struct.pack(
                ">b", firmware.advertised_power(slot)
            ),
            Characteristic.PUBLIC_ECDH_KEY: lambda: self._public_key(slot),
            Characteristic.EID_IDENTITY_KEY: lambda: self._sealed_identity_key(slot),
            Characteristic.ADV_SLOT_DATA: lambda: self._slot_data(slot, now),
            Characteristic.REMAIN_CONNECTABLE: lambda: bytes((int(firmware.remain_connectable),)),
        }
        reader = readers.get(characteristic)
        if reader is None:
            raise GattError(AttError.READ_NOT_PERMITTED, f"{characteristic.name} is write-only")
        return reader()

    def _public_key(self, slot: Slot) -> bytes:
        if slot.eid is None or slot.eid.public_key is None:
            msg = "the active slot has no ECDH-configured EID"
            raise GattError(AttError.READ_NOT_PERMITTED, msg)
        return slot.eid.public_key

    def _sealed_identity_key(self, slot: Slot) -> bytes:
        if slot.eid is None:
            raise GattError(AttError.READ_NOT_PERMITTED, "the active slot is not an EID slot")
        return seal_with_lock_code(self.firmware.lock_code, slot.eid.identity_key)

    def _slot_data(self, slot: Slot, now: float) -> bytes:
        power = self.firmware.advertised_power(slot) & 0xFF
        if slot.kind == "uid":
            return bytes((frames.FrameType.UID, power)) + slot.data + b"\x00\x00"
        if slot.kind == "url":
            return bytes((frames.FrameType.URL, power)) + slot.data
        if slot.kind == "tlm":
            return self._tlm_read(now)
        if slot.kind == "eid" and slot.eid is not None:
            state = slot.eid
            counter = state.counter_at(now)
            current = eid.compute_eid(state.identity_key, state.exponent, counter)
            return struct.pack(">BBI", frames.FrameType.EID, state.exponent, counter) + current
        return b""

    def _tlm_read(self, now: float) -> bytes:
        """The TLM slot's frame: plain, or eTLM under the first EID slot's key (as mbed does)."""
        firmware = self.firmware
        data = NO_TELEMETRY if firmware.telemetry is None else firmware.telemetry(now)
        state = next((slot.eid for slot in firmware.slots if slot.eid is not None), None)
        if state is None:
            return bytes((frames.FrameType.TLM, frames.TLM_PLAIN)) + data
        salt = self._rng.randbytes(2)
        return eid.encrypt_etlm(
            state.identity_key, state.exponent, state.counter_at(now), salt, data
        )

    # ----------------------------------------------------------------------------------- writes

    def write(
        self, characteristic: Characteristic, value: bytes, now: float, offset: int = 0
    ) -> None:
        """Write a characteristic; :class:`GattError` if refused."""
        if offset:
            raise GattError(AttError.INVALID_OFFSET, "use a long (prepared) write for offsets")
        firmware = self.firmware
        value = bytes(value)
        if characteristic is Characteristic.UNLOCK:
            self._unlock(value)
            return
        if firmware.lock_state is LockState.LOCKED:
            raise GattError(AttError.WRITE_NOT_PERMITTED, "the beacon is locked")
        writers = {
            Characteristic.ACTIVE_SLOT: self._write_active_slot,
            Characteristic.ADVERTISING_INTERVAL: self._write_interval,
            Characteristic.RADIO_TX_POWER: self._write_radio_power,
            Characteristic.ADVERTISED_TX_POWER: self._write_advertised_power,
            Characteristic.LOCK_STATE: self._write_lock_state,
            Characteristic.FACTORY_RESET: self._write_factory_reset,
            Characteristic.REMAIN_CONNECTABLE: self._write_remain_connectable,
        }
        if characteristic is Characteristic.ADV_SLOT_DATA:
            self._write_slot_data(value, now)
            return
        writer = writers.get(characteristic)
        if writer is None:
            raise GattError(AttError.WRITE_NOT_PERMITTED, f"{characteristic.name} is read-only")
        writer(value)

    def prepare_write(self, characteristic: Characteristic, offset: int, part: bytes) -> None:
        """Queue part of a long write (ATT Prepare Write)."""
        self._prepared.setdefault(characteristic, []).append((offset, bytes(part)))

    def execute_write(self, now: float, *, commit: bool = True) -> None:
        """Apply (or cancel) the queued long writes (ATT Execute Write)."""
        prepared, self._prepared = self._prepared, {}
        if not commit:
            return
        for characteristic, parts in prepared.items():
            value = b""
            for offset, part in parts:
                if offset != len(value):
                    raise GattError(AttError.INVALID_OFFSET, "long write parts are not contiguous")
                value += part
            self.write(Characteristic(characteristic), value, now)

    @staticmethod
    def _one_byte(value: bytes) -> int:
        if len(value) != 1:
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "one byte expected")
        return value[0]

    def _unlock(self, token: bytes) -> None:
        firmware = self.firmware
        if firmware.lock_state is not LockState.LOCKED:
            raise GattError(AttError.WRITE_NOT_PERMITTED, "the beacon is unlocked already")
        if len(token) != 16:  # noqa: PLR2004
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "the unlock token is 16 bytes")
        challenge, self._challenge = self._challenge, None  # one attempt per challenge
        if challenge is None or not hmac.compare_digest(
            token, eid.unlock_token(firmware.lock_code, challenge)
        ):
            raise GattError(AttError.WRITE_NOT_PERMITTED, "wrong unlock token")
        firmware.lock_state = LockState.UNLOCKED

    def _write_active_slot(self, value: bytes) -> None:
        slot = self._one_byte(value)
        if slot >= self.firmware.capabilities.max_slots:
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, f"no slot {slot}")
        self._active = slot

    def _write_interval(self, value: bytes) -> None:
        if len(value) != 2:  # noqa: PLR2004
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "uint16 expected")
        (interval,) = struct.unpack(">H", value)
        self.firmware.interval_ms = min(max(interval, MIN_INTERVAL_MS), MAX_INTERVAL_MS)

    def _write_radio_power(self, value: bytes) -> None:
        (wanted,) = struct.unpack(">b", bytes((self._one_byte(value),)))
        supported = sorted(self.firmware.capabilities.tx_powers)
        chosen = next((power for power in supported if power >= wanted), supported[-1])
        targets = (
            [self.firmware.slots[self._active]]
            if self.firmware.capabilities.variable_tx
            else self.firmware.slots
        )
        for slot in targets:
            slot.radio_tx_power = chosen

    def _write_advertised_power(self, value: bytes) -> None:
        (power,) = struct.unpack(">b", bytes((self._one_byte(value),)))
        self.firmware.slots[self._active].advertised_tx_power = power

    def _write_lock_state(self, value: bytes) -> None:
        firmware = self.firmware
        if value == bytes((LockState.LOCKED,)):
            firmware.lock_state = LockState.LOCKED
        elif value == bytes((LockState.UNLOCKED_NO_RELOCK,)):
            firmware.lock_state = LockState.UNLOCKED_NO_RELOCK
        elif len(value) == 17 and value[0] == LockState.LOCKED:  # noqa: PLR2004 - 00 | E(new code)
            firmware.lock_code = open_with_lock_code(firmware.lock_code, value[1:])
            firmware.lock_state = LockState.LOCKED
        else:
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "lock state: 00, 02 or 00+16 bytes")

    def _write_factory_reset(self, value: bytes) -> None:
        if self._one_byte(value) != FACTORY_RESET_VALUE:
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "factory reset takes 0x0b")
        if self.firmware.lock_state is not LockState.UNLOCKED:
            raise GattError(AttError.WRITE_NOT_PERMITTED, "factory reset needs lock state 0x01")
        self.firmware.factory_reset()

    def _write_remain_connectable(self, value: bytes) -> None:
        self.firmware.remain_connectable = self._one_byte(value) != 0

    def _write_slot_data(self, value: bytes, now: float) -> None:
        slot = self.firmware.slots[self._active]
        if value in (b"", b"\x00"):
            slot.clear()
            return
        kind = value[0]
        if kind == frames.FrameType.UID and len(value) == 17:  # noqa: PLR2004
            slot.clear()
            slot.kind, slot.data = "uid", value[1:]
        elif kind == frames.FrameType.URL and 3 <= len(value) <= 19:  # noqa: PLR2004
            try:
                decode_url(value[1], value[2:])
            except eid.FrameError as exc:
                raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, str(exc)) from None
            slot.clear()
            slot.kind, slot.data = "url", value[1:]
        elif kind == frames.FrameType.TLM and len(value) == 1:
            slot.clear()
            slot.kind = "tlm"
        elif kind == frames.FrameType.EID and len(value) in (18, 34):
            self._write_eid_slot(slot, value, now)
        else:
            msg = f"no slot data format of {len(value)} bytes for frame type 0x{kind:02x}"
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, msg)

    def _write_eid_slot(self, slot: Slot, value: bytes, now: float) -> None:
        exponent = value[-1]
        if exponent > MAX_EXPONENT:
            raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, "rotation exponent above 15")
        eid_slots = sum(
            1 for other in self.firmware.slots if other.kind == "eid" and other is not slot
        )
        if eid_slots >= self.firmware.capabilities.max_eid_slots:
            raise GattError(AttError.WRITE_NOT_PERMITTED, "no free EID slot")
        public_key = None
        if len(value) == 34:  # noqa: PLR2004 - 0x30 | service public key | K
            private_key = self._rng.randbytes(32)  # a fresh key pair per registration (spec 7)
            try:
                identity_key = eid.beacon_identity_key(private_key, value[1:33])
            except eid.InvalidKeyError as exc:
                raise GattError(AttError.INVALID_ATTRIBUTE_LENGTH, str(exc)) from None
            public_key = eid.public_key(private_key)
        else:  # 0x30 | AES-ECB(lock code, identity key) | K
            identity_key = open_with_lock_code(self.firmware.lock_code, value[1:17])
        slot.clear()
        slot.kind = "eid"
        slot.eid = EidState(identity_key, exponent, INITIAL_EID_CLOCK, now, public_key)
