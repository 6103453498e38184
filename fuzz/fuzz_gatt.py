"""Fuzz the simulated beacon's GATT configuration service (firmware_sim/config_service.py).

Input: a sequence of operations on one beacon. Each starts with a byte whose high nibble is the
operation and low nibble the characteristic (in :class:`Characteristic` order, modulo 12)::

    0 connect        1 disconnect      2 read
    3 write          L V...            L: value length (low 6 bits; bit 7: offset 1), V: value
    4 prepare write  O L V...          a part of a long write at offset O
    5 execute write  C                 C bit 0: commit (else cancel)
    6 unlock         (with the right token, as an app that knows the lock code)
    7 new lock code  N(16)             written sealed with the current lock code
    8 wait           T(3)              T seconds pass (uint24)

Writes cover every characteristic, lock and unlock, the 18-byte (sealed identity key) and 34-byte
(X25519 key exchange) EID slot writes. Allowed: :class:`GattError` (an ATT error code).
Properties: error messages never show the lock code or an identity key; whatever the service
accepted, the beacon then advertises valid Eddystone frames; a configuration app can still
provision the beacon (or is refused with an ATT error).

    .venv/bin/python fuzz/fuzz_gatt.py -runs=100000 fuzz/corpus/gatt
"""

from __future__ import annotations

import contextlib
import random
from typing import Final

from contract import ContractError, instrumented, main, no_secret_in, total

with instrumented():
    import eid
    from eid import frames
    from eid.lock import seal_with_lock_code
    from firmware_sim.beacon import SimulatedBeacon
    from firmware_sim.config_service import (
        Characteristic,
        ConfigurationService,
        Firmware,
        GattError,
    )
    from firmware_sim.provisioning import ProvisioningError, provision_eid

LOCK_CODE: Final = bytes(range(16))
SERVICE_PUBLIC: Final = bytes.fromhex(
    "29769a045dcb811ba3025985b9de91eb9a57dadbceb68a1e6a3c2b1af4868e1f"
)
START: Final = 1_767_225_600.0
CHARACTERISTICS: Final = list(Characteristic)
MAX_OPERATIONS: Final = 48


class Reader:
    """The input, read front to back; past its end it reads zero bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def more(self) -> bool:
        """Whether unread bytes are left."""
        return self._at < len(self._data)

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end of the input)."""
        part = self._data[self._at : self._at + size]
        self._at += size
        return part

    def byte(self) -> int:
        """The next byte (0 past the end)."""
        part = self.take(1)
        return part[0] if part else 0


class Session:
    """One beacon, one connection, and the secrets a harness may not see in an error."""

    def __init__(self) -> None:
        self.firmware = Firmware(lock_code=LOCK_CODE, factory_instance=b"\x00\x00\x00\x00\x00\x01")
        self.service = ConfigurationService(self.firmware, random.Random(1))
        self.now = START

    def secrets(self) -> list[bytes]:
        """The lock code and every identity key the beacon holds."""
        keys = [slot.eid.identity_key for slot in self.firmware.slots if slot.eid is not None]
        return [self.firmware.lock_code, *keys]

    def unlock(self) -> None:
        """What a configuration app that knows the lock code does."""
        service = self.service
        challenge = service.read(Characteristic.UNLOCK, self.now)
        service.write(
            Characteristic.UNLOCK, eid.unlock_token(self.firmware.lock_code, challenge), self.now
        )

    def operate(self, reader: Reader) -> None:
        """One operation, chosen and parametrised by the input."""
        service, now = self.service, self.now
        head = reader.byte()
        operation, characteristic = head >> 4, CHARACTERISTICS[(head & 0x0F) % 12]
        if operation == 0:
            service.connect()
        elif operation == 1:
            service.disconnect()
        elif operation == 2:  # noqa: PLR2004 - operation codes
            service.read(characteristic, now)
        elif operation == 3:  # noqa: PLR2004
            size = reader.byte()
            service.write(characteristic, reader.take(size & 0x3F), now, size >> 7)
        elif operation == 4:  # noqa: PLR2004
            offset, size = reader.byte(), reader.byte()
            service.prepare_write(characteristic, offset, reader.take(size & 0x3F))
        elif operation == 5:  # noqa: PLR2004
            service.execute_write(now, commit=bool(reader.byte() & 1))
        elif operation == 6:  # noqa: PLR2004
            self.unlock()
        elif operation == 7:  # noqa: PLR2004
            new_code = reader.take(16).ljust(16, b"\x00")
            sealed = seal_with_lock_code(self.firmware.lock_code, new_code)
            service.write(Characteristic.LOCK_STATE, b"\x00" + sealed, now)
        elif operation == 8:  # noqa: PLR2004
            self.now += int.from_bytes(reader.take(3), "big")


def _advertises_frames(session: Session) -> None:
    beacon = SimulatedBeacon(session.firmware, rng=random.Random(2), powered_at=session.now)
    for advert in beacon.adverts(session.now + 10):
        try:
            frames.parse(advert.service_data)
        except eid.FrameError as exc:
            msg = f"the beacon advertises an invalid frame: {exc}"
            raise ContractError(msg) from None


def _provisionable(session: Session) -> None:
    with contextlib.suppress(GattError, ProvisioningError):
        provision_eid(
            session.service,
            beacon_id="fuzz-1",
            lock_code=session.firmware.lock_code,
            service_public_key=SERVICE_PUBLIC,
            exponent=10,
            now=session.now,
        )


def check(data: bytes) -> None:
    """A sequence of operations, then the beacon's frames and a provisioning attempt."""
    reader = Reader(data)
    session = Session()
    for _ in range(MAX_OPERATIONS):
        if not reader.more():
            break
        try:
            session.operate(reader)
        except GattError as exc:
            no_secret_in(str(exc), *session.secrets())
    _advertises_frames(session)
    _provisionable(session)


if __name__ == "__main__":
    main(total(check, (GattError,)), max_len=512)
