"""BLE advertising-data structures around an Eddystone frame (eddystone-spec.md section 1).

An advertisement payload is a run of AD structures ``length | type | data``. Eddystone puts 0xFEAA
in a Complete List of 16-bit Service UUIDs (type 0x03) and its frame in Service Data - 16-bit UUID
(type 0x16), UUID first. BLE fields are little-endian, so 0xFEAA is ``AA FE`` on air.
"""

from __future__ import annotations

from typing import Final

from eid.errors import FrameError, FrameErrorReason
from eid.frames import as_bytes

EDDYSTONE_UUID16: Final = 0xFEAA
EDDYSTONE_UUID_LE: Final = b"\xaa\xfe"
AD_FLAGS: Final = 0x01
AD_COMPLETE_UUID16_LIST: Final = 0x03
AD_SERVICE_DATA_UUID16: Final = 0x16
FLAGS_LE_GENERAL_NO_BREDR: Final = 0x06
MAX_LEGACY_PAYLOAD: Final = 31
"""A legacy advertising PDU carries at most 31 bytes of AD structures."""


def eddystone_service_data(advertisement: bytes) -> bytes:
    """The Eddystone frame (after ``AA FE``) in an advertisement payload.

    Raises :class:`FrameError` if the AD structures are malformed or carry no Eddystone service
    data. A zero length byte ends the significant part (what follows is padding).
    """
    data = as_bytes(advertisement, "advertisement")
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0:
            break
        end = offset + 1 + length
        if end > len(data):
            msg = (
                f"AD structure at offset {offset} claims {length} bytes "
                f"but only {len(data) - offset - 1} follow"
            )
            raise FrameError(FrameErrorReason.BAD_LENGTH, msg)
        ad_type = data[offset + 1]
        if ad_type == AD_SERVICE_DATA_UUID16 and data[offset + 2 : offset + 4] == EDDYSTONE_UUID_LE:
            return data[offset + 4 : end]
        offset = end
    msg = "advertisement has no Eddystone service data (AD type 0x16 with UUID AA FE)"
    raise FrameError(FrameErrorReason.NOT_EDDYSTONE, msg)


def advertisement(service_data: bytes) -> bytes:
    """The advertisement payload a spec-compliant beacon sends for ``service_data``.

    Flags (LE general discoverable, no BR/EDR), the 16-bit UUID list with 0xFEAA, then the
    service data. Raises :class:`FrameError` if it would not fit a legacy advertisement.
    """
    frame = bytes(service_data)
    payload = (
        bytes((2, AD_FLAGS, FLAGS_LE_GENERAL_NO_BREDR))
        + bytes((3, AD_COMPLETE_UUID16_LIST))
        + EDDYSTONE_UUID_LE
        + bytes((3 + len(frame), AD_SERVICE_DATA_UUID16))
        + EDDYSTONE_UUID_LE
        + frame
    )
    if len(payload) > MAX_LEGACY_PAYLOAD:
        msg = f"advertisement would be {len(payload)} bytes, over the {MAX_LEGACY_PAYLOAD} allowed"
        raise FrameError(FrameErrorReason.BAD_LENGTH, msg)
    return payload
