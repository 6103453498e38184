"""A simulated beacon's advertising: its firmware's slots turned into advertisements over time.

As the reference firmwares do (eddystone-spec.md sections 4-6, 12):

- one advertising event every interval plus a random delay (BLE's advDelay, 0-10 ms), each
  carrying the next configured slot's frame in slot order (frames interleave);
- TLM counts every PDU sent and the uptime in tenths of a second since boot; the battery drains;
  TLM goes out encrypted (eTLM, with the first EID slot's identity key) when any slot is EID;
- an EID clock per EID slot, running fast or slow by ``drift_ppm``, saved every
  ``clock_save_interval`` and restored from the last save after a power loss;
- the EID switches a fixed random delay after each period boundary (mbed schedules the next
  switch one period after the last, from a random start), and the random device address rotates
  with each new EID, so addresses never link two EIDs;
- firmware quirks on request: mbed's 18-byte EID frame, early Nordic's 19-byte eTLM.

Everything random comes from the ``random.Random`` given: a beacon repeats exactly under a seed.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import eid
from eid import frames
from eid.telemetry import EtlmCipher

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

    from firmware_sim.config_service import Firmware, Slot

ADV_DELAY_MAX: Final = 0.010
"""BLE adds a random 0-10 ms to every advertising interval (Core spec, Vol 6 Part B 4.4.2.2)."""
DEFAULT_CLOCK_SAVE_INTERVAL: Final = 86_400.0
"""The spec advises saving the EID clock to non-volatile memory about daily."""
DEFAULT_BATTERY_MV: Final = 3000
DEFAULT_DRAIN_MV_PER_DAY: Final = 1.5
"""A coin cell losing ~0.5 V over a year of 1 Hz advertising."""
ROOM_TEMPERATURE_C: Final = 22.0
_TELEMETRY: Final = struct.Struct(">HhII")  # battery mV, temperature 8.8, PDU count, uptime
_NONCE_TIME: Final = struct.Struct(">I")  # eTLM nonce: the K-masked counter, then the salt
_ETLM_HEADER: Final = b"\x20\x01"


@dataclass(frozen=True, slots=True)
class Quirks:
    """Firmware variants real beacons have (spec section 12)."""

    eid_frame_18_bytes: bool = False  # mbed reference firmware: EID_FRAME_LEN 18
    etlm_19_bytes: bool = False  # early Nordic firmware: a trailing RFU byte


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertisement as sent: when, from which device address, with which service data."""

    at: float
    address: str
    service_data: bytes = field(repr=False)  # may hold a raw EID


@dataclass(frozen=True, slots=True)
class _Outage:
    start: float
    end: float


class SimulatedBeacon:
    """A beacon powered on at ``powered_at``, advertising its firmware's slots."""

    def __init__(
        self,
        firmware: Firmware,
        *,
        rng: random.Random,
        powered_at: float,
        drift_ppm: float = 0.0,
        clock_save_interval: float = DEFAULT_CLOCK_SAVE_INTERVAL,
        battery_mv: int = DEFAULT_BATTERY_MV,
        drain_mv_per_day: float = DEFAULT_DRAIN_MV_PER_DAY,
        quirks: Quirks | None = None,
    ) -> None:
        self.firmware = firmware
        self._rng = rng
        self._quirks = quirks or Quirks()
        self._rate = 1.0 + drift_ppm * 1e-6
        self._save_interval = clock_save_interval
        self._battery_mv = battery_mv
        self._drain = drain_mv_per_day
        self._powered_at = powered_at
        self._boot = powered_at
        self._pdus = 0
        self._cursor = 0
        self._next = powered_at + rng.uniform(0, firmware.interval_ms / 1000)
        self._outages: list[_Outage] = []
        # Per EID slot: its clock runs at the drift rate, and it switches EIDs this many beacon
        # seconds after each period boundary.
        self._switch_delay: dict[int, int] = {}
        for index, slot in enumerate(firmware.slots):
            if slot.eid is not None:
                slot.eid = replace(slot.eid, rate=self._rate)
                self._switch_delay[index] = rng.randrange(1 << slot.eid.exponent)
        self._address = self._new_address()
        self._shown_period: int | None = None
        self._etlm_ciphers: dict[bytes, EtlmCipher] = {}  # by identity key
        firmware.telemetry = self.telemetry  # the configuration service reads the live counters

    def __repr__(self) -> str:
        return f"SimulatedBeacon(address={self._address!r}, pdus={self._pdus})"

    @property
    def pdus(self) -> int:
        """Advertising PDUs sent since the last boot."""
        return self._pdus

    @property
    def address(self) -> str:
        """The device address it advertises from now."""
        return self._address

    def _new_address(self) -> str:
        # A random static address: the two top bits set (Core spec, Vol 6 Part B 1.3.2.1).
        octets = [self._rng.randrange(256) for _ in range(6)]
        octets[0] |= 0xC0
        return ":".join(f"{octet:02X}" for octet in octets)

    def power_loss(self, at: float, duration: float) -> None:
        """Lose power from ``at`` for ``duration`` seconds (adverts generated later honour it)."""
        self._outages.append(_Outage(at, at + duration))
        self._outages.sort(key=lambda outage: outage.start)

    def adverts(self, until: float) -> Iterator[Advert]:
        """The advertisements sent from where the last call stopped up to ``until``."""
        while self._next < until:
            at = self._next
            outage = self._outage_at(at)
            if outage is not None:
                self._restore(outage)
                continue
            advert = self._advert(at)
            interval = self.firmware.interval_ms / 1000
            self._next = at + interval + self._rng.uniform(0, ADV_DELAY_MAX)
            if advert is not None:
                yield advert

    def _outage_at(self, at: float) -> _Outage | None:
        for outage in self._outages:
            if outage.start <= at < outage.end:
                return outage
        return None

    def _restore(self, outage: _Outage) -> None:
        """Power returns: counters reset, EID clocks restart from their last save."""
        self._outages.remove(outage)
        for slot in self.firmware.slots:
            state = slot.eid
            if state is None:
                continue
            saves = math.floor((outage.start - state.clock_epoch) / self._save_interval)
            saved_at = state.clock_epoch + max(saves, 0) * self._save_interval
            slot.eid = state.restarted(state.counter_at(saved_at), outage.end)
        self._boot = outage.end
        self._pdus = 0
        self._cursor = 0
        self._next = outage.end + self._rng.uniform(0, self.firmware.interval_ms / 1000)

    def _advert(self, at: float) -> Advert | None:
        slots = self.firmware.slots
        for step in range(len(slots)):
            index = (self._cursor + step) % len(slots)
            slot = slots[index]
            if slot.kind is None:
                continue
            self._cursor = index + 1
            data = self._frame(index, slot, at)
            self._pdus += 1
            return Advert(at, self._address, data)
        return None

    def _frame(self, index: int, slot: Slot, at: float) -> bytes:
        power = self.firmware.advertised_power(slot) & 0xFF
        if slot.kind == "uid":
            return bytes((frames.FrameType.UID, power)) + slot.data + b"\x00\x00"
        if slot.kind == "url":
            return bytes((frames.FrameType.URL, power)) + slot.data
        if slot.kind == "eid" and slot.eid is not None:
            return self._eid_frame(index, slot, power, at)
        return self._tlm_frame(at)

    def _eid_frame(self, index: int, slot: Slot, power: int, at: float) -> bytes:
        state = slot.eid
        assert state is not None  # noqa: S101 - checked by the caller
        shown = (state.counter_at(at) - self._switch_delay[index]) % (1 << 32)
        period = shown >> state.exponent
        if self._shown_period is not None and period != self._shown_period:
            self._address = self._new_address()  # a new EID: a new address (spec 5)
        self._shown_period = period
        current = eid.compute_eid(state.identity_key, state.exponent, period << state.exponent)
        frame = bytes((frames.FrameType.EID, power)) + current
        return frame + bytes(8) if self._quirks.eid_frame_18_bytes else frame

    def telemetry(self, at: float) -> bytes:
        """The 12 TLM data bytes at ``at``: battery, temperature, PDUs sent, uptime."""
        days = (at - self._powered_at) / 86_400
        battery = round(self._battery_mv - self._drain * days)
        temperature = ROOM_TEMPERATURE_C + self._rng.uniform(-0.5, 0.5)
        return _TELEMETRY.pack(
            battery if battery > 0 else 0,  # noqa: FURB136 - hot path
            round(temperature * 256),  # signed 8.8 fixed point
            self._pdus % (1 << 32),
            math.floor((at - self._boot) * 10) % (1 << 32),
        )

    def _tlm_frame(self, at: float) -> bytes:
        telemetry = self.telemetry(at)
        first_eid = next((slot.eid for slot in self.firmware.slots if slot.eid is not None), None)
        if first_eid is None:
            return b"\x20\x00" + telemetry
        cipher = self._etlm_ciphers.get(first_eid.identity_key)
        if cipher is None:
            cipher = self._etlm_ciphers[first_eid.identity_key] = EtlmCipher(first_eid.identity_key)
        salt = self._rng.randbytes(2)
        period_start = (first_eid.counter_at(at) >> first_eid.exponent) << first_eid.exponent
        ciphertext, mic = cipher.encrypt(_NONCE_TIME.pack(period_start) + salt, telemetry)
        frame = _ETLM_HEADER + ciphertext + salt + mic
        return frame + b"\x00" if self._quirks.etlm_19_bytes else frame
