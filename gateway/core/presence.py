"""Presence: which zone each beacon is in, turned into enter, dwell and exit changes.

Per beacon, every gateway link keeps a filtered RSSI. A zone (a gateway, or a named group of
gateways, optionally with a radius) scores the strongest fresh filtered RSSI of its gateways
plus each gateway's RSSI offset. The beacon is in at most one zone at a time:

- **enter** (debounced): a zone must lead for ``enter_debounce_s`` and ``enter_min_sightings``
  sightings before it is entered; the change is dated from when it began to lead;
- **zone change**, only past a margin: another zone's lead over the current one beyond the
  margin (``switch_margin_db``; ``fit_margin_db`` with a floor plan), summed over time, must
  reach ``switch_evidence_db_s``, and the beacon must have stayed ``min_stay_s`` in its zone;
  it is an exit of the old zone and an enter of the new one, both
  dated from when the new zone began to lead;
- **exit** by silence: when no gateway has heard the beacon for ``exit_intervals`` of its own
  advertising interval (learned from the gaps between its adverts, clamped to
  ``[min_exit_timeout_s, max_exit_timeout_s]``), dated at the last sighting; or when it leaves
  every zone's radius (with ``radius_hysteresis``), by the same evidence;
- **dwell**: at each of ``dwell_thresholds_s`` after entering (``"dwelled 30 s"``) and every
  ``dwell_interval_s`` while present; a dwell is dated at its moment and is only reported once a
  sighting at or after that moment confirms the beacon was still there.

Everything is driven by the sightings' times and by :meth:`PresenceEngine.tick`'s ``now``: no
clock is read here. Event times are when things happened; ``decided_at`` is when the engine knew.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol

from gateway.core.floorplan import NO_ZONE, FloorPlan, ZoneFitter
from gateway.core.signal import (
    DEFAULT_PATH_LOSS_EXPONENT,
    FIRST_METRE_LOSS_DB,
    KalmanRssi,
    MedianRssi,
    Proximity,
    ProximityBands,
    RssiFilter,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

ENTER_DEBOUNCE_S: Final = 2.0
"""A zone must lead this long before it is entered: one lucky packet is not a visit."""
ENTER_MIN_SIGHTINGS: Final = 2
"""...and be backed by this many sightings."""
SWITCH_MARGIN_DB: Final = 3.0
"""Another zone must be this much stronger to take over: twice the calibration error of a link."""
SWITCH_EVIDENCE_DB_S: Final = 20.0
"""...until its lead past the margin, summed over time, reaches this many dB s (a CUSUM):
5 dB past the margin for 4 s, or 2 dB for 10 s. Shadowing swings last seconds; a walk into the
next zone lasts longer and keeps leading."""
FIT_MARGIN_DB: Final = 0.5
"""With a floor plan, the margin applies to the zones' misfit (RMS dB over the gateways), whose
differences are a fraction of the RSSI differences behind them (tuned on the scenes,
docs/performance.md)."""
REFIT_S: Final = 0.5
"""Floor-plan scores are refitted at most this often per beacon: several gateways hear one
advert within milliseconds, and one fit per advert is enough."""
MIN_STAY_S: Final = 5.0
"""A zone once entered is kept at least this long (sighting time) before another can take over:
an operator's map should not flicker between two gateways a bag lies between."""
MAX_LEAD_DB: Final = 10.0
"""A lead counts at most this much per second, so one wild sample cannot decide alone."""
RADIUS_HYSTERESIS: Final = 0.25
"""Once inside, a zone's radius stretches by 25 % before the beacon counts as out of it."""
EXIT_INTERVALS: Final = 10.0
"""Silence of this many advertising intervals is an exit: 10 lost packets in a row at every
gateway is rare (0.2 ** 10 at 20 % loss on a single link)."""
MIN_EXIT_TIMEOUT_S: Final = 6.0
"""Never time out faster than this, whatever the interval (fast beacons, bursty loss)."""
MAX_EXIT_TIMEOUT_S: Final = 120.0
"""Never wait longer than this (a beacon at a 10 s interval)."""
LINK_STALE_INTERVALS: Final = 5.0
"""A gateway that has not heard the beacon for this many intervals stops counting for a zone."""
MIN_LINK_STALE_S: Final = 4.0
"""...but never less than this."""
DWELL_THRESHOLDS_S: Final = (30.0, 60.0, 300.0)
"""Default "dwelled N s" moments."""
DWELL_INTERVAL_S: Final = 60.0
"""A periodic dwell every minute while present (0 turns periodic dwells off)."""
MIN_ADVERT_GAP_S: Final = 0.05
"""Sightings closer than this are the same advert heard by several gateways (Eddystone's
shortest interval is 100 ms)."""
INTERVAL_RISE: Final = 0.05
"""How fast the learned interval creeps up after longer gaps: a lost packet doubles one gap, so
the estimate follows the shortest recent gaps, the interval itself."""
FilterKind = Literal["kalman", "median"]


class ChangeKind(enum.StrEnum):
    """What happened to a beacon's presence."""

    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class ExitReason(enum.StrEnum):
    """Why a beacon left a zone."""

    TIMEOUT = "timeout"
    """Not heard by any gateway for the beacon's exit timeout."""
    MOVED = "moved"
    """Another zone took over."""
    OUT_OF_RANGE = "out-of-range"
    """Still heard, but farther than the zone's radius."""


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A zone: a gateway or a named group of gateways, optionally bounded by a radius (m)."""

    id: str
    gateways: frozenset[str]
    radius_m: float | None = None


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    """The presence engine's tuning; defaults are the module's named constants."""

    filter: FilterKind = "kalman"
    enter_debounce_s: float = ENTER_DEBOUNCE_S
    enter_min_sightings: int = ENTER_MIN_SIGHTINGS
    switch_margin_db: float = SWITCH_MARGIN_DB
    fit_margin_db: float = FIT_MARGIN_DB
    switch_evidence_db_s: float = SWITCH_EVIDENCE_DB_S
    min_stay_s: float = MIN_STAY_S
    radius_hysteresis: float = RADIUS_HYSTERESIS
    exit_intervals: float = EXIT_INTERVALS
    min_exit_timeout_s: float = MIN_EXIT_TIMEOUT_S
    max_exit_timeout_s: float = MAX_EXIT_TIMEOUT_S
    link_stale_intervals: float = LINK_STALE_INTERVALS
    min_link_stale_s: float = MIN_LINK_STALE_S
    dwell_thresholds_s: tuple[float, ...] = DWELL_THRESHOLDS_S
    dwell_interval_s: float = DWELL_INTERVAL_S
    path_loss_exponent: float = DEFAULT_PATH_LOSS_EXPONENT
    bands: ProximityBands = field(default_factory=ProximityBands)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """An enter, dwell or exit of one beacon in one zone.

    ``at`` is when it happened, ``decided_at`` when the engine concluded it. ``dwell_s`` is the
    time in the zone so far (for an exit: the whole stay). ``threshold_s`` names the dwell
    threshold crossed (None for a periodic dwell). ``gateway``, ``rssi`` (filtered, offset
    applied), ``distance_m`` and ``proximity`` describe the nearest gateway of the zone.
    """

    kind: ChangeKind
    beacon_id: str
    zone: str
    at: float
    decided_at: float
    dwell_s: float
    gateway: str
    rssi: float
    distance_m: float
    proximity: Proximity
    threshold_s: float | None = None
    exit_reason: ExitReason | None = None


class PresenceModel(Protocol):
    """What the pipeline needs of a presence engine (the real one, or the scoring baseline)."""

    def __len__(self) -> int:
        """Beacons tracked."""
        ...

    def zone_of(self, beacon_id: str) -> str | None:
        """The zone the beacon is in now, or None."""
        ...

    def observe(
        self, beacon_id: str, tx_power: int, gateway: str, rssi: float, at: float
    ) -> list[PresenceChange]:
        """Add a sighting; return the changes it settles."""
        ...

    def tick(self, now: float) -> list[PresenceChange]:
        """Settle what time alone decides."""
        ...


class _Link:
    __slots__ = ("filter", "last_at")

    def __init__(self, rssi_filter: RssiFilter) -> None:
        self.filter = rssi_filter
        self.last_at = -math.inf


@dataclass(slots=True)
class _Track:
    beacon_id: str
    tx_power: int
    links: dict[str, _Link] = field(default_factory=dict)
    last_at: float = -math.inf
    last_advert_at: float = -math.inf
    interval: float | None = None
    zone: str | None = None
    entered_at: float = 0.0
    candidate: str | None = None
    candidate_since: float = 0.0
    candidate_sightings: int = 0
    band: Proximity | None = None
    evaluated_at: float = -math.inf
    fitted_at: float = -math.inf
    fit: dict[str, float] = field(default_factory=dict)  # floor-plan scores, reused briefly
    evidence: dict[str, float] = field(default_factory=dict)  # zone -> dB s of lead
    evidence_since: dict[str, float] = field(default_factory=dict)
    next_threshold: int = 0
    periodic: int = 1  # the next periodic dwell is at this many dwell intervals
    best_gateway: str = ""
    best_rssi: float = 0.0
    best_distance: float = 0.0


_OUT: Final = NO_ZONE
"""The candidate "no zone": heard, but in no zone's radius (or in no zone of the floor plan)."""
_Near = tuple[float, str]  # filtered RSSI, gateway


class PresenceEngine:
    """Tracks every beacon's zone; :meth:`observe` and :meth:`tick` return the changes."""

    def __init__(
        self,
        zones: Iterable[ZoneSpec],
        settings: PresenceSettings | None = None,
        *,
        gateway_offsets: Mapping[str, float] | None = None,
        beacon_calibration: Mapping[str, float] | None = None,
        floor_plan: FloorPlan | None = None,
    ) -> None:
        """``gateway_offsets`` and ``beacon_calibration`` are dB added to measured RSSI."""
        self.settings = settings or PresenceSettings()
        self._zones = {zone.id: zone for zone in zones}
        self._zone_of: dict[str, str] = {}
        for zone in self._zones.values():
            for gateway in zone.gateways:
                if gateway in self._zone_of:
                    first = self._zone_of[gateway]
                    msg = f"gateway {gateway!r} is in zones {first!r} and {zone.id!r}"
                    raise ValueError(msg)
                self._zone_of[gateway] = zone.id
        self._fitter = None if floor_plan is None else ZoneFitter(floor_plan)
        self._offsets = dict(gateway_offsets or {})
        self._calibration = dict(beacon_calibration or {})
        self._tracks: dict[str, _Track] = {}
        self._new_filter: Callable[[], RssiFilter] = (
            KalmanRssi if self.settings.filter == "kalman" else MedianRssi
        )
        self._thresholds = tuple(sorted(set(self.settings.dwell_thresholds_s)))
        self._threshold_set = frozenset(self._thresholds)

    def __len__(self) -> int:
        """Beacons tracked (heard recently, in a zone or not)."""
        return len(self._tracks)

    def zone_of(self, beacon_id: str) -> str | None:
        """The zone the beacon is in now, or None."""
        track = self._tracks.get(beacon_id)
        return None if track is None else track.zone

    def timeout_s(self, beacon_id: str) -> float | None:
        """The beacon's exit timeout, learned from its advertising interval (None if unknown)."""
        track = self._tracks.get(beacon_id)
        return None if track is None else self._timeout(track)

    def _timeout(self, track: _Track) -> float:
        settings = self.settings
        if track.interval is None:
            return settings.max_exit_timeout_s
        timeout = settings.exit_intervals * track.interval
        return min(max(timeout, settings.min_exit_timeout_s), settings.max_exit_timeout_s)

    def observe(
        self, beacon_id: str, tx_power: int, gateway: str, rssi: float, at: float
    ) -> list[PresenceChange]:
        """Add a sighting of ``beacon_id`` by ``gateway``; return the changes it settles."""
        track = self._tracks.get(beacon_id)
        if track is None:
            track = self._tracks[beacon_id] = _Track(beacon_id, tx_power)
        track.tx_power = tx_power
        gap = at - track.last_advert_at
        if gap >= MIN_ADVERT_GAP_S:
            if math.isfinite(gap):
                interval = track.interval
                if interval is None or gap < interval:
                    track.interval = gap
                else:
                    track.interval = interval + INTERVAL_RISE * (gap - interval)
            track.last_advert_at = at
        track.last_at = max(at, track.last_at)
        link = track.links.get(gateway)
        if link is None:
            link = track.links[gateway] = _Link(self._new_filter())
        link.filter.update(rssi + self._offsets.get(gateway, 0.0), at)
        link.last_at = max(at, link.last_at)
        changes: list[PresenceChange] = []
        self._decide(track, at, changes)
        if track.zone is not None:
            self._dwell(track, at, changes)
        return changes

    def tick(self, now: float) -> list[PresenceChange]:
        """Time out beacons silent past their timeout; forget those long gone."""
        changes: list[PresenceChange] = []
        gone = []
        for beacon_id, track in self._tracks.items():
            if now - track.last_at <= self._timeout(track):
                continue
            if track.zone is not None:
                changes.append(
                    self._change(
                        ChangeKind.EXIT,
                        track,
                        track.zone,
                        track.last_at,
                        now,
                        exit_reason=ExitReason.TIMEOUT,
                    )
                )
            gone.append(beacon_id)
        for beacon_id in gone:
            del self._tracks[beacon_id]
        return changes

    # ------------------------------------------------------------------------------- decisions

    def _stale_after(self, track: _Track) -> float:
        settings = self.settings
        interval = track.interval or 1.0
        return max(settings.link_stale_intervals * interval, settings.min_link_stale_s)

    def _scores(
        self, track: _Track, now: float
    ) -> tuple[dict[str, float], dict[str, _Near], float]:
        """Zone scores (higher is likelier), per zone the nearest fresh gateway, and the margin.

        Without a floor plan a zone scores the strongest fresh filtered RSSI of its gateways,
        if the beacon is within its radius. With one, the fit of the zone's best cell scores it.
        The nearest gateway of a zone with none of its own fresh is the nearest overall
        (under the key :data:`_OUT`).
        """
        stale = now - self._stale_after(track)
        near: dict[str, _Near] = {}
        heard: dict[str, float] = {}
        zone_of = self._zone_of
        strongest: _Near | None = None
        for gateway, link in track.links.items():
            # Stale first: a beacon heard by dozens of gateways over time has many stale links.
            value = None if link.last_at < stale else link.filter.value
            if value is None:
                continue
            heard[gateway] = value
            if strongest is None or value > strongest[0]:
                strongest = (value, gateway)
            zone = zone_of.get(gateway)
            if zone is None:
                continue
            best = near.get(zone)
            if best is None or value > best[0]:
                near[zone] = (value, gateway)
        settings = self.settings
        if strongest is None:
            return {}, near, settings.switch_margin_db
        near[_OUT] = strongest
        if self._fitter is not None:
            fitted = self._fit(track, heard, now)
            if fitted:
                return fitted, near, settings.fit_margin_db
        scores = {
            zone: value
            for zone, (value, _) in near.items()
            if zone != _OUT and self._in_radius(track, zone, value, current=zone == track.zone)
        }
        if not scores:
            scores[_OUT] = 0.0
        return scores, near, settings.switch_margin_db

    def _fit(self, track: _Track, heard: dict[str, float], now: float) -> dict[str, float]:
        """Floor-plan scores, refitted at most every :data:`REFIT_S` per beacon."""
        fitter = self._fitter
        if fitter is None or (now - track.fitted_at < REFIT_S and track.fit):
            return track.fit
        track.fitted_at = now
        track.fit = fitter.scores({g: v for g, v in heard.items() if fitter.knows(g)})
        return track.fit

    def _distance(self, track: _Track, rssi: float) -> float:
        loss = (
            track.tx_power
            - FIRST_METRE_LOSS_DB
            - rssi
            - self._calibration.get(track.beacon_id, 0.0)
        )
        return float(10 ** (loss / (10 * self.settings.path_loss_exponent)))

    def _in_radius(self, track: _Track, zone: str, rssi: float, *, current: bool) -> bool:
        radius = self._zones[zone].radius_m
        if radius is None:
            return True
        if current:
            radius *= 1 + self.settings.radius_hysteresis
        return self._distance(track, rssi) <= radius

    def _decide(self, track: _Track, now: float, changes: list[PresenceChange]) -> None:
        scores, near, margin = self._scores(track, now)
        elapsed = now - track.evaluated_at
        track.evaluated_at = now
        if track.zone is None:
            self._enter_first(track, scores, near, now, changes)
            return
        current = track.zone
        self._describe(track, near.get(current) or near.get(_OUT))
        if not scores:
            return
        step = min(max(elapsed, 0.0), self._max_step(track))
        winner = self._accumulate(track, scores, margin, step, now)
        if winner is None or now - track.entered_at < self.settings.min_stay_s:
            return
        since = track.evidence_since[winner]
        reason = ExitReason.OUT_OF_RANGE if winner == _OUT else ExitReason.MOVED
        changes.append(
            self._change(ChangeKind.EXIT, track, current, since, now, exit_reason=reason)
        )
        track.zone = None
        track.candidate = None
        track.evidence.clear()
        if winner != _OUT:
            self._enter(track, winner, near.get(winner) or near.get(_OUT), since, now, changes)

    def _accumulate(
        self, track: _Track, scores: dict[str, float], margin: float, step: float, now: float
    ) -> str | None:
        """Add each other zone's lead over the current one (a CUSUM); the zone that won, if any."""
        current = track.zone
        base = -math.inf if current is None else scores.get(current, -math.inf)
        evidence = track.evidence
        threshold = self.settings.switch_evidence_db_s
        winner: str | None = None
        for zone, score in scores.items():
            if zone == current:
                continue
            lead = min(score - base - margin, MAX_LEAD_DB)
            before = evidence.get(zone, 0.0)
            after = before + lead * step
            if after <= 0:
                evidence.pop(zone, None)
                continue
            if before == 0.0:
                track.evidence_since[zone] = now - step
            evidence[zone] = after
            if after >= threshold and (winner is None or after > evidence[winner]):
                winner = zone
        for zone in [zone for zone in evidence if zone not in scores]:
            del evidence[zone]
        return winner

    def _max_step(self, track: _Track) -> float:
        """The most time one evaluation may weigh: a long silence is no long-held evidence."""
        return 2 * (track.interval or 1.0)

    def _enter_first(
        self,
        track: _Track,
        scores: dict[str, float],
        near: dict[str, _Near],
        now: float,
        changes: list[PresenceChange],
    ) -> None:
        """From no zone: the leading zone, once it has led long enough."""
        settings = self.settings
        leader = max(scores, key=scores.__getitem__, default=_OUT)
        if leader == _OUT:
            track.candidate = None
            return
        if track.candidate != leader:
            track.candidate, track.candidate_since, track.candidate_sightings = leader, now, 0
        track.candidate_sightings += 1
        since = track.candidate_since
        if (
            now - since >= settings.enter_debounce_s
            and track.candidate_sightings >= settings.enter_min_sightings
        ):
            self._enter(track, leader, near.get(leader) or near.get(_OUT), since, now, changes)

    def _describe(self, track: _Track, best: _Near | None) -> None:
        if best is None:
            return
        rssi, gateway = best
        track.best_rssi, track.best_gateway = rssi, gateway
        track.best_distance = self._distance(track, rssi)
        track.band = self.settings.bands.band(track.best_distance, track.band)

    def _enter(  # noqa: PLR0917 - internal
        self,
        track: _Track,
        zone: str,
        best: _Near | None,
        since: float,
        now: float,
        changes: list[PresenceChange],
    ) -> None:
        track.zone, track.entered_at, track.candidate = zone, since, None
        track.evidence.clear()
        track.band = None
        self._describe(track, best)
        track.next_threshold = 0
        track.periodic = 1
        changes.append(self._change(ChangeKind.ENTER, track, zone, since, now))

    def _dwell(self, track: _Track, now: float, changes: list[PresenceChange]) -> None:
        zone = track.zone
        assert zone is not None  # noqa: S101 - checked by the caller
        thresholds = self._thresholds
        while track.next_threshold < len(thresholds):
            threshold = thresholds[track.next_threshold]
            moment = track.entered_at + threshold
            if moment > now:
                break
            track.next_threshold += 1
            changes.append(
                self._change(ChangeKind.DWELL, track, zone, moment, now, threshold_s=threshold)
            )
        interval = self.settings.dwell_interval_s
        if interval <= 0:
            return
        while True:
            elapsed = track.periodic * interval
            moment = track.entered_at + elapsed
            if moment > now:
                break
            track.periodic += 1
            if elapsed not in self._threshold_set:  # else reported as a threshold above
                changes.append(self._change(ChangeKind.DWELL, track, zone, moment, now))

    def _change(
        self,
        kind: ChangeKind,
        track: _Track,
        zone: str,
        at: float,
        now: float,
        *,
        threshold_s: float | None = None,
        exit_reason: ExitReason | None = None,
    ) -> PresenceChange:
        return PresenceChange(
            kind=kind,
            beacon_id=track.beacon_id,
            zone=zone,
            at=at,
            decided_at=now,
            dwell_s=max(at - track.entered_at, 0.0),
            gateway=track.best_gateway,
            rssi=round(track.best_rssi, 1),
            distance_m=round(track.best_distance, 2),
            proximity=track.band or Proximity.FAR,
            threshold_s=threshold_s,
            exit_reason=exit_reason,
        )
