"""Provisioning an EID beacon, as a configuration app does (eddystone-spec.md section 8.1).

Unlock the beacon (challenge, token), choose the slot, write the EID slot with the resolver's
service public key and rotation exponent (34 bytes: a long write at the default ATT MTU), read
back the slot (exponent, clock, current EID) and the beacon's public key, and produce the
registration record the resolver verifies (``beacon-gateway keys register --record``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import eid
from eid import frames
from firmware_sim.config_service import Characteristic, LockState

if TYPE_CHECKING:
    from firmware_sim.config_service import ConfigurationService

ATT_LONG_WRITE_PART: Final = 18
"""Bytes a Prepare Write carries at the default ATT MTU of 23 (MTU - 5)."""
_EID_SLOT_READ: Final = struct.Struct(">BBI8s")


class ProvisioningError(Exception):
    """The beacon did not answer as the configuration flow expects."""


@dataclass(frozen=True, slots=True, repr=False)
class RegistrationRecord:
    """What provisioning reads back, for the resolver to register the beacon."""

    beacon_id: str
    beacon_public_key: bytes
    rotation_exponent: int
    initial_clock: int
    initial_eid: bytes
    registered_at: float
    service_public_key: bytes

    def to_json(self) -> dict[str, Any]:
        """The record as ``beacon-gateway keys register --record`` reads it."""
        return {
            "beacon_id": self.beacon_id,
            "beacon_public_key": self.beacon_public_key.hex(),
            "rotation_exponent": self.rotation_exponent,
            "initial_clock": self.initial_clock,
            "initial_eid": self.initial_eid.hex(),
            "registered_at": self.registered_at,
            "service_public_key": self.service_public_key.hex(),
        }

    def __repr__(self) -> str:
        return (
            f"RegistrationRecord(beacon_id={self.beacon_id!r}, "
            f"rotation_exponent={self.rotation_exponent}, initial_clock={self.initial_clock})"
        )


def unlock(service: ConfigurationService, lock_code: bytes, now: float) -> None:
    """Unlock the connected beacon with its lock code (one challenge, one token)."""
    if service.read(Characteristic.LOCK_STATE, now)[0] != LockState.LOCKED:
        return
    challenge = service.read(Characteristic.UNLOCK, now)
    service.write(Characteristic.UNLOCK, eid.unlock_token(lock_code, challenge), now)


def provision_eid(
    service: ConfigurationService,
    *,
    beacon_id: str,
    lock_code: bytes,
    service_public_key: bytes,
    exponent: int,
    now: float,
    slot: int = 0,
    long_write: bool = True,
) -> RegistrationRecord:
    """Configure ``slot`` of the beacon as an EID slot and return its registration record."""
    service.connect()
    try:
        unlock(service, lock_code, now)
        service.write(Characteristic.ACTIVE_SLOT, bytes((slot,)), now)
        value = bytes((frames.FrameType.EID,)) + bytes(service_public_key) + bytes((exponent,))
        if long_write:
            for offset in range(0, len(value), ATT_LONG_WRITE_PART):
                part = value[offset : offset + ATT_LONG_WRITE_PART]
                service.prepare_write(Characteristic.ADV_SLOT_DATA, offset, part)
            service.execute_write(now)
        else:
            service.write(Characteristic.ADV_SLOT_DATA, value, now)
        data = service.read(Characteristic.ADV_SLOT_DATA, now)
        if len(data) != _EID_SLOT_READ.size or data[0] != frames.FrameType.EID:
            msg = f"the slot reads back {len(data)} bytes, not an EID slot's 14"
            raise ProvisioningError(msg)
        _, read_exponent, clock, current = _EID_SLOT_READ.unpack(data)
        public_key = service.read(Characteristic.PUBLIC_ECDH_KEY, now)
    finally:
        service.disconnect()
    return RegistrationRecord(
        beacon_id=beacon_id,
        beacon_public_key=public_key,
        rotation_exponent=read_exponent,
        initial_clock=clock,
        initial_eid=current,
        registered_at=float(now),
        service_public_key=bytes(service_public_key),
    )
