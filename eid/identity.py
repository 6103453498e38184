"""Identity-key agreement between a beacon and its resolver (eddystone-spec.md section 7).

``IK = HKDF-SHA256(IKM = X25519 shared secret, salt = service public | beacon public,
info = empty)[:16]``. Both sides compute the same key from their own private key and the other's
public key; an all-zero shared secret (a low-order peer key) is refused.
"""

from __future__ import annotations

from typing import Final

from eid.primitives import hkdf_sha256, x25519_public_key, x25519_shared_secret

IDENTITY_KEY_SIZE: Final = 16
_HKDF_LENGTH: Final = 32  # the spec's L; only the first 16 bytes are kept


def _derive(shared: bytes, service_public: bytes, beacon_public: bytes) -> bytes:
    salt = service_public + beacon_public
    return hkdf_sha256(shared, salt=salt, info=b"", length=_HKDF_LENGTH)[:IDENTITY_KEY_SIZE]


def public_key(private_key: bytes) -> bytes:
    """The 32-byte X25519 public key of a 32-byte private key (raw RFC 7748 encoding)."""
    return x25519_public_key(private_key)


def resolver_identity_key(service_private: bytes, beacon_public: bytes) -> bytes:
    """The identity key as the resolver derives it: its private key, the beacon's public key."""
    shared = x25519_shared_secret(service_private, beacon_public)
    return _derive(shared, x25519_public_key(service_private), bytes(beacon_public))


def beacon_identity_key(beacon_private: bytes, service_public: bytes) -> bytes:
    """The identity key as the beacon derives it: its private key, the service's public key."""
    shared = x25519_shared_secret(beacon_private, service_public)
    return _derive(shared, bytes(service_public), x25519_public_key(beacon_private))
