"""Encrypted telemetry, eTLM (eddystone-spec.md section 9).

The 12 plain-TLM data bytes (battery, temperature, PDU count, uptime) are encrypted with AES-EAX
under the slot's identity key (not the temporary key), nonce = K-masked counter (uint32 BE) then a
2-byte random salt, empty header, and the tag cut to a 2-byte MIC. Frame:
``20 01 | ciphertext(12) | salt(2) | MIC(2)``.
"""

from __future__ import annotations

import functools
import hmac
import struct
from typing import Final

from eid import frames
from eid.ephemeral import check_counter, check_exponent, quantum_start
from eid.errors import FrameError, FrameErrorReason, IntegrityError
from eid.primitives import AesBlockCipher, check_aes_key, check_size

TELEMETRY_SIZE: Final = 12
SALT_SIZE: Final = 2
MIC_SIZE: Final = 2
_NONCE_TIME: Final = struct.Struct(">I")
_ETLM_HEADER: Final = bytes((frames.FrameType.TLM, frames.TLM_ENCRYPTED))


def _nonce(exponent: int, counter: int, salt: bytes) -> bytes:
    check_exponent(exponent)
    check_counter(counter)
    return _NONCE_TIME.pack(quantum_start(exponent, counter)) + salt


_BLOCK: Final = 16
_MASK128: Final = (1 << 128) - 1
_RB: Final = 0x87  # CMAC's constant for 128-bit blocks (RFC 4493)
_GENERATOR_CACHE_SIZE: Final = 1024


def _double(value: int) -> int:
    """Multiplication by x in GF(2^128), as CMAC derives its subkeys."""
    value <<= 1
    return (value & _MASK128) ^ _RB if value >> 128 else value


class EtlmCipher:
    """eTLM encryption under one identity key: EAX reduced to single AES blocks.

    eTLM's EAX always has a 6-byte nonce, an empty header and 12 bytes of data, so OMAC over
    ``0^15 | tweak | message`` is two blocks at most and CTR one block: five AES blocks a frame,
    with the key schedule and CMAC subkeys made once. Equal to :mod:`eid.eax`'s general EAX
    (checked against an independent implementation in the tests). The key is not kept as bytes.
    """

    __slots__ = ("_aes", "_header_tag", "_k1", "_k2")

    def __init__(self, identity_key: bytes) -> None:
        self._aes = AesBlockCipher(identity_key, what="identity key")
        zero = int.from_bytes(self._aes.encrypt(bytes(_BLOCK)), "big")
        self._k1 = _double(zero)
        self._k2 = _double(self._k1)
        self._header_tag = self._omac(1, b"")

    def _omac(self, tweak: int, message: bytes) -> int:
        """OMAC^tweak(message) = CMAC(0^15 | tweak | message) for messages of 0..15 bytes."""
        first = bytes(_BLOCK - 1) + bytes((tweak,))
        state = int.from_bytes(self._aes.encrypt(first), "big") if message else 0
        if not message:
            last = int.from_bytes(first, "big") ^ self._k1  # one complete block
        else:
            padded = message + b"\x80" + bytes(_BLOCK - 1 - len(message))
            last = state ^ int.from_bytes(padded, "big") ^ self._k2
        return int.from_bytes(self._aes.encrypt(last.to_bytes(_BLOCK, "big")), "big")

    def _keystream(self, counter_block: int, size: int) -> int:
        block = self._aes.encrypt(counter_block.to_bytes(_BLOCK, "big"))
        return int.from_bytes(block[:size], "big")

    def encrypt(self, nonce: bytes, telemetry: bytes) -> tuple[bytes, bytes]:
        """``(ciphertext, MIC)`` of the 12 telemetry bytes under a 6-byte nonce."""
        n = self._omac(0, nonce)
        ciphertext = (
            int.from_bytes(telemetry, "big") ^ self._keystream(n, TELEMETRY_SIZE)
        ).to_bytes(TELEMETRY_SIZE, "big")
        tag = n ^ self._header_tag ^ self._omac(2, ciphertext)
        return ciphertext, tag.to_bytes(_BLOCK, "big")[:MIC_SIZE]

    def decrypt(self, nonce: bytes, ciphertext: bytes, mic: bytes) -> bytes:
        """The telemetry of a ciphertext whose MIC verifies; else :class:`IntegrityError`."""
        n = self._omac(0, nonce)
        tag = (n ^ self._header_tag ^ self._omac(2, ciphertext)).to_bytes(_BLOCK, "big")
        if not hmac.compare_digest(tag[:MIC_SIZE], mic):
            msg = "eTLM MIC does not verify for this identity key, rotation period and salt"
            raise IntegrityError(msg)
        plain = int.from_bytes(ciphertext, "big") ^ self._keystream(n, TELEMETRY_SIZE)
        return plain.to_bytes(TELEMETRY_SIZE, "big")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<identity key hidden>)"


@functools.lru_cache(maxsize=_GENERATOR_CACHE_SIZE)
def _cipher(identity_key: bytes) -> EtlmCipher:
    return EtlmCipher(identity_key)


def etlm_cipher(identity_key: bytes) -> EtlmCipher:
    """A (cached) :class:`EtlmCipher` for ``identity_key``."""
    check_aes_key(identity_key, "identity key")
    return _cipher(bytes(identity_key))


def encrypt_etlm(
    identity_key: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> bytes:
    """The 18-byte eTLM frame that carries the 12 ``telemetry`` bytes (plain TLM bytes 2..13)."""
    cipher = etlm_cipher(identity_key)
    salt = check_size(salt, SALT_SIZE, "eTLM salt")
    telemetry = check_size(telemetry, TELEMETRY_SIZE, "eTLM telemetry (plain TLM bytes 2..13)")
    ciphertext, mic = cipher.encrypt(_nonce(exponent, counter, salt), telemetry)
    return _ETLM_HEADER + ciphertext + salt + mic


def decrypt_etlm(
    identity_key: bytes, exponent: int, counter: int, frame: bytes | frames.EtlmFrame
) -> bytes:
    """Verify and decrypt an eTLM frame; return the 12 plain telemetry bytes.

    ``counter`` is the beacon's time in the rotation period the frame was sent in (the counter of
    the EID it was paired with). A frame that is not eTLM raises :class:`FrameError`; a MIC that
    does not verify raises :class:`IntegrityError`.
    """
    cipher = etlm_cipher(identity_key)
    parsed = frame if isinstance(frame, frames.EtlmFrame) else frames.parse(frame)
    if not isinstance(parsed, frames.EtlmFrame):
        msg = f"expected an eTLM frame (TLM version 1), got {type(parsed).__name__}"
        raise FrameError(FrameErrorReason.UNKNOWN_TLM_VERSION, msg)
    return cipher.decrypt(_nonce(exponent, counter, parsed.salt), parsed.ciphertext, parsed.mic)
