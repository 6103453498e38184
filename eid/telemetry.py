"""Encrypted telemetry, eTLM (eddystone-spec.md section 9).

The 12 plain-TLM data bytes (battery, temperature, PDU count, uptime) are encrypted with AES-EAX
under the slot's identity key (not the temporary key), nonce = K-masked counter (uint32 BE) then a
2-byte random salt, empty header, and the tag cut to a 2-byte MIC. Frame:
``20 01 | ciphertext(12) | salt(2) | MIC(2)``.
"""

from __future__ import annotations

import struct
from typing import Final

from eid import frames
from eid.eax import eax_decrypt, eax_encrypt
from eid.ephemeral import check_counter, check_exponent, quantum_start
from eid.errors import FrameError, FrameErrorReason, IntegrityError
from eid.primitives import check_aes_key, check_size

TELEMETRY_SIZE: Final = 12
SALT_SIZE: Final = 2
MIC_SIZE: Final = 2
_NONCE_TIME: Final = struct.Struct(">I")


def _nonce(exponent: int, counter: int, salt: bytes) -> bytes:
    check_exponent(exponent)
    check_counter(counter)
    return _NONCE_TIME.pack(quantum_start(exponent, counter)) + salt


def encrypt_etlm(
    identity_key: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> bytes:
    """The 18-byte eTLM frame that carries the 12 ``telemetry`` bytes (plain TLM bytes 2..13)."""
    check_aes_key(identity_key, "identity key")
    salt = check_size(salt, SALT_SIZE, "eTLM salt")
    telemetry = check_size(telemetry, TELEMETRY_SIZE, "eTLM telemetry (plain TLM bytes 2..13)")
    nonce = _nonce(exponent, counter, salt)
    ciphertext, mic = eax_encrypt(bytes(identity_key), nonce, b"", telemetry, MIC_SIZE)
    return frames.encode(frames.EtlmFrame(ciphertext=ciphertext, salt=salt, mic=mic))


def decrypt_etlm(
    identity_key: bytes, exponent: int, counter: int, frame: bytes | frames.EtlmFrame
) -> bytes:
    """Verify and decrypt an eTLM frame; return the 12 plain telemetry bytes.

    ``counter`` is the beacon's time in the rotation period the frame was sent in (the counter of
    the EID it was paired with). A frame that is not eTLM raises :class:`FrameError`; a MIC that
    does not verify raises :class:`IntegrityError`.
    """
    check_aes_key(identity_key, "identity key")
    parsed = frame if isinstance(frame, frames.EtlmFrame) else frames.parse(frame)
    if not isinstance(parsed, frames.EtlmFrame):
        msg = f"expected an eTLM frame (TLM version 1), got {type(parsed).__name__}"
        raise FrameError(FrameErrorReason.UNKNOWN_TLM_VERSION, msg)
    nonce = _nonce(exponent, counter, parsed.salt)
    try:
        return eax_decrypt(bytes(identity_key), nonce, b"", parsed.ciphertext, parsed.mic)
    except IntegrityError:
        msg = "eTLM MIC does not verify for this identity key, rotation period and salt"
        raise IntegrityError(msg) from None
