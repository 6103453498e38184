"""The sensing pipeline: sightings in, presence changes, telemetry and fired triggers out.

``Sighting -> frames.parse -> identity (allow-list | Resolver | eTLM pairing) -> presence (RSSI
filter per link, zones, enter/dwell/exit) -> subject join -> trigger rules``. Pure: time comes in
with each sighting and with :meth:`Pipeline.tick`; nothing here reads a clock, logs or does I/O.
The adapters turn what comes out into versioned events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gateway.core.identity import Identified, Identifier, Telemetry
from gateway.core.presence import PresenceChange, PresenceModel
from gateway.core.triggers import TriggerEngine, TriggerFired

if TYPE_CHECKING:
    from gateway.core.sighting import Sighting
    from gateway.core.subjects import SubjectDirectory

TICK_INTERVAL_S: Final = 1.0
"""How often (in sighting time) timeouts and unseen rules are checked as sightings flow."""
TELEMETRY_INTERVAL_S: Final = 300.0
"""Telemetry is reported at most every five minutes per beacon: battery levels move slowly."""

CATCH_UP_LIMIT_S: Final = 86_400.0
"""Longest stretch of time settled moment by moment: a day covers any timeout or unseen rule;
a longer jump is a clock set forward (a Pi without a real-time clock meeting NTP)."""
PRUNE_INTERVAL_S: Final = 60.0
"""Per-beacon notes are pruned at most this often."""

Output = PresenceChange | TriggerFired | Telemetry


@dataclass(frozen=True, slots=True)
class PipelineCounts:
    """How many sightings went where (a snapshot; identity outcomes are in ``identity``)."""

    sightings: int
    identity: dict[str, int]
    beacons_tracked: int


class Pipeline:
    """Feeds sightings through identity, presence and triggers."""

    def __init__(
        self,
        identifier: Identifier,
        presence: PresenceModel,
        *,
        subjects: SubjectDirectory | None = None,
        triggers: TriggerEngine | None = None,
        telemetry_interval_s: float = TELEMETRY_INTERVAL_S,
        tick_interval_s: float = TICK_INTERVAL_S,
        keep_raw_eids: bool = False,
    ) -> None:
        """``keep_raw_eids`` (debugging only) remembers each beacon's last raw EID."""
        self.identifier = identifier
        self.presence = presence
        self.subjects = subjects
        self.triggers = triggers
        self._telemetry_interval = telemetry_interval_s
        self._tick_interval = tick_interval_s
        self._telemetry_at: dict[str, float] = {}
        self._next_tick: float | None = None
        self._next_tick_index: int | None = None  # the next moment of the grid to settle
        self._catch_up = math.ceil(CATCH_UP_LIMIT_S / tick_interval_s)
        self._sightings = 0
        self._raw_eids: dict[str, bytes] | None = {} if keep_raw_eids else None
        self._next_prune = 0.0

    def counts(self) -> PipelineCounts:
        """Counters so far."""
        return PipelineCounts(
            sightings=self._sightings,
            identity={outcome.value: count for outcome, count in self.identifier.counts.items()},
            beacons_tracked=len(self.presence),
        )

    def process(self, sighting: Sighting) -> list[Output]:
        """One sighting in; what it settles out (often nothing)."""
        self._sightings += 1
        outputs: list[Output] = []
        at = sighting.at
        next_tick = self._next_tick
        if next_tick is None or at >= next_tick:
            outputs += self.tick(at)
        found = sighting.resolved
        if found is None:
            found = self.identifier.identify(sighting)
        else:
            self.identifier.note_upstream(found)
        if found is None:
            return outputs
        if isinstance(found, Identified):
            beacon_id, tx_power = found.beacon_id, found.tx_power
            if self._raw_eids is not None and found.eid is not None:
                self._raw_eids[beacon_id] = found.eid
        else:
            beacon_id, tx_power = found.beacon_id, found.tx_power
            if self._due(found, at):
                outputs.append(found)
        changes = self.presence.observe(beacon_id, tx_power, sighting.gateway, sighting.rssi, at)
        if changes:
            outputs += changes
            if self.triggers is not None:
                outputs += self.triggers.on_changes(changes)
        return outputs

    def raw_eid(self, beacon_id: str) -> bytes | None:
        """The beacon's last raw EID, if raw EIDs are kept (debugging only)."""
        return None if self._raw_eids is None else self._raw_eids.get(beacon_id)

    def _due(self, telemetry: Telemetry, at: float) -> bool:
        last = self._telemetry_at.get(telemetry.beacon_id)
        if last is not None and at - last < self._telemetry_interval:
            return False
        self._telemetry_at[telemetry.beacon_id] = at
        return True

    def tick(self, now: float) -> list[Output]:
        """Settle what time alone decides, up to ``now``: exits by silence, unseen rules.

        Time is settled on a fixed grid of ``tick_interval_s``: every moment of the grid up to
        ``now`` is settled once, in order, whatever brought the clock there. What is decided,
        and the ``decided_at`` it is dated with, so depend on time alone and never on how much
        else was heard: a crowd of unknown beacons, or an attacker's flood, cannot move a
        registered beacon's exit. A jump of more than :data:`CATCH_UP_LIMIT_S` (a clock set
        forward) is settled from that long before ``now``.
        """
        interval = self._tick_interval
        last = math.floor(now / interval)
        moment = self._next_tick_index
        if moment is None:
            moment = last
        elif last - moment > self._catch_up:
            moment = last - self._catch_up
        outputs: list[Output] = []
        while moment <= last:
            outputs += self._settle(moment * interval)
            moment += 1
        self._next_tick_index = moment
        self._next_tick = moment * interval
        return outputs

    def _settle(self, now: float) -> list[Output]:
        outputs: list[Output] = []
        changes = self.presence.tick(now)
        outputs += changes
        if now >= self._next_prune:
            self._prune(now)
        if self.triggers is not None:
            if changes:
                outputs += self.triggers.on_changes(changes)
            outputs += self.triggers.tick(now)
        return outputs

    def _prune(self, now: float) -> None:
        """Forget per-beacon notes older than they matter: memory follows the live crowd."""
        self._next_prune = now + max(self._telemetry_interval, PRUNE_INTERVAL_S)
        horizon = now - self._telemetry_interval
        self._telemetry_at = {b: at for b, at in self._telemetry_at.items() if at >= horizon}
        if self._raw_eids is not None:
            live = self.presence.zone_of
            self._raw_eids = {b: e for b, e in self._raw_eids.items() if live(b) is not None}
