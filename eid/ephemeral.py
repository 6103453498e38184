"""Eddystone-EID computation (eddystone-spec.md section 6).

``TK = AES(IK, 00*11 | FF | 00 00 | t[31:16])`` and ``EID = AES(TK, 00*11 | K | t with K low bits
cleared)[:8]``. :class:`EidGenerator` keeps one identity key's AES schedule and the temporary key
of the current 65,536-second block, so consecutive EIDs cost one AES block each.
"""

from __future__ import annotations

import functools
import struct
from typing import Final

from eid.errors import EidError
from eid.primitives import AesBlockCipher

MAX_EXPONENT: Final = 15
"""Rotation exponent K is 0..15: the EID changes every 2**K seconds."""
COUNTER_LIMIT: Final = 1 << 32
"""The beacon counter t is a uint32 of seconds."""
EID_SIZE: Final = 8

_TK_BLOCK: Final = struct.Struct(">11xB2xH")  # 11 zero bytes, 0xFF salt, two zero bytes, t >> 16
_TK_SALT: Final = 0xFF
_EID_BLOCK: Final = struct.Struct(">11xBI")  # 11 zero bytes, K, t with its K low bits cleared

_GENERATOR_CACHE_SIZE: Final = 1024
"""Identity keys whose schedules :func:`compute_eid` keeps: a gateway's hot set, bounded."""


def check_exponent(exponent: object) -> None:
    """Raise :class:`EidError` unless ``exponent`` is a rotation exponent 0..15."""
    if type(exponent) is not int or not 0 <= exponent <= MAX_EXPONENT:
        msg = f"rotation exponent must be an integer 0..{MAX_EXPONENT}, got {exponent!r}"
        raise EidError(msg)


def check_counter(counter: object) -> None:
    """Raise :class:`EidError` unless ``counter`` is a uint32 beacon time counter."""
    if type(counter) is not int or not 0 <= counter < COUNTER_LIMIT:
        msg = f"beacon time counter must be an integer 0..{COUNTER_LIMIT - 1}, got {counter!r}"
        raise EidError(msg)


def quantum_start(exponent: int, counter: int) -> int:
    """The counter with its ``exponent`` low bits cleared: the start of its rotation period."""
    return (counter >> exponent) << exponent


class EidGenerator:
    """EIDs and temporary keys of one identity key.

    Build one per beacon (or use :func:`compute_eid`, which caches them). The identity key is not
    kept as bytes on the object and never appears in its repr.
    """

    __slots__ = ("_ik", "_tk")

    def __init__(self, identity_key: bytes) -> None:
        self._ik = AesBlockCipher(identity_key, what="identity key")
        # (65,536-second block index, its temporary key), replaced as one value so that threads
        # sharing a generator (compute_eid's cache) never pair a key with the wrong block.
        self._tk: tuple[int, AesBlockCipher] = (-1, self._ik)

    def temporary_key(self, counter: int) -> bytes:
        """The 16-byte temporary key for the 65,536-second block that holds ``counter``."""
        check_counter(counter)
        return self._ik.encrypt(_TK_BLOCK.pack(_TK_SALT, counter >> 16))

    def eid(self, exponent: int, counter: int) -> bytes:
        """The 8-byte EID a beacon with rotation exponent ``exponent`` shows at ``counter``."""
        check_exponent(exponent)
        check_counter(counter)
        return self.eid_unchecked(exponent, counter)

    def eid_unchecked(self, exponent: int, counter: int) -> bytes:
        """:meth:`eid` for arguments the caller has already checked (the resolver's hot path)."""
        block_index = counter >> 16
        cached_index, tk = self._tk
        if cached_index != block_index:
            tk = AesBlockCipher(self._ik.encrypt(_TK_BLOCK.pack(_TK_SALT, block_index)))
            self._tk = (block_index, tk)
        return tk.encrypt(_EID_BLOCK.pack(exponent, (counter >> exponent) << exponent))[:EID_SIZE]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<identity key hidden>)"


@functools.lru_cache(maxsize=_GENERATOR_CACHE_SIZE)
def _generator(identity_key: bytes) -> EidGenerator:
    return EidGenerator(identity_key)


def _cached_generator(identity_key: bytes) -> EidGenerator:
    if type(identity_key) is not bytes:
        # Unhashable or mutable key types are not cached (and bad types fail with a clear error).
        return EidGenerator(identity_key)
    return _generator(identity_key)


def temporary_key(identity_key: bytes, counter: int) -> bytes:
    """The 16-byte temporary key TK of ``identity_key`` for beacon time ``counter``."""
    return _cached_generator(identity_key).temporary_key(counter)


def compute_eid(identity_key: bytes, exponent: int, counter: int) -> bytes:
    """The 8-byte Eddystone-EID of ``identity_key`` with exponent ``exponent`` at ``counter``."""
    return _cached_generator(identity_key).eid(exponent, counter)
