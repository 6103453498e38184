"""Files that hold secrets: owner-only permissions, atomic writes, optional encryption at rest.

A sealed file starts with the line ``beacon-gateway-sealed: fernet`` and carries its content as a
Fernet token (AES-128-CBC with HMAC-SHA256, from ``cryptography``): a wrong key or a tampered
file fails authentication and is refused. The key is a Fernet key (32 bytes, URL-safe base64),
read from ``--registry-key-file``, the ``BEACON_GATEWAY_REGISTRY_KEY`` environment variable, or
the systemd credential ``registry-key`` (``$CREDENTIALS_DIRECTORY/registry-key``), in that order.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import GatewayError

SEALED_HEADER: Final = b"beacon-gateway-sealed: fernet\n"
KEY_ENVIRONMENT: Final = "BEACON_GATEWAY_REGISTRY_KEY"
KEY_CREDENTIAL: Final = "registry-key"
_GROUP_OR_OTHER: Final = 0o077


class SecretFileError(GatewayError):
    """A secret file cannot be read or written safely; the message says how to fix it."""


@dataclass(frozen=True, slots=True, repr=False)
class SealingKey:
    """A Fernet key and where it came from (the key itself is never shown)."""

    key: bytes
    source: str

    def __repr__(self) -> str:
        return f"SealingKey(source={self.source!r}, key=<hidden>)"


def new_sealing_key() -> bytes:
    """A fresh Fernet key (URL-safe base64 text) for encrypting a registry at rest."""
    return Fernet.generate_key()


def find_secret(
    path: Path | None, environment: str, credential: str, what: str
) -> tuple[bytes, str] | None:
    """A secret and where it came from; None if none is set.

    From ``path``, else the ``environment`` variable, else the systemd credential
    ``credential`` (``$CREDENTIALS_DIRECTORY``). ``what`` names the secret in errors, which
    never hold its value.
    """
    if path is not None:
        return _read_secret(path, what), str(path)
    from_environment = os.environ.get(environment)
    if from_environment:
        return from_environment.encode(), environment
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        file = Path(credentials) / credential
        if file.exists():
            return _read_secret(file, what), f"systemd credential {credential}"
    return None


def find_sealing_key(key_file: Path | None) -> SealingKey | None:
    """The registry key from the key file, the environment or a systemd credential, if any."""
    found = find_secret(key_file, KEY_ENVIRONMENT, KEY_CREDENTIAL, "registry key")
    return None if found is None else SealingKey(found[0].strip(), found[1])


def _read_secret(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        msg = f"cannot read the {what} file {path}: {exc.strerror}"
        raise SecretFileError(msg) from None


def _fernet(key: SealingKey) -> Fernet:
    try:
        return Fernet(key.key)
    except (ValueError, TypeError):
        msg = f"the registry key from {key.source} is not a Fernet key (32 bytes, URL-safe base64)"
        raise SecretFileError(msg) from None


def check_owner_only(path: Path) -> None:
    """Refuse a file that its group or others can read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _GROUP_OR_OTHER:
        msg = (
            f"{path} holds secrets but its mode is {mode:04o}: others can read it. "
            f"Run: chmod 600 {path}"
        )
        raise SecretFileError(msg)


def is_sealed(data: bytes) -> bool:
    """Whether file content is a sealed (encrypted) file."""
    return data.startswith(SEALED_HEADER)


def unseal(data: bytes, key: SealingKey | None, path: Path) -> bytes:
    """The plaintext of sealed file content (plain content is returned as it is)."""
    if not is_sealed(data):
        return data
    if key is None:
        msg = (
            f"{path} is encrypted: give its key with --registry-key-file, "
            f"${KEY_ENVIRONMENT} or the systemd credential {KEY_CREDENTIAL}"
        )
        raise SecretFileError(msg)
    try:
        return _fernet(key).decrypt(data[len(SEALED_HEADER) :].strip())
    except InvalidToken:
        msg = (
            f"{path} does not decrypt with the key from {key.source}: "
            "wrong key, or the file was altered"
        )
        raise SecretFileError(msg) from None


def seal(plaintext: bytes, key: SealingKey) -> bytes:
    """Sealed file content for ``plaintext``."""
    return SEALED_HEADER + _fernet(key).encrypt(plaintext) + b"\n"


def write_owner_only(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), mode 0600."""
    directory = path.parent if str(path.parent) else Path()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
