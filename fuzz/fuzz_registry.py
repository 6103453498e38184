"""Fuzz key registry files, plain and encrypted at rest (gateway/registry.py, sealed_file.py).

Input: a mode byte, then a registry file's content. Modes (the byte modulo 4): 0 the content as
the file, loaded without a key; 1 the same, loaded with a key; 2 the content sealed with the
key it is loaded with; 3 sealed with another key. :meth:`KeyRegistry.load` then reads the file
(mode 0600). Allowed: :class:`ConfigError` (every problem, with its field path) and
:class:`SecretFileError` (encrypted without a key, wrong key, altered). Properties: no error
shows a key of the file; a registry that loads writes back (``to_toml``) to the same registry,
and its beacons register in a resolver.

    .venv/bin/python fuzz/fuzz_registry.py -runs=100000 fuzz/corpus/registry
"""

from __future__ import annotations

import re
from typing import Final

from contract import ContractError, instrumented, main, no_secret_in, scratch_file, total

with instrumented("tomllib"):
    import tomllib

    from gateway.errors import ConfigError
    from gateway.registry import KeyRegistry
    from gateway.sealed_file import SealingKey, SecretFileError, seal

KEY: Final = SealingKey(b"ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=", "fuzz key")
OTHER_KEY: Final = SealingKey(b"b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q=", "other key")
_HEX_VALUE: Final = re.compile(rb'([A-Za-z0-9_-]+)\s*=\s*"([0-9a-fA-F]{16,64})"')
"""``name = "hex"``: a key, an initial EID or a private key, unless ``name`` is public."""
_PUBLIC: Final = frozenset({b"id", b"beacon_public_key"})


def _file(mode: int, content: bytes) -> tuple[bytes, SealingKey | None]:
    if mode == 0:
        return content, None
    if mode == 1:
        return content, KEY
    return seal(content, KEY), KEY if mode == 2 else OTHER_KEY  # noqa: PLR2004


def _same(registry: KeyRegistry) -> None:
    again = KeyRegistry.from_document(tomllib.loads(registry.to_toml()))
    if again.to_toml() != registry.to_toml() or [repr(k) for k in again] != [
        repr(k) for k in registry
    ]:
        msg = "a registry written back does not read the same"
        raise ContractError(msg)


def check(data: bytes) -> None:
    """One registry file, loaded as the mode byte says."""
    if not data:
        return
    content, key = _file(data[0] % 4, data[1:])
    secrets = [
        bytes.fromhex(text.decode())
        for name, text in _HEX_VALUE.findall(data)
        if name not in _PUBLIC and len(text) % 2 == 0
    ]
    with scratch_file("registry.toml", content) as path:
        try:
            registry = KeyRegistry.load(path, sealing_key=key)
        except (ConfigError, SecretFileError) as exc:
            no_secret_in(str(exc), *secrets)
            raise
    _same(registry)
    registry.resolver()


if __name__ == "__main__":
    main(
        total(check, (ConfigError, SecretFileError)),
        max_len=4096,
        dictionaries=("toml", "registry"),
    )
