"""Cryptographic primitives: the only module of the project that imports ``cryptography.hazmat``.

Everything Eddystone needs is built from these: AES-128 on single blocks (with the key schedule
built once and reused), AES-CTR, AES-CMAC, HKDF-SHA256 and X25519. Key sizes are checked here so
that no backend error text (which could echo a size or a value) reaches a caller.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eid.errors import EidError, InvalidKeyError

AES_KEY_SIZE: Final = 16
"""Eddystone uses AES-128 only."""
BLOCK_SIZE: Final = 16
X25519_KEY_SIZE: Final = 32


def check_aes_key(key: object, what: str) -> None:
    """Raise :class:`InvalidKeyError` unless ``key`` is 16 bytes (the message names ``what``)."""
    if not isinstance(key, bytes | bytearray | memoryview):
        msg = f"{what} must be bytes, got {type(key).__name__}"
        raise InvalidKeyError(msg)
    if len(key) != AES_KEY_SIZE:
        msg = f"{what} must be {AES_KEY_SIZE} bytes, got {len(key)}"
        raise InvalidKeyError(msg)


def check_size(value: object, size: int, what: str) -> bytes:
    """``value`` as bytes; :class:`EidError` unless it is bytes-like of exactly ``size`` bytes."""
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != size:
        msg = f"{what} must be {size} bytes"
        raise EidError(msg)
    return bytes(value)


class AesBlockCipher:
    """AES-128 encryption of single 16-byte blocks under one key.

    The key schedule is built once; each :meth:`encrypt` is one call into the backend (an ECB
    context stays valid for any number of whole blocks). The key is not kept on the object and
    never appears in its repr.
    """

    __slots__ = ("_update",)

    def __init__(self, key: bytes, *, what: str = "key") -> None:
        check_aes_key(key, what)
        self._update = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor().update  # noqa: S305 - single-block AES is what the spec prescribes

    def encrypt(self, block: bytes) -> bytes:
        """Encrypt exactly one 16-byte block."""
        if len(block) != BLOCK_SIZE:
            msg = f"AES block must be {BLOCK_SIZE} bytes, got {len(block)}"
            raise EidError(msg)
        return self._update(block)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key hidden>)"


def aes_decrypt_block(key: bytes, block: bytes, *, what: str = "key") -> bytes:
    """Decrypt one 16-byte block with AES-128-ECB (used only by rare configuration steps)."""
    check_aes_key(key, what)
    if len(block) != BLOCK_SIZE:
        msg = f"AES block must be {BLOCK_SIZE} bytes, got {len(block)}"
        raise EidError(msg)
    decryptor = Cipher(algorithms.AES(bytes(key)), modes.ECB()).decryptor()  # noqa: S305
    return decryptor.update(bytes(block)) + decryptor.finalize()


def aes_ctr(key: bytes, initial_counter_block: bytes, data: bytes) -> bytes:
    """AES-128-CTR with a full 128-bit big-endian counter starting at ``initial_counter_block``."""
    check_aes_key(key, "key")
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.CTR(initial_counter_block)).encryptor()
    return encryptor.update(bytes(data)) + encryptor.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-128-CMAC (RFC 4493) of ``data``: 16 bytes."""
    check_aes_key(key, "key")
    mac = cmac.CMAC(algorithms.AES(bytes(key)))
    mac.update(bytes(data))
    return mac.finalize()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with SHA-256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _check_x25519(key: object, what: str) -> bytes:
    if not isinstance(key, bytes | bytearray | memoryview):
        msg = f"{what} must be bytes, got {type(key).__name__}"
        raise InvalidKeyError(msg)
    if len(key) != X25519_KEY_SIZE:
        msg = f"{what} must be {X25519_KEY_SIZE} bytes, got {len(key)}"
        raise InvalidKeyError(msg)
    return bytes(key)


def x25519_public_key(private_key: bytes) -> bytes:
    """The 32-byte X25519 public key (RFC 7748 encoding) of a 32-byte private key."""
    private = X25519PrivateKey.from_private_bytes(_check_x25519(private_key, "private key"))
    return private.public_key().public_bytes_raw()


def x25519_shared_secret(private_key: bytes, peer_public_key: bytes) -> bytes:
    """X25519(private, peer public); a weak peer key (all-zero result) raises InvalidKeyError."""
    private = X25519PrivateKey.from_private_bytes(_check_x25519(private_key, "private key"))
    peer = X25519PublicKey.from_public_bytes(_check_x25519(peer_public_key, "peer public key"))
    try:
        shared = private.exchange(peer)
    except (ValueError, UnsupportedAlgorithm):
        # The backend refuses low-order points because the shared secret would be all zero.
        shared = bytes(X25519_KEY_SIZE)
    if not any(shared):
        msg = "X25519 shared secret is all zero: the peer public key is a low-order point"
        raise InvalidKeyError(msg)
    return shared
