"""The errors the gateway raises: one root, :class:`GatewayError`."""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a configuration or registry file.

    ``path`` is the field path (``beacons[2].rotation_exponent``); ``value`` is the offending
    value as text, or ``None`` when it is a secret or there is none to show.
    """

    path: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (got {self.value})"
        return f"{self.path}: {self.message}{shown}"


class ConfigError(GatewayError, ValueError):
    """A configuration or registry file is invalid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")
