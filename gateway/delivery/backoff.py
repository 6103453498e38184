"""Capped exponential backoff with full jitter, for reconnects and refused publishes.

Gateways behind one broker lose it together (a broker restart, a network outage) and, with a
fixed or lightly jittered delay, come back together: a reconnect storm that can knock the broker
over again. "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter") draws each
delay uniformly from ``[0, min(cap, base * 2**attempt)]``, which spreads a fleet over the whole
window while keeping the expected delay at half the ceiling.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

_MAX_EXPONENT: Final = 64
"""Beyond this the ceiling is the cap for any sane base; it also keeps ``2.0**n`` finite."""


def backoff_ceiling(attempt: int, *, base_s: float, cap_s: float) -> float:
    """The longest delay before retry ``attempt`` (0-based): ``min(cap, base * 2**attempt)``."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    return min(cap_s, base_s * 2.0**exponent)


def full_jitter(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform in ``[0, ceiling)``.

    ``rng`` returns a float in ``[0, 1)`` (tests pass a fixed one).
    """
    return backoff_ceiling(attempt, base_s=base_s, cap_s=cap_s) * rng()
