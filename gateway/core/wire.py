"""The fleet wire format: batches of sightings and of observations, as MQTT payloads.

In central resolution a keyless gateway publishes what it hears, unresolved (a *sightings*
batch); resolver workers publish what they resolved (an *observations* batch), which the
arbiter turns into presence. An edge gateway in a fleet publishes observations itself. One
binary layout serves both; docs/fleet.md has the byte table. Big-endian throughout::

    magic "BGW" | version 1 | kind (1 sightings, 2 observations)
    gateway: u8 length + UTF-8 (1..64 bytes) | boot u32 | seq u32 | base_ms u64 | count u16
    count records

A sightings record: ``dt_ms u32 | rssi i8 | adverts u8 | frame: u8 length + bytes |
paired: u8 length + bytes``. ``frame`` is the Eddystone service data as heard, ``rssi`` the
gateway's filtered RSSI of that address, ``adverts`` how many adverts the report stands for,
``paired`` (telemetry only) the ID frame last heard from the same address, so that a worker with
no memory of that address can attribute it.

An observations record: ``kind u8`` (0 an ID frame, 1 telemetry) ``| dt_ms u32 | rssi i8 |
adverts u8 | tx_power i8 | beacon id: u8 length + UTF-8``, and for telemetry ``battery_mv u16 |
temperature i16 (1/256 degC; -32768 none) | adv_count u32 | uptime_ds u32 | encrypted u8``.

``(gateway, boot, seq)`` names a batch: a redelivered batch is recognised by it. ``boot`` is
drawn at random when a reporter starts, so a gateway that restarts never reuses a name.
:func:`decode` is total: any bytes give a :class:`Batch` or a :class:`WireError` with a reason.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass, field
from typing import Final

MAGIC: Final = b"BGW"
VERSION: Final = 1
MAX_RECORDS: Final = 0xFFFF
MAX_GATEWAY_BYTES: Final = 64
MAX_FRAME_BYTES: Final = 31
"""A legacy advertisement is 31 bytes: no Eddystone frame can be longer."""
MAX_BEACON_ID_BYTES: Final = 255
NO_TEMPERATURE: Final = -0x8000
MAX_DT_MS: Final = 0xFFFF_FFFF
"""A batch spans at most 49 days from its base time (in practice, about a second)."""
MAX_AT_MS: Final = 253_402_300_799_999
"""A record's time is at most the last millisecond of year 9999 (an event can date it, and
eid.Resolver takes it: within 2**48 s)."""

_HEADER: Final = struct.Struct(">IIQH")  # boot, seq, base_ms, count (after the gateway)
_SIGHTING: Final = struct.Struct(">IbB")  # dt_ms, rssi, adverts
_OBSERVATION: Final = struct.Struct(">BIbBb")  # kind, dt_ms, rssi, adverts, tx_power
_TELEMETRY: Final = struct.Struct(">HhIIB")  # battery, temperature, adv_count, uptime, encrypted
_U8: Final = struct.Struct(">B")


class BatchKind(enum.IntEnum):
    """What a batch carries."""

    SIGHTINGS = 1
    OBSERVATIONS = 2


class WireErrorReason(enum.StrEnum):
    """Why bytes are not a batch; stable values, fit for metric labels."""

    TRUNCATED = "truncated"
    BAD_MAGIC = "bad-magic"
    BAD_VERSION = "bad-version"
    BAD_KIND = "bad-kind"
    BAD_TEXT = "bad-text"
    BAD_VALUE = "bad-value"
    TRAILING = "trailing"


class WireError(ValueError):
    """Bytes that are not a batch; ``reason`` says why. The message never repeats the bytes."""

    def __init__(self, reason: WireErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True, repr=False)
class HeardRecord:
    """One report of an unresolved advertisement (see the module docstring)."""

    at_ms: int
    rssi: int
    adverts: int
    frame: bytes
    paired: bytes = b""

    def __repr__(self) -> str:  # the frame may hold a raw EID
        return f"HeardRecord(at_ms={self.at_ms}, rssi={self.rssi}, frame=<{len(self.frame)} bytes>)"


@dataclass(frozen=True, slots=True)
class TelemetryValues:
    """A beacon's decoded telemetry, as it travels in an observation."""

    battery_mv: int
    temperature_c: float | None
    adv_count: int
    uptime_ds: int
    encrypted: bool


@dataclass(frozen=True, slots=True)
class ObservedRecord:
    """One report of a resolved beacon; ``telemetry`` is set for a telemetry report."""

    at_ms: int
    rssi: int
    adverts: int
    tx_power: int
    beacon_id: str
    telemetry: TelemetryValues | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of one gateway's reports; ``key`` names it (for deduplication)."""

    kind: BatchKind
    gateway: str
    boot: int
    seq: int
    records: tuple[HeardRecord, ...] | tuple[ObservedRecord, ...] = field(default=())

    @property
    def key(self) -> tuple[str, int, int]:
        """``(gateway, boot, seq)``: the same for every delivery of this batch."""
        return self.gateway, self.boot, self.seq

    def __repr__(self) -> str:
        return (
            f"Batch(kind={self.kind.name}, gateway={self.gateway!r}, boot={self.boot}, "
            f"seq={self.seq}, records={len(self.records)})"
        )


# --------------------------------------------------------------------------------- encoding


def encode(batch: Batch) -> bytes:
    """The batch's bytes; ValueError (naming the field) for a value the format cannot carry."""
    records = batch.records
    if len(records) > MAX_RECORDS:
        msg = f"a batch holds at most {MAX_RECORDS} records, got {len(records)}"
        raise ValueError(msg)
    for record in records:
        _check_int("at_ms", record.at_ms, 0, MAX_AT_MS)
    base = min((record.at_ms for record in records), default=0)
    gateway = _text("gateway", batch.gateway, MAX_GATEWAY_BYTES)
    _check_int("boot", batch.boot, 0, 0xFFFF_FFFF)
    _check_int("seq", batch.seq, 0, 0xFFFF_FFFF)
    parts = [MAGIC, bytes((VERSION, batch.kind)), _U8.pack(len(gateway)), gateway]
    parts.append(_pack(_HEADER, "batch header", batch.boot, batch.seq, base, len(records)))
    for record in records:
        dt = record.at_ms - base
        if dt > MAX_DT_MS:
            msg = f"a batch spans at most {MAX_DT_MS} ms, got {dt}"
            raise ValueError(msg)
        if batch.kind is BatchKind.SIGHTINGS:
            if not isinstance(record, HeardRecord):
                raise TypeError(_mixed(batch.kind, record))
            _check_int("rssi", record.rssi, -128, 127)
            _check_int("adverts", record.adverts, 0, 0xFF)
            parts.append(_pack(_SIGHTING, "sighting", dt, record.rssi, record.adverts))
            parts.append(_blob("frame", record.frame, MAX_FRAME_BYTES, minimum=1))
            parts.append(_blob("paired", record.paired, MAX_FRAME_BYTES))
        else:
            if not isinstance(record, ObservedRecord):
                raise TypeError(_mixed(batch.kind, record))
            parts.append(_observation(record, dt))
    return b"".join(parts)


def _observation(record: ObservedRecord, dt: int) -> bytes:
    kind = 0 if record.telemetry is None else 1
    _check_int("rssi", record.rssi, -128, 127)
    _check_int("adverts", record.adverts, 0, 0xFF)
    _check_int("tx_power", record.tx_power, -128, 127)
    head = _pack(
        _OBSERVATION, "observation", kind, dt, record.rssi, record.adverts, record.tx_power
    )
    beacon = _text("beacon_id", record.beacon_id, MAX_BEACON_ID_BYTES)
    out = head + _U8.pack(len(beacon)) + beacon
    values = record.telemetry
    if values is not None:
        temperature = _temperature(values.temperature_c)
        _check_int("battery_mv", values.battery_mv, 0, 0xFFFF)
        _check_int("adv_count", values.adv_count, 0, 0xFFFF_FFFF)
        _check_int("uptime_ds", values.uptime_ds, 0, 0xFFFF_FFFF)
        out += _pack(
            _TELEMETRY, "telemetry", values.battery_mv, temperature, values.adv_count,
            values.uptime_ds, int(values.encrypted),
        )  # fmt: skip
    return out


def _temperature(value: float | None) -> int:
    if value is None:
        return NO_TEMPERATURE
    raw = round(value * 256) if math.isfinite(value) else NO_TEMPERATURE
    if not NO_TEMPERATURE < raw <= -NO_TEMPERATURE - 1:
        msg = f"temperature_c must be None or lie in (-128, 128) degC, got {value!r}"
        raise ValueError(msg)
    return raw


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        msg = f"{name} must be an integer {low}..{high}, got {value!r}"
        raise ValueError(msg)


def _mixed(kind: BatchKind, record: object) -> str:
    return f"a {kind.name.lower()} batch cannot hold a {type(record).__name__}"


def _pack(layout: struct.Struct, what: str, *values: int) -> bytes:
    try:
        return layout.pack(*values)
    except struct.error as exc:
        msg = f"{what} value out of range: {values} ({exc})"
        raise ValueError(msg) from None


def _text(name: str, text: str, limit: int) -> bytes:
    data = text.encode("utf-8")
    if not 1 <= len(data) <= limit:
        msg = f"{name} must be 1 to {limit} bytes of UTF-8, got {len(data)}"
        raise ValueError(msg)
    return data


def _blob(name: str, data: bytes, limit: int, *, minimum: int = 0) -> bytes:
    if not minimum <= len(data) <= limit:
        msg = f"{name} must be {minimum} to {limit} bytes, got {len(data)}"
        raise ValueError(msg)
    return _U8.pack(len(data)) + data


# --------------------------------------------------------------------------------- decoding


class _Reader:
    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int, what: str) -> bytes:
        end = self._at + size
        if end > len(self._data):
            msg = f"batch ends inside its {what} (byte {self._at} of {len(self._data)})"
            raise WireError(WireErrorReason.TRUNCATED, msg)
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size, what))

    def sized(self, what: str) -> bytes:
        (size,) = self.unpack(_U8, what)
        return self.take(size, what)

    def text(self, what: str, limit: int) -> str:
        data = self.sized(what)
        if not 1 <= len(data) <= limit:
            msg = f"{what} must be 1 to {limit} bytes, got {len(data)}"
            raise WireError(WireErrorReason.BAD_VALUE, msg)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            msg = f"{what} is not UTF-8"
            raise WireError(WireErrorReason.BAD_TEXT, msg) from None

    def done(self) -> None:
        if self._at != len(self._data):
            extra = len(self._data) - self._at
            msg = f"{extra} bytes after the last record"
            raise WireError(WireErrorReason.TRAILING, msg)


def decode(data: bytes) -> Batch:
    """The batch in ``data``; :class:`WireError` (with a reason) for anything else."""
    reader = _Reader(bytes(data))
    if reader.take(len(MAGIC), "magic") != MAGIC:
        raise WireError(WireErrorReason.BAD_MAGIC, "not a beacon-gateway batch (magic)")
    version, kind_value = reader.unpack(struct.Struct(">BB"), "version")
    if version != VERSION:
        msg = f"batch version {version} is not supported (this reader knows {VERSION})"
        raise WireError(WireErrorReason.BAD_VERSION, msg)
    try:
        kind = BatchKind(kind_value)
    except ValueError:
        msg = f"unknown batch kind {kind_value}"
        raise WireError(WireErrorReason.BAD_KIND, msg) from None
    gateway = reader.text("gateway", MAX_GATEWAY_BYTES)
    boot, seq, base, count = reader.unpack(_HEADER, "header")
    if kind is BatchKind.SIGHTINGS:
        records: tuple[HeardRecord, ...] | tuple[ObservedRecord, ...] = tuple(
            _heard(reader, base) for _ in range(count)
        )
    else:
        records = tuple(_observed(reader, base) for _ in range(count))
    reader.done()
    return Batch(kind, gateway, boot, seq, records)


def _at(base: int, dt: int) -> int:
    at = base + dt
    if at > MAX_AT_MS:
        msg = f"a record's time must be at most {MAX_AT_MS} ms (year 9999), got {at}"
        raise WireError(WireErrorReason.BAD_VALUE, msg)
    return at


def _heard(reader: _Reader, base: int) -> HeardRecord:
    dt, rssi, adverts = reader.unpack(_SIGHTING, "sighting")
    at = _at(base, dt)
    frame = reader.sized("frame")
    if not 1 <= len(frame) <= MAX_FRAME_BYTES:
        msg = f"frame must be 1 to {MAX_FRAME_BYTES} bytes, got {len(frame)}"
        raise WireError(WireErrorReason.BAD_VALUE, msg)
    paired = reader.sized("paired frame")
    if len(paired) > MAX_FRAME_BYTES:
        msg = f"paired frame must be at most {MAX_FRAME_BYTES} bytes, got {len(paired)}"
        raise WireError(WireErrorReason.BAD_VALUE, msg)
    return HeardRecord(at, rssi, adverts, frame, paired)


def _observed(reader: _Reader, base: int) -> ObservedRecord:
    kind, dt, rssi, adverts, tx_power = reader.unpack(_OBSERVATION, "observation")
    at = _at(base, dt)
    if kind not in {0, 1}:
        msg = f"unknown observation kind {kind}"
        raise WireError(WireErrorReason.BAD_KIND, msg)
    beacon_id = reader.text("beacon id", MAX_BEACON_ID_BYTES)
    telemetry = None
    if kind == 1:
        battery, temperature, adv_count, uptime, encrypted = reader.unpack(_TELEMETRY, "telemetry")
        if encrypted not in {0, 1}:
            msg = f"telemetry's encrypted flag must be 0 or 1, got {encrypted}"
            raise WireError(WireErrorReason.BAD_VALUE, msg)
        telemetry = TelemetryValues(
            battery_mv=battery,
            temperature_c=None if temperature == NO_TEMPERATURE else temperature / 256,
            adv_count=adv_count,
            uptime_ds=uptime,
            encrypted=bool(encrypted),
        )
    return ObservedRecord(at, rssi, adverts, tx_power, beacon_id, telemetry)
