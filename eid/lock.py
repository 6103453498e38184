"""Lock-code cryptography of the Eddystone GATT configuration service (eddystone-spec.md 8.4)."""

from __future__ import annotations

from typing import Final

from eid.primitives import AesBlockCipher, check_size

CHALLENGE_SIZE: Final = 16


def unlock_token(lock_code: bytes, challenge: bytes) -> bytes:
    """The 16-byte unlock token: ``AES-128-ECB-Encrypt(key=lock_code, challenge)``."""
    cipher = AesBlockCipher(lock_code, what="lock code")
    return cipher.encrypt(check_size(challenge, CHALLENGE_SIZE, "unlock challenge"))
