"""Just enough of PNG to check a screenshot: its size and its pixels (8-bit RGB/RGBA, no interlace).

The browser test checks that a screenshot is a real image of the viewport and not blank; this
decodes it with zlib and the five PNG row filters, with no imaging library.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Final

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_CHANNELS: Final = {0: 1, 2: 3, 4: 2, 6: 4}
"""PNG colour type -> bytes per pixel at bit depth 8 (grey, RGB, grey+alpha, RGBA)."""


@dataclass(frozen=True, slots=True)
class Image:
    """A decoded PNG: its size and one ``bytes`` per row (``width * channels`` long)."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def colours(self) -> Counter[bytes]:
        """How many pixels have each colour."""
        counts: Counter[bytes] = Counter()
        step = self.channels
        for row in self.rows:
            counts.update(row[i : i + step] for i in range(0, len(row), step))
        return counts


def size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        msg = "not a PNG file"
        raise ValueError(msg)
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def decode(data: bytes) -> Image:
    """Every pixel of an 8-bit, non-interlaced PNG."""
    width, height = size(data)
    header, compressed = _chunks(data)
    depth, colour, _, _, interlace = struct.unpack(">BBBBB", header[8:13])
    if depth != 8 or interlace != 0 or colour not in _CHANNELS:
        msg = f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        raise ValueError(msg)
    channels = _CHANNELS[colour]
    raw = zlib.decompress(compressed)
    stride = width * channels
    if len(raw) != height * (stride + 1):
        msg = f"PNG data is {len(raw)} bytes, not {height} rows of {stride + 1}"
        raise ValueError(msg)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, channels)
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)


def _chunks(data: bytes) -> tuple[bytes, bytes]:
    """The IHDR chunk's data and the IDAT chunks' data joined."""
    position = 8
    header = b""
    idat: list[bytes] = []
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length  # length, type, data, CRC
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    return header, b"".join(idat)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    """Undo one row's filter in place (PNG specification, section 9)."""
    if kind == 0:
        return
    if kind == 2:
        for i, above in enumerate(previous):
            line[i] = (line[i] + above) & 0xFF
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:  # Sub
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            line[i] = (
                line[i] + _paeth(left, previous[i], previous[i - bpp] if i >= bpp else 0)
            ) & 0xFF
        else:
            msg = f"unknown PNG filter {kind}"
            raise ValueError(msg)


def _paeth(left: int, above: int, corner: int) -> int:
    estimate = left + above - corner
    to_left, to_above, to_corner = (
        abs(estimate - left),
        abs(estimate - above),
        abs(estimate - corner),
    )
    if to_left <= to_above and to_left <= to_corner:
        return left
    return above if to_above <= to_corner else corner
