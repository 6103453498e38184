"""AES-EAX (Bellare, Rogaway, Wagner) built from AES-CMAC and AES-CTR.

``cryptography`` has no EAX, and eTLM needs one with a 48-bit nonce and a 2-byte tag, which many
libraries refuse. EAX is: ``N = OMAC0(nonce)``, ``H = OMAC1(header)``, ``C = CTR(N)(P)``,
``tag = N ^ H ^ OMAC2(C)``, where ``OMACt(M) = CMAC(00*15 | t | M)``; the tag may be truncated.
"""

from __future__ import annotations

import hmac
from typing import Final

from eid.errors import EidError, IntegrityError
from eid.primitives import BLOCK_SIZE, aes_cmac, aes_ctr

_OMAC_PREFIX: Final = bytes(BLOCK_SIZE - 1)


def _omac(key: bytes, tweak: int, message: bytes) -> bytes:
    return aes_cmac(key, _OMAC_PREFIX + bytes((tweak,)) + message)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(BLOCK_SIZE, "big")


def _check_tag_length(tag_length: int) -> None:
    if not 1 <= tag_length <= BLOCK_SIZE:
        msg = f"EAX tag length must be 1..{BLOCK_SIZE} bytes, got {tag_length}"
        raise EidError(msg)


def eax_encrypt(
    key: bytes, nonce: bytes, header: bytes, plaintext: bytes, tag_length: int = BLOCK_SIZE
) -> tuple[bytes, bytes]:
    """Encrypt and authenticate; return ``(ciphertext, tag)`` with the tag cut to ``tag_length``."""
    _check_tag_length(tag_length)
    n = _omac(key, 0, nonce)
    h = _omac(key, 1, header)
    ciphertext = aes_ctr(key, n, plaintext)
    tag = _xor(_xor(n, h), _omac(key, 2, ciphertext))
    return ciphertext, tag[:tag_length]


def eax_decrypt(key: bytes, nonce: bytes, header: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    """Verify ``tag`` (any length 1..16) and decrypt; a wrong tag raises :class:`IntegrityError`."""
    _check_tag_length(len(tag))
    n = _omac(key, 0, nonce)
    h = _omac(key, 1, header)
    expected = _xor(_xor(n, h), _omac(key, 2, ciphertext))[: len(tag)]
    if not hmac.compare_digest(expected, tag):
        msg = "authentication tag does not verify"
        raise IntegrityError(msg)
    return aes_ctr(key, n, ciphertext)
