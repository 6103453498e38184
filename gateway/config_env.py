"""Environment overrides of configuration fields: ``BEACON_GATEWAY__MQTT__HOST=broker.lan``.

The variable's name after the prefix is the field path, ``__`` between levels, any case; a
number indexes a list (``BEACON_GATEWAY__GATEWAYS__0__RSSI_OFFSET_DB=-3``). The value is read
as a TOML value when it is one (``1883``, ``true``, ``[30, 60]``, ``"text"``) and as a plain
string otherwise (``broker.lan``). Overrides are applied to the file's document before it is
checked, so a bad override is reported like a bad field, naming the variable it came from.
"""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any, Final

from gateway.errors import ConfigError, Problem

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX: Final = "BEACON_GATEWAY__"


def _value(raw: str) -> Any:  # noqa: ANN401 - TOML values are untyped
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError):  # RecursionError: nested too deep
        return raw


def _set(document: dict[str, Any], name: str, raw: str) -> str | Problem:
    """Set the field the variable ``name`` names; its path, or the problem with the name."""
    parts = [part.lower() for part in name[len(PREFIX) :].split("__")]
    if any(not part for part in parts):
        return Problem(name, "is not a field path (empty level)")
    container: Any = document
    path = ""
    for depth, part in enumerate(parts):
        key: int | str
        if isinstance(container, list):
            if not (part.isascii() and part.isdigit()) or int(part) >= len(container):
                return Problem(name, f"{path or '<file>'} has no item {part}")
            path, key = f"{path}[{part}]", int(part)
        elif isinstance(container, dict):
            path, key = (f"{path}.{part}" if path else part), part
        else:
            return Problem(name, f"{path} is not a table")
        if depth == len(parts) - 1:
            container[key] = _value(raw)
        else:
            if isinstance(container, dict) and key not in container:
                container[key] = {}
            container = container[key]
    return path


def apply_environment(
    document: dict[str, Any], environ: Mapping[str, str], source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The document with the overrides applied, and each overridden field path's variable."""
    applied: dict[str, str] = {}
    problems: list[Problem] = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX) or len(name) == len(PREFIX):
            continue
        outcome = _set(document, name, environ[name])
        if isinstance(outcome, Problem):
            problems.append(outcome)
        else:
            applied[outcome] = name
    if problems:
        where = f"{source} (environment)"
        raise ConfigError(where, problems)
    return document, applied


def name_overrides(error: ConfigError, applied: Mapping[str, str]) -> ConfigError:
    """The same error, each problem under an overridden field naming the variable."""
    if not applied:
        return error
    problems = []
    for problem in error.problems:
        variable = next(
            (
                name
                for path, name in applied.items()
                if problem.path == path or problem.path.startswith((f"{path}.", f"{path}["))
            ),
            None,
        )
        message = problem.message if variable is None else f"{problem.message} (from {variable})"
        problems.append(Problem(problem.path, message, problem.value))
    return ConfigError(error.source, problems)
