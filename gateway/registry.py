"""The key registry: which EID beacons the gateway may resolve, with their identity keys.

A TOML file (format in docs/key-registry.md)::

    version = 1

    [service]                                    # the resolver's X25519 key pair (optional;
    private_key = "<64 hex digits>"              #   needed to register beacons by ECDH)

    [[beacons]]
    id = "loyalty-0001"                          # letters, digits and . _ : -
    identity_key = "0102030405060708090a111213141516"  # 16-byte AES key, hex
    rotation_exponent = 10                       # K: the EID changes every 2**K s
    clock_offset = -1767223600                   # beacon counter = unix time + offset
    registered_at = 1767225600                   # optional: how the beacon was registered
    beacon_public_key = "<64 hex digits>"        #   (ECDH registrations)
    initial_clock = 2000
    initial_eid = "<16 hex digits>"

Loading checks everything and reports every problem with its field path. Keys, the service private
key and initial EIDs never appear in an error, a repr or a log line. A registry that others can
read is refused (unless it declares ``test_keys = true``: published keys only), and a registry can
be encrypted at rest (gateway/sealed_file.py).
"""

from __future__ import annotations

import json
import re
import secrets
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr

import eid
from gateway.errors import ConfigError, GatewayError, Problem
from gateway.sealed_file import SealingKey, check_owner_only, seal, unseal, write_owner_only
from gateway.validation import problems_from

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REGISTRY_VERSION: Final = 1
_SECRET_FIELDS: Final = frozenset({"identity_key", "private_key", "initial_eid"})
_PUBLIC_FIELDS: Final = frozenset(
    {
        "version", "test_keys", "id", "rotation_exponent", "clock_offset", "registered_at",
        "beacon_public_key", "initial_clock",
    }
)  # fmt: skip
"""The only fields whose bad values an error may show (any other may hold a key)."""
_OFFSET_LIMIT: Final = 1 << 32
"""A counter is a uint32: an offset beyond +-2**32 s could never give a valid counter."""
_X25519_SIZE: Final = 32
_BEACON_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What the file's ``id`` field accepts (``_BeaconRecord.id``)."""


class RegistryError(GatewayError, ValueError):
    """A change to the registry is refused (duplicate id, no service key, bad record)."""


@dataclass(frozen=True, slots=True, repr=False)
class BeaconKey:
    """A registered EID beacon. The identity key and initial EID are hidden from the repr."""

    beacon_id: str
    identity_key: bytes
    rotation_exponent: int
    clock_offset: int
    registered_at: float | None = None
    beacon_public_key: bytes | None = None
    initial_clock: int | None = None
    initial_eid: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"BeaconKey(beacon_id={self.beacon_id!r}, identity_key=<hidden>, "
            f"rotation_exponent={self.rotation_exponent}, clock_offset={self.clock_offset})"
        )

    @property
    def kind(self) -> str:
        """How the beacon was registered: ``ecdh`` or ``shared-key``."""
        return "ecdh" if self.beacon_public_key is not None else "shared-key"


def _hex_field(text: str, size: int) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size or len(text) != 2 * size:
        msg = f"must be {2 * size} hex digits"
        raise ValueError(msg)
    return value


class _Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    private_key: SecretStr

    @pydantic.field_validator("private_key")
    @classmethod
    def _hex_private(cls, value: SecretStr) -> SecretStr:
        _hex_field(value.get_secret_value(), _X25519_SIZE)
        return value


class _BeaconRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    identity_key: SecretStr
    rotation_exponent: Annotated[int, Field(ge=0, le=15, strict=True)]
    clock_offset: Annotated[int, Field(strict=True, ge=-_OFFSET_LIMIT, le=_OFFSET_LIMIT)]
    registered_at: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    beacon_public_key: str | None = None
    initial_clock: Annotated[int, Field(strict=True, ge=0, lt=1 << 32)] | None = None
    initial_eid: SecretStr | None = None

    @pydantic.field_validator("identity_key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        try:
            _hex_field(value.get_secret_value(), 16)
        except ValueError:
            msg = "must be 32 hex digits (a 16-byte AES key)"
            raise ValueError(msg) from None
        return value

    @pydantic.field_validator("beacon_public_key")
    @classmethod
    def _hex_public(cls, value: str | None) -> str | None:
        if value is not None:
            _hex_field(value, _X25519_SIZE)
        return value

    @pydantic.field_validator("initial_eid")
    @classmethod
    def _hex_eid(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _hex_field(value.get_secret_value(), 8)
        return value


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    version: Literal[1]
    test_keys: Annotated[bool, Field(strict=True)] = False
    service: _Service | None = None
    beacons: list[_BeaconRecord] = Field(default_factory=list)


def _optional_hex(value: SecretStr | str | None) -> bytes | None:
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return bytes.fromhex(text)


def _beacon_key(record: _BeaconRecord) -> BeaconKey:
    return BeaconKey(
        beacon_id=record.id,
        identity_key=bytes.fromhex(record.identity_key.get_secret_value()),
        rotation_exponent=record.rotation_exponent,
        clock_offset=record.clock_offset,
        registered_at=record.registered_at,
        beacon_public_key=_optional_hex(record.beacon_public_key),
        initial_clock=record.initial_clock,
        initial_eid=_optional_hex(record.initial_eid),
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bytes):
        return json.dumps(value.hex())
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _check_storable(key: BeaconKey) -> None:
    """Refuse a beacon whose id or clock offset the registry file does not accept."""
    if not _BEACON_ID.fullmatch(key.beacon_id):
        msg = f"beacon id {key.beacon_id!r} must be 1..128 of A-Z a-z 0-9 . _ : -"
        raise RegistryError(msg)
    if not -_OFFSET_LIMIT <= key.clock_offset <= _OFFSET_LIMIT:
        msg = (
            f"beacon {key.beacon_id!r}: clock offset {key.clock_offset} s is beyond +-2**32 s "
            "(is the registration time right?)"
        )
        raise RegistryError(msg)


class KeyRegistry:
    """The beacons of a registry file, by id, and the resolver's service key if it has one."""

    __slots__ = ("_keys", "_service_private", "test_keys")

    def __init__(
        self,
        keys: list[BeaconKey],
        *,
        service_private: bytes | None = None,
        test_keys: bool = False,
    ) -> None:
        self._keys = {key.beacon_id: key for key in keys}
        self._service_private = service_private
        self.test_keys = test_keys

    @classmethod
    def create(cls, *, test_keys: bool = False) -> KeyRegistry:
        """An empty registry with a fresh X25519 service key pair."""
        return cls([], service_private=secrets.token_bytes(_X25519_SIZE), test_keys=test_keys)

    @classmethod
    def load(cls, path: Path, *, sealing_key: SealingKey | None = None) -> KeyRegistry:
        """Read and check a registry file; raise :class:`ConfigError` listing every problem.

        An encrypted registry needs ``sealing_key``; one that others can read is refused
        (:class:`~gateway.sealed_file.SecretFileError`) unless it declares ``test_keys = true``.
        """
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(source, [Problem("<file>", f"cannot read: {exc.strerror}")]) from None
        try:
            document = tomllib.loads(unseal(raw, sealing_key, path).decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(source, [Problem("<file>", "is not UTF-8 text")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [Problem("<file>", f"is not valid TOML: {exc}")]) from None
        except RecursionError:
            problem = Problem("<file>", "is not valid TOML: nested too deep")
            raise ConfigError(source, [problem]) from None
        registry = cls.from_document(document, source=source)
        if not registry.test_keys:
            check_owner_only(path)
        return registry

    @classmethod
    def from_document(cls, document: dict[str, Any], *, source: str = "<registry>") -> KeyRegistry:
        """Check an already parsed registry document (see :meth:`load`)."""
        try:
            parsed = _RegistryFile.model_validate(document)
        except pydantic.ValidationError as exc:
            raise ConfigError(
                source, problems_from(exc, document, _SECRET_FIELDS, public_fields=_PUBLIC_FIELDS)
            ) from None
        problems = []
        first_of_id: dict[str, int] = {}
        first_of_key: dict[bytes, int] = {}
        keys = []
        for index, record in enumerate(parsed.beacons):
            key = _beacon_key(record)
            if record.id in first_of_id:
                message = f"duplicate id, first used by beacons[{first_of_id[record.id]}]"
                problems.append(Problem(f"beacons[{index}].id", message, repr(record.id)))
            if key.identity_key in first_of_key:
                message = f"same identity key as beacons[{first_of_key[key.identity_key]}]"
                problems.append(Problem(f"beacons[{index}].identity_key", message))
            first_of_id.setdefault(record.id, index)
            first_of_key.setdefault(key.identity_key, index)
            keys.append(key)
        if problems:
            raise ConfigError(source, problems)
        service = parsed.service
        private = None if service is None else bytes.fromhex(service.private_key.get_secret_value())
        return cls(keys, service_private=private, test_keys=parsed.test_keys)

    def save(self, path: Path, *, sealing_key: SealingKey | None = None) -> None:
        """Write the registry (mode 0600, atomically), encrypted if ``sealing_key`` is given."""
        data = self.to_toml().encode("utf-8")
        write_owner_only(path, seal(data, sealing_key) if sealing_key is not None else data)

    def to_toml(self) -> str:
        """The registry file's text (it holds the secrets: write it only with :meth:`save`)."""
        lines = [f"version = {REGISTRY_VERSION}"]
        if self.test_keys:
            lines.append("test_keys = true")
        if self._service_private is not None:
            lines += ["", "[service]", f"private_key = {_toml_value(self._service_private)}"]
        for key in self._keys.values():
            lines += ["", "[[beacons]]", f"id = {_toml_value(key.beacon_id)}"]
            for name in (
                "identity_key", "rotation_exponent", "clock_offset", "registered_at",
                "beacon_public_key", "initial_clock", "initial_eid",
            ):  # fmt: skip
                value = getattr(key, name)
                if value is not None:
                    lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @property
    def service_public_key(self) -> bytes | None:
        """The resolver's X25519 public key, for provisioning beacons (None if no service key)."""
        return None if self._service_private is None else eid.public_key(self._service_private)

    def add(self, key: BeaconKey, *, replace_existing: bool = False) -> None:
        """Add a beacon; an existing id or identity key is refused unless ``replace_existing``.

        So is an id or a clock offset the registry file could not hold (it would not load).
        """
        _check_storable(key)
        if key.beacon_id in self._keys and not replace_existing:
            msg = f"beacon {key.beacon_id!r} is registered already (use --replace to replace it)"
            raise RegistryError(msg)
        for other in self._keys.values():
            if other.beacon_id != key.beacon_id and other.identity_key == key.identity_key:
                msg = f"beacon {other.beacon_id!r} has the same identity key"
                raise RegistryError(msg)
        self._keys[key.beacon_id] = key

    def remove(self, beacon_id: str) -> bool:
        """Remove a beacon; return whether it was there."""
        return self._keys.pop(beacon_id, None) is not None

    def register_ecdh(
        self,
        beacon_id: str,
        *,
        beacon_public_key: bytes,
        rotation_exponent: int,
        initial_clock: int,
        initial_eid: bytes,
        registered_at: float,
        service_public_key: bytes | None = None,
    ) -> BeaconKey:
        """Verify a registration record with the service key and add the beacon.

        Raises :class:`eid.RegistrationError` (naming the failed check) or :class:`RegistryError`.
        """
        if self._service_private is None:
            msg = "this registry has no service key pair: create it with 'keys init'"
            raise RegistryError(msg)
        registered = eid.register_ecdh(
            service_private=self._service_private,
            beacon_public=beacon_public_key,
            exponent=rotation_exponent,
            initial_clock=initial_clock,
            initial_eid=initial_eid,
            registered_at=registered_at,
            service_public=service_public_key,
        )
        key = BeaconKey(
            beacon_id,
            registered.identity_key,
            registered.exponent,
            registered.clock_offset,
            registered_at=float(registered_at),
            beacon_public_key=bytes(beacon_public_key),
            initial_clock=initial_clock,
            initial_eid=bytes(initial_eid),
        )
        self.add(key)
        return key

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[BeaconKey]:
        return iter(self._keys.values())

    def __getitem__(self, beacon_id: str) -> BeaconKey:
        return self._keys[beacon_id]

    def __contains__(self, beacon_id: object) -> bool:
        return beacon_id in self._keys

    def __repr__(self) -> str:
        service = "yes" if self._service_private is not None else "no"
        return f"KeyRegistry(beacons={len(self._keys)}, service_key={service})"

    def resolver(self, resolver: eid.Resolver | None = None) -> eid.Resolver:
        """Register every beacon in ``resolver`` (a default :class:`eid.Resolver` if None)."""
        resolver = eid.Resolver() if resolver is None else resolver
        for key in self._keys.values():
            resolver.register(
                key.beacon_id, key.identity_key, key.rotation_exponent, key.clock_offset
            )
        return resolver
