"""Turning pydantic's validation errors into :class:`Problem` lines: field path and bad value."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, Problem

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    import pydantic


def path_text(location: tuple[int | str, ...]) -> str:
    """``beacons[2].rotation_exponent`` from pydantic's location tuple."""
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


def problems_from(
    error: pydantic.ValidationError,
    document: Any,  # noqa: ANN401 - TOML values are untyped
    secret_fields: Collection[str] = (),
    *,
    public_fields: Collection[str] | None = None,
) -> list[Problem]:
    """One problem per validation error, with the bad value unless it may be a secret.

    Never shown: values under a ``secret_fields`` field, values of unknown keys (the key is
    the problem, and a misspelt ``password`` or ``identity_key`` would echo its secret), and,
    when ``public_fields`` is given, the value of any field not named there (a file of secrets
    allows only its known-harmless fields, so that ``service = "<key>"`` is not echoed either).
    """
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        location = tuple(item["loc"])
        secret = (
            item["type"] == "extra_forbidden"
            or any(part in secret_fields for part in location)
            or (public_fields is not None and not (location and location[-1] in public_fields))
        )
        found, value = _lookup(document, location)
        shown = repr(value) if found and not secret else None
        message = item["msg"].removeprefix("Value error, ")
        problems.append(Problem(path_text(location), message, shown))
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's document, or :class:`ConfigError` saying why it cannot be read."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, [Problem("<file>", f"cannot read: {exc.strerror}")]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, [Problem("<file>", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [Problem("<file>", f"is not valid TOML: {exc}")]) from None
    except RecursionError:
        problem = Problem("<file>", "is not valid TOML: nested too deep")
        raise ConfigError(source, [problem]) from None
