"""What the operators' live view shows: zones and who is in them, recent events, counts.

The daemon feeds :class:`LiveState` every event it accepts into the outbox, as the built event
model: the same payload MQTT subscribers get, with the subject already cut down to the fields
``publish.subject_fields`` allows. The state keeps a fixed set of fields of that payload (never
``raw_eid``, even when ``publish.raw_eids`` puts it in events), so the view never shows more
than a subscriber may see, and usually less.

Which subject is in which zone is bookkept under a key the daemon passes (the beacon id, which
every pipeline output carries): the presence engine keeps a beacon in at most one zone, and an
anonymous subject (no id, no beacon) must still leave the zone it entered. The key is never put
in a snapshot.

Memory is bounded whatever the traffic: at most ``max_tracked`` subjects (the least recently
refreshed is forgotten past that, and counted), ``recent`` events, ``max_zones`` zones, and
event counts by type (a fixed set). Snapshots list at most ``shown_per_zone`` subjects per zone,
the longest present first, with the number left out.

Pure: no clock, no I/O; ``now`` (the source's clock) comes in as an argument.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from gateway.events import PresenceEvent, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.events import Event

RECENT_EVENTS: Final = 50
"""Events the view lists: a screenful, the last minute or so of a busy floor."""
MAX_TRACKED: Final = 10_000
"""Subjects tracked in zones, all zones together: a busy airport hall, bounded."""
SHOWN_PER_ZONE: Final = 40
"""Subjects listed per zone card; the rest are counted ("and 12 more")."""
MAX_ZONES: Final = 256
"""Zones shown: the configured ones, plus any an event names, up to this many."""
EVENT_TYPES: Final = ("enter", "dwell", "exit", "trigger", "telemetry")

_PRESENCE_FIELDS: Final = frozenset(
    {
        "type",
        "event_time",
        "subject",
        "zone",
        "dwell_s",
        "threshold_s",
        "exit_reason",
        "proximity",
        "distance_m",
    }
)
_TRIGGER_FIELDS: Final = frozenset(
    {"type", "event_time", "subject", "zone", "rule", "action", "cause", "dwell_s", "unseen_s"}
)
_TELEMETRY_FIELDS: Final = frozenset(
    {"type", "event_time", "subject", "battery_mv", "temperature_c", "encrypted"}
)


@dataclass(slots=True)
class _Presence:
    """One subject in one zone, as its last enter or dwell event showed it."""

    zone: str
    subject: dict[str, Any]
    entered: float
    proximity: str
    distance_m: float | None


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def _when(entry: tuple[float, int, dict[str, Any]]) -> tuple[float, int]:
    return entry[0], entry[1]


def iso_time(seconds: float) -> str:
    """Unix seconds as the events write times (ISO 8601, UTC, ``Z``)."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def shown(event: Event) -> dict[str, Any]:
    """The fields of an event the view lists, as its JSON payload writes them."""
    if isinstance(event, PresenceEvent):
        fields = _PRESENCE_FIELDS
    elif isinstance(event, TriggerEvent):
        fields = _TRIGGER_FIELDS
    else:
        fields = _TELEMETRY_FIELDS
    return event.model_dump(mode="json", include=set(fields), exclude_none=True)


class LiveState:
    """Zones with the subjects in them, the last events and counts (see the module doc)."""

    def __init__(
        self,
        zones: Iterable[str],
        *,
        site: str,
        gateway_id: str,
        recent: int = RECENT_EVENTS,
        max_tracked: int = MAX_TRACKED,
        shown_per_zone: int = SHOWN_PER_ZONE,
        max_zones: int = MAX_ZONES,
    ) -> None:
        """``zones``: the configured zone ids, in the order the view lists them."""
        self.site = site
        self.gateway_id = gateway_id
        self._zones: dict[str, None] = dict.fromkeys(list(zones)[:max_zones])
        self._max_zones = max_zones
        self._max_tracked = max_tracked
        self._shown_per_zone = shown_per_zone
        self._present: OrderedDict[str, _Presence] = OrderedDict()
        self._recent: deque[tuple[float, int, dict[str, Any]]] = deque(maxlen=recent)
        self._counts: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)
        self._forgotten = 0
        self._accepted = 0
        self._latest: float | None = None

    def __len__(self) -> int:
        """Subjects tracked in zones."""
        return len(self._present)

    def accept(self, event: Event, *, key: str) -> None:
        """Take one accepted event; ``key`` names its subject for bookkeeping only."""
        self._counts[event.type] = self._counts.get(event.type, 0) + 1
        at = _seconds(event.event_time)
        self._recent.append((at, self._accepted, shown(event)))
        self._accepted += 1
        self._latest = at if self._latest is None else max(self._latest, at)
        if isinstance(event, PresenceEvent):
            self._presence(event, key, at)

    def _presence(self, event: PresenceEvent, key: str, at: float) -> None:
        if event.type == "exit":
            current = self._present.get(key)
            if current is not None and current.zone == event.zone:
                del self._present[key]
            return
        if event.zone not in self._zones:
            if len(self._zones) >= self._max_zones:
                return
            self._zones[event.zone] = None
        subject = event.subject.model_dump(mode="json", exclude_none=True)
        self._present[key] = _Presence(
            zone=event.zone,
            subject=subject,
            entered=at - event.dwell_s,
            proximity=event.proximity,
            distance_m=event.distance_m if math.isfinite(event.distance_m) else None,
        )
        self._present.move_to_end(key)
        while len(self._present) > self._max_tracked:
            self._present.popitem(last=False)
            self._forgotten += 1

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The view as JSON-ready data; ``now`` is the source's clock (else the last event's).

        Recent events are listed newest first by when they happened (an exit is concluded
        after the fact, dated at the last sighting), each zone's subjects longest present first.
        """
        clock = self._latest if now is None else now
        by_zone: dict[str, list[_Presence]] = {zone: [] for zone in self._zones}
        for presence in self._present.values():
            by_zone[presence.zone].append(presence)
        zones = []
        for zone, present in by_zone.items():
            present.sort(key=lambda p: p.entered)
            listed = present[: self._shown_per_zone]
            zones.append(
                {
                    "id": zone,
                    "present": len(present),
                    "hidden": len(present) - len(listed),
                    "subjects": [self._subject(p, clock) for p in listed],
                }
            )
        return {
            "site": self.site,
            "gateway_id": self.gateway_id,
            "source_time": None if clock is None else iso_time(clock),
            "zones": zones,
            "recent": [entry[2] for entry in sorted(self._recent, key=_when, reverse=True)],
            "counts": {
                **self._counts,
                "total": sum(self._counts.values()),
                "present": len(self._present),
                "forgotten": self._forgotten,
            },
        }

    @staticmethod
    def _subject(presence: _Presence, clock: float | None) -> dict[str, Any]:
        dwell = 0.0 if clock is None else max(0.0, clock - presence.entered)
        listed: dict[str, Any] = {
            "subject": presence.subject,
            "dwell_s": round(dwell, 1),
            "proximity": presence.proximity,
        }
        if presence.distance_m is not None:
            listed["distance_m"] = presence.distance_m
        return listed
