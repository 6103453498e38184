"""What a resolver answers: a match, the reason there is none, and what it knows of a beacon."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ResolutionReason(enum.StrEnum):
    """Why a lookup did or did not resolve; stable values, fit for metric labels."""

    RESOLVED = "resolved"
    UNKNOWN = "unknown"
    """No registered beacon has shown or will soon show this EID."""
    STALE = "stale"
    """A registered beacon's EID from a period outside its window: replayed, or far too late."""
    AMBIGUOUS = "ambiguous"
    """Two or more beacons show this EID within their windows: attributed to none."""


@dataclass(frozen=True, slots=True)
class Match:
    """An EID resolved to a beacon.

    ``counter`` is the beacon's counter at the start of the rotation period whose EID matched
    (what :func:`eid.decrypt_etlm` needs); ``period_offset`` is that period relative to the one
    the beacon's clock offset predicted (-1 previous, 0 expected, +1 next, ...).
    """

    beacon_id: str
    counter: int
    period_offset: int


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of :meth:`Resolver.lookup`: a match, or the reason there is none.

    ``beacon_ids`` names the beacons involved: the match's, the stale EID's owner, or the
    beacons an ambiguous EID belongs to.
    """

    reason: ResolutionReason
    match: Match | None = None
    beacon_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BeaconState:
    """What the resolver knows of one beacon (no key material)."""

    beacon_id: str
    exponent: int
    clock_offset: int
    last_resolved: float | None
