"""The errors eid raises: one root, :class:`EidError`, a :class:`ValueError`.

Messages name what is wrong (a length, a range, a field) and never carry key material, lock codes,
raw EIDs or the bytes of a frame: callers log them as they are.
"""

from __future__ import annotations

import enum


class EidError(ValueError):
    """Root of every error the eid package raises."""


class InvalidKeyError(EidError):
    """A key has the wrong size, or an X25519 peer key is weak (the shared secret is all zero)."""


class IntegrityError(EidError):
    """An authentication tag did not verify: the eTLM MIC is wrong for this key, time and salt.

    Either the frame was forged or corrupted, or it belongs to another beacon or rotation period.
    """


class FrameErrorReason(enum.StrEnum):
    """Why bytes are not an Eddystone frame; stable values, fit for metric labels."""

    NOT_BYTES = "not_bytes"
    EMPTY = "empty"
    UNKNOWN_FRAME_TYPE = "unknown_frame_type"
    RESERVED_BITS = "reserved_bits"
    BAD_LENGTH = "bad_length"
    UNKNOWN_TLM_VERSION = "unknown_tlm_version"
    BAD_URL = "bad_url"
    BAD_FIELD = "bad_field"
    NOT_EDDYSTONE = "not_eddystone"


class FrameError(EidError):
    """Bytes that are not a valid Eddystone frame, or a frame that cannot be encoded.

    ``reason`` classifies the problem; the message says exactly what is wrong.
    """

    def __init__(self, reason: FrameErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
