"""The key registry file: which EID beacons the gateway may resolve, with their identity keys.

A TOML file::

    version = 1

    [[beacons]]
    id = "loyalty-0001"                          # letters, digits and . _ : -
    identity_key = "0102030405060708090a111213141516"  # 16-byte AES key, hex
    rotation_exponent = 10                       # K: the EID changes every 2**K s
    clock_offset = -1767223600                   # beacon counter = unix time + offset

Loading checks everything and reports every problem with its field path; an identity key's value
never appears in an error, a repr or a log line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr

import eid
from gateway.errors import ConfigError, Problem

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REGISTRY_VERSION: Final = 1
_SECRET_FIELDS: Final = frozenset({"identity_key"})
_KEY_HEX_DIGITS: Final = 32
_OFFSET_LIMIT: Final = 1 << 32
"""A counter is a uint32: an offset beyond +-2**32 s could never give a valid counter."""


@dataclass(frozen=True, slots=True, repr=False)
class BeaconKey:
    """A registered EID beacon. The identity key is hidden from the repr."""

    beacon_id: str
    identity_key: bytes
    rotation_exponent: int
    clock_offset: int

    def __repr__(self) -> str:
        return (
            f"BeaconKey(beacon_id={self.beacon_id!r}, identity_key=<hidden>, "
            f"rotation_exponent={self.rotation_exponent}, clock_offset={self.clock_offset})"
        )


class _BeaconRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    identity_key: SecretStr
    rotation_exponent: Annotated[int, Field(ge=0, le=15, strict=True)]
    clock_offset: Annotated[int, Field(strict=True, ge=-_OFFSET_LIMIT, le=_OFFSET_LIMIT)]

    @pydantic.field_validator("identity_key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != _KEY_HEX_DIGITS // 2 or len(text) != _KEY_HEX_DIGITS:
            msg = f"must be {_KEY_HEX_DIGITS} hex digits (a 16-byte AES key)"
            raise ValueError(msg)
        return value


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    version: Literal[1]
    beacons: list[_BeaconRecord] = Field(default_factory=list)


def _path_text(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "<file>"


def _lookup(document: Any, location: tuple[int | str, ...]) -> tuple[bool, Any]:  # noqa: ANN401 - TOML values are untyped
    value = document
    for part in location:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, value


def _problems(error: pydantic.ValidationError, document: dict[str, Any]) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        location = tuple(item["loc"])
        secret = any(part in _SECRET_FIELDS for part in location)
        found, value = _lookup(document, location)
        shown = repr(value) if found and not secret else None
        message = item["msg"].removeprefix("Value error, ")
        problems.append(Problem(_path_text(location), message, shown))
    return problems


class KeyRegistry:
    """The beacons of a registry file, by id."""

    __slots__ = ("_keys",)

    def __init__(self, keys: list[BeaconKey]) -> None:
        self._keys = {key.beacon_id: key for key in keys}

    @classmethod
    def load(cls, path: Path) -> KeyRegistry:
        """Read and check a registry file; raise :class:`ConfigError` listing every problem."""
        source = str(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, [Problem("<file>", f"cannot read: {exc.strerror}")]) from None
        except UnicodeDecodeError:
            raise ConfigError(source, [Problem("<file>", "is not UTF-8 text")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [Problem("<file>", f"is not valid TOML: {exc}")]) from None
        return cls.from_document(document, source=source)

    @classmethod
    def from_document(cls, document: dict[str, Any], *, source: str = "<registry>") -> KeyRegistry:
        """Check an already parsed registry document (see :meth:`load`)."""
        try:
            parsed = _RegistryFile.model_validate(document)
        except pydantic.ValidationError as exc:
            raise ConfigError(source, _problems(exc, document)) from None
        problems = []
        first_of_id: dict[str, int] = {}
        first_of_key: dict[bytes, int] = {}
        keys = []
        for index, record in enumerate(parsed.beacons):
            key = bytes.fromhex(record.identity_key.get_secret_value())
            if record.id in first_of_id:
                message = f"duplicate id, first used by beacons[{first_of_id[record.id]}]"
                problems.append(Problem(f"beacons[{index}].id", message, repr(record.id)))
            if key in first_of_key:
                message = f"same identity key as beacons[{first_of_key[key]}]"
                problems.append(Problem(f"beacons[{index}].identity_key", message))
            first_of_id.setdefault(record.id, index)
            first_of_key.setdefault(key, index)
            keys.append(BeaconKey(record.id, key, record.rotation_exponent, record.clock_offset))
        if problems:
            raise ConfigError(source, problems)
        return cls(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[BeaconKey]:
        return iter(self._keys.values())

    def __getitem__(self, beacon_id: str) -> BeaconKey:
        return self._keys[beacon_id]

    def __repr__(self) -> str:
        return f"KeyRegistry(beacons={len(self._keys)})"

    def resolver(self, resolver: eid.Resolver | None = None) -> eid.Resolver:
        """Register every beacon in ``resolver`` (a default :class:`eid.Resolver` if None)."""
        resolver = eid.Resolver() if resolver is None else resolver
        for key in self._keys.values():
            resolver.register(
                key.beacon_id, key.identity_key, key.rotation_exponent, key.clock_offset
            )
        return resolver
