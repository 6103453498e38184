"""Lock-code cryptography of the Eddystone GATT configuration service (eddystone-spec.md 8.4)."""

from __future__ import annotations

from typing import Final

from eid.primitives import AesBlockCipher, aes_decrypt_block, check_size

CHALLENGE_SIZE: Final = 16


def unlock_token(lock_code: bytes, challenge: bytes) -> bytes:
    """The 16-byte unlock token: ``AES-128-ECB-Encrypt(key=lock_code, challenge)``."""
    cipher = AesBlockCipher(lock_code, what="lock code")
    return cipher.encrypt(check_size(challenge, CHALLENGE_SIZE, "unlock challenge"))


def seal_with_lock_code(lock_code: bytes, secret: bytes) -> bytes:
    """``AES-128-ECB-Encrypt(key=lock_code, secret)``, as secrets cross the configuration service.

    A new lock code (Lock State write), an identity key (EID Identity Key read, 18-byte EID slot
    write) travel this way.
    """
    cipher = AesBlockCipher(lock_code, what="lock code")
    return cipher.encrypt(check_size(secret, CHALLENGE_SIZE, "sealed value"))


def open_with_lock_code(lock_code: bytes, sealed: bytes) -> bytes:
    """The inverse of :func:`seal_with_lock_code`: AES-128-ECB-Decrypt with the lock code."""
    return aes_decrypt_block(
        lock_code, check_size(sealed, CHALLENGE_SIZE, "sealed value"), what="lock code"
    )
