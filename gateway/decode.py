"""``beacon-gateway decode``: decode advertisements given as hex text, one per line.

Line grammar (blank lines and ``#`` comments are skipped)::

    [@TIME] HEX     one advertisement, seen at TIME (else at the current default time)
    @TIME           set the default time for the lines that follow

TIME is unix seconds or ISO 8601 with a UTC offset (``2026-01-01T00:00:00Z``). HEX is the
Eddystone service data (frame type first, optionally preceded by the UUID bytes ``aafe``) or a
whole advertisement payload (AD structures); spaces, colons and dashes between digits are allowed.

EID frames are resolved against a key registry at the line's time. An eTLM frame is decrypted
with the beacon of the most recent resolved EID, as a gateway pairs eTLM with the EID last seen
from the same address.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import eid
from eid import frames
from eid.advertising import EDDYSTONE_UUID_LE, MAX_LEGACY_PAYLOAD, eddystone_service_data
from gateway.core.describe import describe, describe_tlm
from gateway.core.identity import decrypt_paired_etlm
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.registry import BeaconKey, KeyRegistry

_HEX_SEPARATORS: Final = re.compile(r"[\s:\-]")
_FRAME_TYPES: Final = frozenset(kind.value for kind in frames.FrameType)


class InputError(GatewayError, ValueError):
    """A line of decode input that is not what the grammar allows."""


def parse_time(text: str) -> float:
    """Unix seconds from ``1767225600``, ``1767225600.5`` or ISO 8601 with a UTC offset."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            msg = f"time {text!r} is neither unix seconds nor ISO 8601"
            raise InputError(msg) from None
        if moment.tzinfo is None:
            msg = f"time {text!r} has no UTC offset (add Z or +HH:MM)"
            raise InputError(msg) from None
        value = moment.timestamp()
    if not math.isfinite(value):
        msg = f"time {text!r} must be finite, non-negative unix seconds"
        raise InputError(msg)
    if value < 0:
        msg = f"time {text!r} must not be before 1970 (non-negative unix seconds)"
        raise InputError(msg)
    return value


def parse_hex(text: str) -> bytes:
    """Bytes from hex digits, allowing spaces, colons, dashes and a ``0x`` prefix."""
    digits = _HEX_SEPARATORS.sub("", text).removeprefix("0x").removeprefix("0X")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        msg = "not hexadecimal bytes (an even number of hex digits)"
        raise InputError(msg) from None


def frame_from(data: bytes) -> frames.Frame:
    """The Eddystone frame in ``data``: service data, ``aafe`` + service data, or an AD payload.

    Raises :class:`eid.FrameError`. When ``data`` is neither a frame nor an advertisement, the
    error reported is the advertisement's if the first byte can be an AD length, else the frame's.
    """
    if data[:2] == EDDYSTONE_UUID_LE:
        return frames.parse(data[2:])
    if not data or data[0] in _FRAME_TYPES:
        return frames.parse(data)
    try:
        service_data = eddystone_service_data(data)
    except eid.FrameError:
        if data[0] <= MAX_LEGACY_PAYLOAD - 1:
            raise
        return frames.parse(data)  # raises: explains why the first byte is no frame type
    return frames.parse(service_data)


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """The outcome of one input line: ``text`` describes the frame, or the error if not ``ok``."""

    number: int
    ok: bool
    text: str


class Decoder:
    """Decodes lines one at a time, keeping the default time and the last resolved EID."""

    def __init__(self, registry: KeyRegistry | None, default_time: float) -> None:
        self._registry = registry
        self._resolver = registry.resolver() if registry is not None else None
        self._default_time = default_time
        self._last_match: tuple[BeaconKey, eid.Match] | None = None

    def decode_line(self, number: int, line: str) -> DecodedLine | None:
        """Decode one line; None for blank lines, comments and bare ``@TIME`` lines."""
        text = line.split("#", 1)[0].strip()
        if not text:
            return None
        try:
            at = self._default_time
            if text.startswith("@"):
                stamp, _, text = text[1:].partition(" ")
                at = parse_time(stamp)
                text = text.strip()
                if not text:
                    self._default_time = at
                    return None
            frame = frame_from(parse_hex(text))
            return DecodedLine(number, ok=True, text=self._explain(frame, at))
        except (InputError, eid.EidError) as exc:
            return DecodedLine(number, ok=False, text=f"error: {exc}")

    def _explain(self, frame: frames.Frame, at: float) -> str:
        line = describe(frame)
        if isinstance(frame, frames.EidFrame):
            return f"{line}  -> {self._resolve(frame, at)}"
        if isinstance(frame, frames.EtlmFrame):
            return f"{line}  -> {self._decrypt(frame)}"
        return line

    def _resolve(self, frame: frames.EidFrame, at: float) -> str:
        if self._resolver is None or self._registry is None:
            return "not resolved (no key registry given)"
        match = self._resolver.resolve(frame.eid, at)
        if match is None:
            return "unresolved: no registered beacon shows this EID at this time"
        self._last_match = (self._registry[match.beacon_id], match)
        return f"beacon {match.beacon_id} (rotation period offset {match.period_offset:+d})"

    def _decrypt(self, frame: frames.EtlmFrame) -> str:
        if self._last_match is None:
            return "not decrypted (no resolved EID from this beacon before it)"
        key, match = self._last_match
        tlm = decrypt_paired_etlm(key.identity_key, key.rotation_exponent, match.counter, frame)
        if tlm is not None:
            return f"beacon {key.beacon_id}: {describe_tlm(tlm)}"
        return f"MIC does not verify for beacon {key.beacon_id} (forged, corrupt or not its frame)"
