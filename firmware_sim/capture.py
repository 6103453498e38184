"""The JSONL capture format: adverts as gateways heard them, recorded once, replayed any time.

Line 1 is a header, every other line one advert (docs/capture-format.md)::

    {"format": "beacon-gateway-capture", "version": 1, "meta": {...}}
    {"t": 1767225600.125, "gateway": "gw-entrance", "address": "C3:1A:...", "rssi": -67,
     "service_data": {"0000feaa-0000-1000-8000-00805f9b34fb": "30ee..."},
     "service_uuids": ["0000feaa-0000-1000-8000-00805f9b34fb"], "tx_power": null,
     "local_name": null}

Times are unix seconds; service data is hex, keyed by the full 128-bit UUID string as bleak
reports it. The reader is total: a line that is not what the format says raises
:class:`CaptureError` naming the line and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import TextIO

FORMAT_NAME: Final = "beacon-gateway-capture"
FORMAT_VERSION: Final = 1
EDDYSTONE_UUID: Final = "0000feaa-0000-1000-8000-00805f9b34fb"
TIME_LIMIT: Final = 253_402_300_800
"""10000-01-01T00:00:00Z: the events an advert leads to are dated, and dates end before it."""


class CaptureError(ValueError):
    """A capture line that is not what the format says; ``line`` is its 1-based number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"capture line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class CapturedAdvert:
    """One advert as a gateway heard it."""

    at: float
    gateway: str
    address: str
    rssi: int
    service_data: dict[str, bytes] = field(repr=False)  # may hold a raw EID
    service_uuids: tuple[str, ...] = (EDDYSTONE_UUID,)
    tx_power: int | None = None
    local_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The advert's capture line, as a JSON object."""
        return {
            "t": self.at,
            "gateway": self.gateway,
            "address": self.address,
            "rssi": self.rssi,
            "service_data": {uuid: data.hex() for uuid, data in self.service_data.items()},
            "service_uuids": list(self.service_uuids),
            "tx_power": self.tx_power,
            "local_name": self.local_name,
        }


class CaptureWriter:
    """Writes a header, then adverts, one JSON object per line."""

    def __init__(self, stream: TextIO, meta: dict[str, Any] | None = None) -> None:
        self._stream = stream
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "meta": meta or {}}
        stream.write(json.dumps(header, separators=(",", ":")) + "\n")
        self.count = 0

    def write(self, advert: CapturedAdvert) -> None:
        """Append one advert."""
        self._stream.write(json.dumps(advert.to_json(), separators=(",", ":")) + "\n")
        self.count += 1


def _field(record: dict[str, Any], name: str, kinds: tuple[type, ...], line: int) -> Any:  # noqa: ANN401 - JSON values
    if name not in record:
        raise CaptureError(line, f"{name!r} is missing")
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise CaptureError(line, f"{name!r} must be {names}, got {type(value).__name__}")
    return value


def _advert(record: object, line: int) -> CapturedAdvert:
    if not isinstance(record, dict):
        raise CaptureError(line, "an advert line must be a JSON object")
    unknown = sorted(set(record) - {"t", "gateway", "address", "rssi", "service_data",
                                    "service_uuids", "tx_power", "local_name"})  # fmt: skip
    if unknown:
        raise CaptureError(line, f"unknown fields {', '.join(unknown)}")
    seconds = _field(record, "t", (int, float), line)
    if not 0 <= seconds < TIME_LIMIT:  # also False for NaN
        raise CaptureError(line, "'t' must be non-negative unix seconds before year 10000")
    at = float(seconds)
    raw_data = _field(record, "service_data", (dict,), line)
    service_data: dict[str, bytes] = {}
    for uuid, text in raw_data.items():
        try:
            service_data[str(uuid)] = bytes.fromhex(text)
        except (TypeError, ValueError):
            raise CaptureError(line, f"service data for {uuid} is not hex") from None
    uuids = _field(record, "service_uuids", (list,), line) if "service_uuids" in record else []
    if not all(isinstance(uuid, str) for uuid in uuids):
        raise CaptureError(line, "'service_uuids' must be strings")
    tx_power = record.get("tx_power")
    if tx_power is not None and (isinstance(tx_power, bool) or not isinstance(tx_power, int)):
        raise CaptureError(line, "'tx_power' must be an integer or null")
    name = record.get("local_name")
    if name is not None and not isinstance(name, str):
        raise CaptureError(line, "'local_name' must be a string or null")
    return CapturedAdvert(
        at=at,
        gateway=_field(record, "gateway", (str,), line),
        address=_field(record, "address", (str,), line),
        rssi=_field(record, "rssi", (int,), line),
        service_data=service_data,
        service_uuids=tuple(uuids),
        tx_power=tx_power,
        local_name=name,
    )


def _json(text: str, line: int) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise CaptureError(line, "not JSON") from None


def read_capture(lines: Iterable[str]) -> tuple[dict[str, Any], Iterator[CapturedAdvert]]:
    """The header's meta and an iterator over the adverts of a capture.

    The header is checked at once; adverts are checked as they are read.
    """
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise CaptureError(1, "empty capture (no header line)")
    header = _json(first[1], 1)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CaptureError(1, f"not a {FORMAT_NAME} header")
    if header.get("version") != FORMAT_VERSION:
        raise CaptureError(1, f"version {header.get('version')!r} is not {FORMAT_VERSION}")
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise CaptureError(1, "'meta' must be a JSON object")

    def adverts() -> Iterator[CapturedAdvert]:
        for number, text in numbered:
            if text.strip():
                yield _advert(_json(text, number), number)

    return meta, adverts()
