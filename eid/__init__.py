"""Eddystone protocol core: the wire format and the EID identity cryptography.

Pure: no I/O, no clock, no logging, no randomness. Time and random salts come in as arguments.
The public API is the contract in docs/architecture.md; every error is an :class:`EidError`.
"""

from __future__ import annotations

from eid import frames
from eid.ephemeral import EidGenerator, compute_eid, temporary_key
from eid.errors import EidError, FrameError, FrameErrorReason, IntegrityError, InvalidKeyError
from eid.identity import beacon_identity_key, public_key, resolver_identity_key
from eid.lock import unlock_token
from eid.registration import (
    RegisteredBeacon,
    RegistrationCheck,
    RegistrationError,
    register_ecdh,
    register_identity_key,
)
from eid.resolver import BeaconState, Match, Resolution, ResolutionReason, Resolver
from eid.telemetry import decrypt_etlm, encrypt_etlm

__all__ = [
    "BeaconState",
    "EidError",
    "EidGenerator",
    "FrameError",
    "FrameErrorReason",
    "IntegrityError",
    "InvalidKeyError",
    "Match",
    "RegisteredBeacon",
    "RegistrationCheck",
    "RegistrationError",
    "Resolution",
    "ResolutionReason",
    "Resolver",
    "beacon_identity_key",
    "compute_eid",
    "decrypt_etlm",
    "encrypt_etlm",
    "frames",
    "public_key",
    "register_ecdh",
    "register_identity_key",
    "resolver_identity_key",
    "temporary_key",
    "unlock_token",
]
