"""The naive presence a typical open-source gateway does, kept as the yardstick to beat.

Raw RSSI, one threshold, one fixed timeout: each gateway's latest raw RSSI counts while it is
above :data:`BASELINE_THRESHOLD_DBM` and younger than :data:`BASELINE_TIMEOUT_S`; the beacon is in
the zone of the strongest such gateway, switching as soon as another one is stronger; it exits
when no gateway has heard it above the threshold for the timeout. No filtering, no debouncing,
no margin and no per-beacon timeout: the scoring tool runs it on the same sightings and the same
identity as the real pipeline, so the difference is the presence logic alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.core.presence import ChangeKind, ExitReason, PresenceChange
from gateway.core.signal import Proximity

BASELINE_THRESHOLD_DBM: Final = -85.0
"""Typical "present" cut-off of room-presence trackers."""
BASELINE_TIMEOUT_S: Final = 10.0
"""Typical fixed "away" timeout."""


@dataclass(slots=True)
class _State:
    latest: dict[str, tuple[float, float]] = field(default_factory=dict)  # gateway -> rssi, at
    zone: str | None = None
    entered_at: float = 0.0
    last_at: float = 0.0


class NaiveBaseline:
    """Raw RSSI threshold with one fixed timeout; same ``observe``/``tick`` shape as presence."""

    def __init__(
        self,
        zone_of: dict[str, str],
        *,
        threshold_dbm: float = BASELINE_THRESHOLD_DBM,
        timeout_s: float = BASELINE_TIMEOUT_S,
    ) -> None:
        """``zone_of`` maps each gateway to its zone."""
        self._zone_of = zone_of
        self._threshold = threshold_dbm
        self._timeout = timeout_s
        self._states: dict[str, _State] = {}

    def __len__(self) -> int:
        """Beacons tracked."""
        return len(self._states)

    def zone_of(self, beacon_id: str) -> str | None:
        """The zone the beacon is in now, or None."""
        state = self._states.get(beacon_id)
        return None if state is None else state.zone

    def observe(
        self, beacon_id: str, tx_power: int, gateway: str, rssi: float, at: float
    ) -> list[PresenceChange]:
        """A sighting; the changes it makes at once."""
        del tx_power  # the baseline knows no distance
        zone = self._zone_of.get(gateway)
        if zone is None or rssi < self._threshold:
            return []
        state = self._states.setdefault(beacon_id, _State())
        state.latest[gateway] = (rssi, at)
        state.last_at = max(state.last_at, at)
        fresh = {g: value for g, value in state.latest.items() if at - value[1] <= self._timeout}
        best = max(fresh, key=lambda g: fresh[g][0])
        best_zone = self._zone_of[best]
        if best_zone == state.zone:
            return []
        changes = []
        if state.zone is not None:
            changes.append(_change(ChangeKind.EXIT, beacon_id, state, at, ExitReason.MOVED))
        state.zone, state.entered_at = best_zone, at
        changes.append(_change(ChangeKind.ENTER, beacon_id, state, at))
        return changes

    def tick(self, now: float) -> list[PresenceChange]:
        """Exits after the fixed timeout."""
        changes = []
        for beacon_id in [b for b, s in self._states.items() if now - s.last_at > self._timeout]:
            state = self._states.pop(beacon_id)
            if state.zone is not None:
                changes.append(
                    _change(ChangeKind.EXIT, beacon_id, state, state.last_at, ExitReason.TIMEOUT)
                )
        return changes


def _change(
    kind: ChangeKind,
    beacon_id: str,
    state: _State,
    at: float,
    reason: ExitReason | None = None,
) -> PresenceChange:
    assert state.zone is not None  # noqa: S101 - callers check
    return PresenceChange(
        kind=kind,
        beacon_id=beacon_id,
        zone=state.zone,
        at=at,
        decided_at=at,
        dwell_s=at - state.entered_at,
        gateway="",
        rssi=0.0,
        distance_m=0.0,
        proximity=Proximity.FAR,
        exit_reason=reason,
    )
