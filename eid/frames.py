"""Eddystone frames: parse and encode the service data that follows the 0xFEAA UUID.

:func:`parse` is total: any input gives a frame or a :class:`FrameError` whose message says what
is wrong and whose ``reason`` classifies it. It accepts what real beacons send: UID frames with or
without the 2 reserved tail bytes (20 or 18), EID frames of 10 bytes or mbed's 18, eTLM of 18
bytes or early Nordic firmware's 19, TLM of 14 bytes or padded to 20. Reserved tail bytes are
ignored. :func:`encode` writes the canonical form, so ``parse(encode(f)) == f`` for every frame.

The frame classes validate their fields on construction, so an invalid frame cannot exist; the
EID frame's repr hides the EID (a raw EID is privacy-sensitive).
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from eid.errors import FrameError, FrameErrorReason
from eid.url import decode_url, encode_url

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EidFrame",
    "EtlmFrame",
    "Frame",
    "FrameError",
    "FrameErrorReason",
    "FrameType",
    "TlmFrame",
    "UidFrame",
    "UrlFrame",
    "encode",
    "parse",
]


class FrameType(enum.IntEnum):
    """The frame type byte (high nibble; the low nibble is reserved and zero)."""

    UID = 0x00
    URL = 0x10
    TLM = 0x20
    EID = 0x30


TLM_PLAIN: Final = 0x00
TLM_ENCRYPTED: Final = 0x01

NAMESPACE_SIZE: Final = 10
INSTANCE_SIZE: Final = 6
EID_SIZE: Final = 8
TELEMETRY_SIZE: Final = 12
CIPHERTEXT_SIZE: Final = 12
SALT_SIZE: Final = 2
MIC_SIZE: Final = 2

UID_LENGTHS: Final = (20, 18)
"""20 per spec; 18 from beacons that drop the reserved tail (google/eddystone#39)."""
URL_MIN_LENGTH: Final = 4
URL_MAX_LENGTH: Final = 20
TLM_LENGTHS: Final = (14, 20)
"""14 per spec; 20 from beacons that pad to the longest frame (the validator reads 14..19)."""
ETLM_LENGTHS: Final = (18, 19)
"""18 per spec; 19 from early Nordic firmware with a trailing RFU byte."""
EID_LENGTHS: Final = (10, 18)
"""10 per spec; 18 from the mbed reference firmware (EID_FRAME_LEN, google/eddystone PR #211)."""

_UINT16_MAX: Final = 0xFFFF
_UINT32_MAX: Final = 0xFFFF_FFFF
_TEMPERATURE_UNSUPPORTED: Final = -0x8000
"""TEMP 0x8000 (-128.0 degC) means the beacon has no sensor; it decodes to ``None``."""
_TEMPERATURE_SCALE: Final = 256
_TLM_DATA: Final = struct.Struct(">HhII")


def _check_tx_power(tx_power: object) -> None:
    if type(tx_power) is not int or not -128 <= tx_power <= 127:  # noqa: PLR2004 - int8 bounds
        msg = f"tx_power must be an integer -128..127 dBm, got {tx_power!r}"
        raise FrameError(FrameErrorReason.BAD_FIELD, msg)


def _check_bytes(name: str, value: object, size: int) -> None:
    if type(value) is not bytes or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        msg = f"{name} must be {size} bytes, got {got}"
        raise FrameError(FrameErrorReason.BAD_FIELD, msg)


def _check_uint(name: str, value: object, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        msg = f"{name} must be an integer 0..{maximum}, got {value!r}"
        raise FrameError(FrameErrorReason.BAD_FIELD, msg)


@dataclass(frozen=True, slots=True)
class UidFrame:
    """Eddystone-UID: a 10-byte namespace and a 6-byte instance; Tx power is dBm at 0 m."""

    tx_power: int
    namespace: bytes
    instance: bytes

    def __post_init__(self) -> None:
        _check_tx_power(self.tx_power)
        _check_bytes("namespace", self.namespace, NAMESPACE_SIZE)
        _check_bytes("instance", self.instance, INSTANCE_SIZE)


@dataclass(frozen=True, slots=True)
class UrlFrame:
    """Eddystone-URL: a URL that compresses into at most 17 bytes after the scheme."""

    tx_power: int
    url: str

    def __post_init__(self) -> None:
        _check_tx_power(self.tx_power)
        encode_url(self.url)


@dataclass(frozen=True, slots=True)
class TlmFrame:
    """Plain telemetry (TLM version 0).

    ``battery_mv`` is 0 when the beacon has no battery reading; ``temperature_c`` is ``None`` when
    it has no sensor, else degrees Celsius in steps of 1/256 (it is rounded to the nearest step on
    construction, so the value is exactly what the frame carries); ``adv_count`` counts PDUs and
    ``uptime_ds`` tenths of a second since boot.
    """

    battery_mv: int
    temperature_c: float | None
    adv_count: int
    uptime_ds: int

    def __post_init__(self) -> None:
        _check_uint("battery_mv", self.battery_mv, _UINT16_MAX)
        _check_uint("adv_count", self.adv_count, _UINT32_MAX)
        _check_uint("uptime_ds", self.uptime_ds, _UINT32_MAX)
        if self.temperature_c is not None:
            object.__setattr__(self, "temperature_c", _quantize_temperature(self.temperature_c))

    @property
    def telemetry(self) -> bytes:
        """The 12 data bytes (battery, temperature, PDU count, uptime) that eTLM encrypts."""
        return _TLM_DATA.pack(
            self.battery_mv, _temperature_raw(self.temperature_c), self.adv_count, self.uptime_ds
        )

    @classmethod
    def from_telemetry(cls, telemetry: bytes) -> TlmFrame:
        """The frame whose data bytes are ``telemetry`` (for example a decrypted eTLM)."""
        data = as_bytes(telemetry, "TLM data")
        if len(data) != TELEMETRY_SIZE:
            msg = f"TLM data must be {TELEMETRY_SIZE} bytes, got {len(data)}"
            raise FrameError(FrameErrorReason.BAD_LENGTH, msg)
        return _tlm_from_data(data, 0)


def _quantize_temperature(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"temperature_c must be a finite number or None, got {value!r}"
        raise FrameError(FrameErrorReason.BAD_FIELD, msg)
    raw = round(value * _TEMPERATURE_SCALE)
    if not _TEMPERATURE_UNSUPPORTED < raw <= -_TEMPERATURE_UNSUPPORTED - 1:
        msg = (
            f"temperature_c must lie in (-128, 128) degC, got {value!r} "
            "(-128.0 is the wire's 'no sensor' marker: use None)"
        )
        raise FrameError(FrameErrorReason.BAD_FIELD, msg)
    return raw / _TEMPERATURE_SCALE


def _temperature_raw(value: float | None) -> int:
    return _TEMPERATURE_UNSUPPORTED if value is None else round(value * _TEMPERATURE_SCALE)


@dataclass(frozen=True, slots=True)
class EtlmFrame:
    """Encrypted telemetry (TLM version 1): ciphertext, salt and MIC; see eid.decrypt_etlm."""

    ciphertext: bytes
    salt: bytes
    mic: bytes

    def __post_init__(self) -> None:
        _check_bytes("ciphertext", self.ciphertext, CIPHERTEXT_SIZE)
        _check_bytes("salt", self.salt, SALT_SIZE)
        _check_bytes("mic", self.mic, MIC_SIZE)


@dataclass(frozen=True, slots=True, repr=False)
class EidFrame:
    """Eddystone-EID: an 8-byte ephemeral identifier (hidden in the repr)."""

    tx_power: int
    eid: bytes

    def __post_init__(self) -> None:
        _check_tx_power(self.tx_power)
        _check_bytes("eid", self.eid, EID_SIZE)

    def __repr__(self) -> str:
        return f"EidFrame(tx_power={self.tx_power}, eid=<hidden>)"


Frame: TypeAlias = UidFrame | UrlFrame | TlmFrame | EtlmFrame | EidFrame

# ----------------------------------------------------------------------------------------- parse
# The parser checks every field itself, then builds frames without running the constructors'
# checks again (object.__setattr__ on a frozen slotted dataclass): it is the per-advert hot path.

_new = object.__new__
_set = object.__setattr__
_INT8: Final = tuple(b - 256 if b > 127 else b for b in range(256))  # noqa: PLR2004


_UID_SIZES: Final = "UID frame must be 20 bytes (18 without the reserved tail)"
_URL_SIZES: Final = f"URL frame must be {URL_MIN_LENGTH}..{URL_MAX_LENGTH} bytes"
_TLM_HEADER: Final = "TLM frame must have at least 2 bytes (type and version)"
_TLM_SIZES: Final = "TLM frame must be 14 bytes (20 when padded)"
_ETLM_SIZES: Final = "eTLM frame must be 18 bytes (19 from early Nordic firmware)"
_EID_SIZES: Final = "EID frame must be 10 bytes (18 from mbed-based firmware)"


def _bad_length(rule: str, got: int) -> FrameError:
    return FrameError(FrameErrorReason.BAD_LENGTH, f"{rule}, got {got}")


def _parse_uid(data: bytes) -> UidFrame:
    if len(data) not in UID_LENGTHS:
        raise _bad_length(_UID_SIZES, len(data))
    frame = _new(UidFrame)
    _set(frame, "tx_power", _INT8[data[1]])
    _set(frame, "namespace", data[2:12])
    _set(frame, "instance", data[12:18])
    return frame


def _parse_url(data: bytes) -> UrlFrame:
    if not URL_MIN_LENGTH <= len(data) <= URL_MAX_LENGTH:
        raise _bad_length(_URL_SIZES, len(data))
    frame = _new(UrlFrame)
    _set(frame, "tx_power", _INT8[data[1]])
    _set(frame, "url", decode_url(data[2], data[3:]))
    return frame


def _tlm_from_data(data: bytes, offset: int) -> TlmFrame:
    battery, temperature, adv_count, uptime = _TLM_DATA.unpack_from(data, offset)
    frame = _new(TlmFrame)
    _set(frame, "battery_mv", battery)
    _set(
        frame,
        "temperature_c",
        None if temperature == _TEMPERATURE_UNSUPPORTED else temperature / _TEMPERATURE_SCALE,
    )
    _set(frame, "adv_count", adv_count)
    _set(frame, "uptime_ds", uptime)
    return frame


def _parse_tlm(data: bytes) -> TlmFrame | EtlmFrame:
    if len(data) < 2:  # noqa: PLR2004 - frame type and version
        raise _bad_length(_TLM_HEADER, len(data))
    version = data[1]
    if version == TLM_PLAIN:
        if len(data) not in TLM_LENGTHS:
            raise _bad_length(_TLM_SIZES, len(data))
        return _tlm_from_data(data, 2)
    if version == TLM_ENCRYPTED:
        if len(data) not in ETLM_LENGTHS:
            raise _bad_length(_ETLM_SIZES, len(data))
        frame = _new(EtlmFrame)
        _set(frame, "ciphertext", data[2:14])
        _set(frame, "salt", data[14:16])
        _set(frame, "mic", data[16:18])
        return frame
    msg = f"TLM version 0x{version:02x} is unknown (0x00 plain, 0x01 encrypted)"
    raise FrameError(FrameErrorReason.UNKNOWN_TLM_VERSION, msg)


def _parse_eid(data: bytes) -> EidFrame:
    if len(data) not in EID_LENGTHS:
        raise _bad_length(_EID_SIZES, len(data))
    frame = _new(EidFrame)
    _set(frame, "tx_power", _INT8[data[1]])
    _set(frame, "eid", data[2:10])
    return frame


_PARSERS: Final[dict[int, Callable[[bytes], Frame]]] = {
    FrameType.UID.value: _parse_uid,
    FrameType.URL.value: _parse_url,
    FrameType.TLM.value: _parse_tlm,
    FrameType.EID.value: _parse_eid,
}


def as_bytes(data: object, what: str) -> bytes:
    """``data`` as bytes; a :class:`FrameError` (``NOT_BYTES``) unless it is bytes-like."""
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    msg = f"{what} must be bytes, got {type(data).__name__}"
    raise FrameError(FrameErrorReason.NOT_BYTES, msg)


def parse(service_data: bytes) -> Frame:
    """Parse Eddystone service data (the bytes after the 0xFEAA UUID, frame type first)."""
    data = as_bytes(service_data, "service data")
    if not data:
        raise FrameError(FrameErrorReason.EMPTY, "service data is empty (no frame type byte)")
    parser = _PARSERS.get(data[0])
    if parser is None:
        kind = data[0]
        if kind & 0xF0 in _PARSERS:
            msg = f"frame type byte 0x{kind:02x} has reserved low bits set"
            raise FrameError(FrameErrorReason.RESERVED_BITS, msg)
        msg = f"frame type 0x{kind:02x} is not an Eddystone frame (UID, URL, TLM or EID)"
        raise FrameError(FrameErrorReason.UNKNOWN_FRAME_TYPE, msg)
    return parser(data)


# ---------------------------------------------------------------------------------------- encode


def encode(frame: Frame) -> bytes:
    """The canonical service data of ``frame`` (20-byte UID, 14-byte TLM, 10-byte EID...)."""
    return _encode(frame)


def _encode(frame: object) -> bytes:
    if isinstance(frame, UidFrame):
        return (
            bytes((FrameType.UID, frame.tx_power & 0xFF))
            + frame.namespace
            + frame.instance
            + b"\x00\x00"
        )
    if isinstance(frame, UrlFrame):
        scheme, body = encode_url(frame.url)
        return bytes((FrameType.URL, frame.tx_power & 0xFF, scheme)) + body
    if isinstance(frame, TlmFrame):
        return bytes((FrameType.TLM, TLM_PLAIN)) + frame.telemetry
    if isinstance(frame, EtlmFrame):
        return bytes((FrameType.TLM, TLM_ENCRYPTED)) + frame.ciphertext + frame.salt + frame.mic
    if isinstance(frame, EidFrame):
        return bytes((FrameType.EID, frame.tx_power & 0xFF)) + frame.eid
    msg = f"cannot encode {type(frame).__name__}: not an Eddystone frame"
    raise FrameError(FrameErrorReason.BAD_FIELD, msg)
