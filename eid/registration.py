"""Beacon registration, as Google's Proximity Beacon API took it (eddystone-spec.md section 8.1).

A registration record carries the beacon's X25519 public key, its rotation exponent K, its clock
value when provisioned and the EID it showed then, plus the wall time of registration. The
resolver derives the identity key from its own service private key, checks that the key, K and
clock reproduce the initial EID, and derives the clock offset (beacon counter minus unix time).
The shared-identity-key variant gives the identity key directly.

Every failed check raises :class:`RegistrationError` naming the check; when the initial EID does
not match, the likely cause (another exponent, a clock a period off, the wrong salt order) is
said if one of those explains it.
"""

from __future__ import annotations

import enum
import hmac
import math
from dataclasses import dataclass
from typing import Final

from eid.ephemeral import COUNTER_LIMIT, MAX_EXPONENT, compute_eid
from eid.errors import EidError, InvalidKeyError
from eid.identity import resolver_identity_key
from eid.primitives import check_aes_key, hkdf_sha256, x25519_public_key, x25519_shared_secret

_EID_SIZE: Final = 8


class RegistrationCheck(enum.StrEnum):
    """The check of a registration record that failed."""

    SERVICE_KEY = "service_key"
    BEACON_KEY = "beacon_key"
    IDENTITY_KEY = "identity_key"
    EXPONENT = "exponent"
    INITIAL_CLOCK = "initial_clock"
    INITIAL_EID = "initial_eid"
    REGISTERED_AT = "registered_at"


class RegistrationError(EidError):
    """A registration record failed a check; ``check`` says which."""

    def __init__(self, check: RegistrationCheck, message: str) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True, slots=True, repr=False)
class RegisteredBeacon:
    """What the resolver keeps of a verified registration (the identity key is not in the repr)."""

    identity_key: bytes
    exponent: int
    clock_offset: int

    def __repr__(self) -> str:
        return (
            f"RegisteredBeacon(identity_key=<hidden>, exponent={self.exponent}, "
            f"clock_offset={self.clock_offset})"
        )


def _check_common(exponent: object, initial_clock: object, registered_at: object) -> int:
    if type(exponent) is not int or not 0 <= exponent <= MAX_EXPONENT:
        msg = f"rotation exponent must be 0..{MAX_EXPONENT}, got {exponent!r}"
        raise RegistrationError(RegistrationCheck.EXPONENT, msg)
    if type(initial_clock) is not int or not 0 <= initial_clock < COUNTER_LIMIT:
        msg = f"initial clock value must be a uint32, got {initial_clock!r}"
        raise RegistrationError(RegistrationCheck.INITIAL_CLOCK, msg)
    if (
        isinstance(registered_at, bool)
        or not isinstance(registered_at, int | float)
        or not math.isfinite(registered_at)
        or registered_at < 0
    ):
        msg = f"registration time must be non-negative unix seconds, got {registered_at!r}"
        raise RegistrationError(RegistrationCheck.REGISTERED_AT, msg)
    return math.floor(registered_at)


def _check_eid_bytes(initial_eid: object) -> bytes:
    if not isinstance(initial_eid, bytes | bytearray) or len(initial_eid) != _EID_SIZE:
        msg = f"initial EID must be {_EID_SIZE} bytes"
        raise RegistrationError(RegistrationCheck.INITIAL_EID, msg)
    return bytes(initial_eid)


def _mismatch_hint(identity_key: bytes, exponent: int, clock: int, initial_eid: bytes) -> str:
    """The likely cause of an initial EID that does not match, if a near miss explains it."""
    for other in range(MAX_EXPONENT + 1):
        if other != exponent and hmac.compare_digest(
            compute_eid(identity_key, other, clock), initial_eid
        ):
            return f"; it matches rotation exponent {other}: the record's exponent is wrong"
    for shift in (-1, 1):
        near = clock + (shift << exponent)
        if 0 <= near < COUNTER_LIMIT and hmac.compare_digest(
            compute_eid(identity_key, exponent, near), initial_eid
        ):
            direction = "previous" if shift < 0 else "next"
            return f"; it matches the {direction} rotation period: the clock value was read late"
    return ""


def _mismatch(exponent: int, hint: str) -> RegistrationError:
    msg = (
        "initial EID does not match the EID the identity key gives at the initial clock value "
        f"with exponent {exponent}{hint}"
    )
    return RegistrationError(RegistrationCheck.INITIAL_EID, msg)


def register_ecdh(
    *,
    service_private: bytes,
    beacon_public: bytes,
    exponent: int,
    initial_clock: int,
    initial_eid: bytes,
    registered_at: float,
    service_public: bytes | None = None,
) -> RegisteredBeacon:
    """Verify an X25519 registration record and derive what the resolver keeps.

    ``service_public``, when the record carries it, must be this resolver's public key.
    """
    second = _check_common(exponent, initial_clock, registered_at)
    eid8 = _check_eid_bytes(initial_eid)
    try:
        own_public = x25519_public_key(service_private)
    except InvalidKeyError as exc:
        raise RegistrationError(RegistrationCheck.SERVICE_KEY, str(exc)) from None
    if service_public is not None and not hmac.compare_digest(own_public, bytes(service_public)):
        msg = "the record's service public key is not this resolver's (another service key pair)"
        raise RegistrationError(RegistrationCheck.SERVICE_KEY, msg)
    try:
        identity_key = resolver_identity_key(service_private, beacon_public)
    except InvalidKeyError as exc:
        raise RegistrationError(RegistrationCheck.BEACON_KEY, f"beacon public key: {exc}") from None
    if not hmac.compare_digest(compute_eid(identity_key, exponent, initial_clock), eid8):
        shared = x25519_shared_secret(service_private, beacon_public)
        salt = bytes(beacon_public) + own_public
        swapped = hkdf_sha256(shared, salt=salt, info=b"", length=32)[:16]
        if hmac.compare_digest(compute_eid(swapped, exponent, initial_clock), eid8):
            hint = "; it matches the key derived with the HKDF salt in beacon-then-service order"
        else:
            hint = _mismatch_hint(identity_key, exponent, initial_clock, eid8)
        raise _mismatch(exponent, hint)
    return RegisteredBeacon(identity_key, exponent, initial_clock - second)


def register_identity_key(
    *,
    identity_key: bytes,
    exponent: int,
    initial_clock: int,
    registered_at: float,
    initial_eid: bytes | None = None,
) -> RegisteredBeacon:
    """The shared-identity-key variant: the identity key is given; the EID is checked if given."""
    second = _check_common(exponent, initial_clock, registered_at)
    try:
        check_aes_key(identity_key, "identity key")
    except InvalidKeyError as exc:
        raise RegistrationError(RegistrationCheck.IDENTITY_KEY, str(exc)) from None
    key = bytes(identity_key)
    if initial_eid is not None:
        eid8 = _check_eid_bytes(initial_eid)
        if not hmac.compare_digest(compute_eid(key, exponent, initial_clock), eid8):
            hint = _mismatch_hint(key, exponent, initial_clock, eid8)
            raise _mismatch(exponent, hint)
    return RegisteredBeacon(key, exponent, initial_clock - second)
