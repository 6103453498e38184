"""An independent second implementation of the Eddystone crypto, written from the spec only.

Built on pycryptodome (a test-only dependency; the package under test uses ``cryptography``), so
a property test that compares ``eid`` with this module compares two unrelated code paths. Every
function names the section of ``eddystone-spec.md`` it follows. ``x25519_rfc7748`` is a third,
pure-integer X25519 (RFC 7748 section 5) used to show that low-order points give an all-zero
shared secret, which pycryptodome refuses to compute.
"""

from __future__ import annotations

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import (
    import_x25519_private_key,
    import_x25519_public_key,
    key_agreement,
)
from Crypto.Protocol.KDF import HKDF

SCHEMES = ("http://www.", "https://www.", "http://", "https://")
"""URL scheme prefixes by code 0x00..0x03 (spec section 3)."""
EXPANSIONS = (
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
    ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
)  # fmt: skip
"""URL expansion texts by code 0x00..0x0D (spec section 3)."""
MAX_URL_BODY = 17

_P = 2**255 - 19
_A24 = 121665


# ------------------------------------------------------------------------------ EID (section 6)


def tk_block(counter: int) -> bytes:
    """TKD: 11 zero bytes, 0xFF, two zero bytes, the top 16 bits of t (not masked by K)."""
    return bytes(11) + b"\xff" + bytes(2) + ((counter >> 16) & 0xFFFF).to_bytes(2, "big")


def eid_block(exponent: int, counter: int) -> bytes:
    """ED: 11 zero bytes, K, then t with its K lowest bits cleared (uint32 BE)."""
    return bytes(11) + bytes((exponent,)) + ((counter >> exponent) << exponent).to_bytes(4, "big")


def aes_ecb(key: bytes, block: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).encrypt(block)


def temporary_key(identity_key: bytes, counter: int) -> bytes:
    return aes_ecb(identity_key, tk_block(counter))


def compute_eid(identity_key: bytes, exponent: int, counter: int) -> bytes:
    return aes_ecb(temporary_key(identity_key, counter), eid_block(exponent, counter))[:8]


# ------------------------------------------------------------------ IK derivation (section 7)


def x25519(private_key: bytes, peer_public: bytes) -> bytes:
    """X25519 shared secret via pycryptodome (raises ValueError on a low-order peer key)."""
    return key_agreement(
        static_priv=import_x25519_private_key(private_key),
        static_pub=import_x25519_public_key(peer_public),
        kdf=bytes,
    )


def x25519_public(private_key: bytes) -> bytes:
    return x25519_rfc7748(private_key, (9).to_bytes(32, "little"))


def x25519_rfc7748(scalar: bytes, u_coordinate: bytes) -> bytes:
    """RFC 7748 section 5 X25519: clamped scalar, Montgomery ladder over GF(2**255 - 19)."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    n = int.from_bytes(k, "little")
    x1 = (int.from_bytes(u_coordinate, "little") & ((1 << 255) - 1)) % _P
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for bit in reversed(range(255)):
        k_t = (n >> bit) & 1
        swap ^= k_t
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = k_t
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def identity_key_from_shared(shared: bytes, service_public: bytes, beacon_public: bytes) -> bytes:
    """IK = HKDF-SHA256(IKM=shared, salt=service public || beacon public, info=empty)[:16]."""
    return HKDF(shared, 32, service_public + beacon_public, SHA256)[:16]


def resolver_identity_key(service_private: bytes, beacon_public: bytes) -> bytes:
    shared = x25519(service_private, beacon_public)
    return identity_key_from_shared(shared, x25519_public(service_private), beacon_public)


def beacon_identity_key(beacon_private: bytes, service_public: bytes) -> bytes:
    shared = x25519(beacon_private, service_public)
    return identity_key_from_shared(shared, service_public, x25519_public(beacon_private))


# ------------------------------------------------------------------------------- eTLM (section 9)


def eax(
    key: bytes, nonce: bytes, header: bytes, plaintext: bytes, mac_len: int = 16
) -> tuple[bytes, bytes]:
    cipher = AES.new(key, AES.MODE_EAX, nonce=nonce, mac_len=mac_len)
    cipher.update(header)
    return cipher.encrypt_and_digest(plaintext)


def etlm_nonce(exponent: int, counter: int, salt: bytes) -> bytes:
    return ((counter >> exponent) << exponent).to_bytes(4, "big") + salt


def encrypt_etlm(
    identity_key: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> bytes:
    """The 18-byte frame ``20 01 | ciphertext(12) | salt(2) | MIC(2)``."""
    ciphertext, mic = eax(identity_key, etlm_nonce(exponent, counter, salt), b"", telemetry, 2)
    return b"\x20\x01" + ciphertext + salt + mic


def decrypt_etlm(identity_key: bytes, exponent: int, counter: int, frame: bytes) -> bytes | None:
    """The 12 telemetry bytes, or None when the MIC does not verify."""
    ciphertext, salt, mic = frame[2:14], frame[14:16], frame[16:18]
    nonce = etlm_nonce(exponent, counter, salt)
    cipher = AES.new(identity_key, AES.MODE_EAX, nonce=nonce, mac_len=2)
    try:
        return cipher.decrypt_and_verify(ciphertext, mic)
    except ValueError:
        return None


# ------------------------------------------------------------------------- lock (section 8.4)


def unlock_token(lock_code: bytes, challenge: bytes) -> bytes:
    return aes_ecb(lock_code, challenge)
