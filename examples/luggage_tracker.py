"""Luggage tracking: where each bag was last seen, and an alert when a bag stops moving.

It follows the gateways' presence events (enter, dwell, exit) of bags and keeps, per bag, its
last zone, since when it has been there, when it was last heard and the nearest gateway. It
alerts, once per bag and condition until the bag moves again:

- **still**: the bag is still being heard in a zone (entered, not exited, and heard within
  ``--heard-within`` minutes: the gateway's dwell events come every minute) but has not changed
  zone for ``--still-after`` minutes (default 20; per zone with ``--still-after-zone
  sorting=30``, ``0`` for never). A bag stuck in sorting, or left on a carousel nobody collects
  it from.
- **lost**: the bag left a zone and has not been heard anywhere for ``--lost-after`` minutes
  (default 10). Leaving an end zone (``--end-zone``, default ``claim-*``: its owner took it off
  the carousel and walked out) is the end of the journey, not a loss.

and says when an alerted bag moves again (``moving``) or is heard again (``found``).

The defaults fit the shipped airport scene: a bag spends up to 15 minutes in sorting and up to
15 on a carousel before its owner takes it; about 3 % are never collected.

Time is event time: the clock is the newest ``event_time`` seen, never the wall clock, so the
tracker works the same on a live stream, at the demo's speed and on a replay (a stream that
pauses pauses the clock too). Run it beside the demo (two terminals; docs/examples.md)::

    make demo SCENE=airport                    # its banner shows the broker's port
    .venv/bin/python examples/luggage_tracker.py --port PORT
    kill -USR1 <its pid>                       # the table of bags per zone, now

It prints the table at exit too (Ctrl-C). Memory is bounded: at most ``--max-bags`` bags (the
least recently heard go first) and bags unheard for ``--forget-after`` hours are dropped.

``LuggageTracker`` is the logic (no MQTT, tested in tests/examples/); ``main`` the MQTT shell
(examples/consumer.py: persistent session, QoS 1, Ctrl-C). It keeps state per bag, so a bag's
events must all reach the same copy: scale out by site (``--site``), not with a shared
subscription.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import math
import signal
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from consumer import (
    SEEN_MAX,
    Consumer,
    Deduplicator,
    Event,
    add_connection_options,
    clock_text,
    event_seconds,
    events_filter,
    setup_logging,
    text_field,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

log = logging.getLogger("luggage_tracker")

STILL_AFTER_MIN = 20.0
HEARD_WITHIN_MIN = 5.0
"""A bag counts as still being heard if its last event is this recent (the gateway sends a
dwell event every minute while a bag stays: presence.dwell_interval_s)."""
LOST_AFTER_MIN = 10.0
END_ZONES = ("claim-*",)
BAGS_MAX = 50_000
FORGET_AFTER_H = 24.0
SWEEP_EVERY_S = 10.0
"""Look for still and lost bags at most this often (s of event time): O(bags) each time."""
PRESENCE = frozenset({"enter", "dwell", "exit"})

Condition = Literal["still", "lost", "moving", "found"]


@dataclass(slots=True)
class Bag:
    """What is known about one bag."""

    bag_id: str
    flight: str | None
    destination: str | None
    owner: str | None
    zone: str
    """Its zone, or the zone it last left."""
    present: bool
    """In ``zone`` now (entered, not exited)."""
    since: float
    """When it came into ``zone`` (its last change of zone), Unix seconds."""
    last_heard: float
    nearest_gateway: str | None
    still_alerted: bool = False
    lost_alerted: bool = False

    def describe(self) -> str:
        """Its id, flight, destination and owner, as far as events show them."""
        about = [
            f"{self.flight or '?'} to {self.destination or '?'}"
            if self.flight or self.destination
            else "",
            f"owner {self.owner}" if self.owner else "",
        ]
        shown = ", ".join(part for part in about if part)
        return f"bag {self.bag_id}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one presence event says about a bag."""

    bag_id: str
    kind: str
    """``enter``, ``dwell`` or ``exit``."""
    zone: str
    at: float
    """Its ``event_time``, Unix seconds."""
    entered: float
    """When the bag came into ``zone``, as far as this event tells (a dwell: ``dwell_s`` ago)."""
    nearest_gateway: str | None
    flight: str | None
    destination: str | None
    owner: str | None


def read_sighting(event: Mapping[str, Any]) -> Sighting | str:
    """The sighting in a presence event of a bag; else why there is none."""
    kind = text_field(event, "type")
    subject = event.get("subject")
    if kind not in PRESENCE:
        return "not-presence"
    if not isinstance(subject, dict) or subject.get("kind") != "bag":
        return "not-a-bag"
    bag_id = text_field(subject, "id") or text_field(subject, "tag")
    bag_id = bag_id or text_field(subject, "beacon")
    zone = text_field(event, "zone")
    at = event_seconds(event.get("event_time"))
    if bag_id is None or zone is None or at is None:
        return "malformed"
    dwell = event.get("dwell_s")
    dwelled = float(dwell) if isinstance(dwell, int | float) and 0 <= dwell < math.inf else 0.0
    return Sighting(
        bag_id=bag_id,
        kind=kind,
        zone=zone,
        at=at,
        entered=at - dwelled if kind == "dwell" else at,
        nearest_gateway=text_field(event, "nearest_gateway"),
        flight=text_field(subject, "flight"),
        destination=text_field(subject, "destination"),
        owner=text_field(subject, "owner_alias"),
    )


@dataclass(frozen=True, slots=True)
class Alert:
    """A bag stopped (``still``), vanished (``lost``) or recovered (``moving``, ``found``)."""

    condition: Condition
    bag_id: str
    zone: str
    at: float
    """The tracker's clock (newest event time) when it was raised."""
    minutes: float
    """How long it has been still, unheard; or was, before it recovered."""
    text: str

    def line(self) -> str:
        """One line for the console."""
        label = "ALERT" if self.condition in {"still", "lost"} else "clear"
        return f"{label} {self.condition:<6} {self.text}  [{clock_text(self.at)}]"


class LuggageTracker:
    """Presence events of bags in, alerts out; the table of bags per zone on demand. No I/O.

    :attr:`skipped` counts the events that changed nothing, by reason (``duplicate``...).
    """

    def __init__(
        self,
        *,
        still_after_s: float = STILL_AFTER_MIN * 60,
        still_after_zone: Sequence[tuple[str, float]] = (),
        heard_within_s: float = HEARD_WITHIN_MIN * 60,
        lost_after_s: float = LOST_AFTER_MIN * 60,
        end_zones: Iterable[str] = END_ZONES,
        max_bags: int = BAGS_MAX,
        forget_after_s: float = FORGET_AFTER_H * 3600,
        sweep_every_s: float = SWEEP_EVERY_S,
        seen_max: int = SEEN_MAX,
    ) -> None:
        self.still_after_s = still_after_s
        self.still_after_zone = list(still_after_zone)
        self.heard_within_s = heard_within_s
        self.lost_after_s = lost_after_s
        self.end_zones = list(end_zones)
        self.max_bags = max_bags
        self.forget_after_s = forget_after_s
        self.sweep_every_s = sweep_every_s
        self.clock: float | None = None
        """The newest event time seen (Unix seconds)."""
        self.skipped: Counter[str] = Counter()
        self.last_skipped: str | None = None
        """Why the last event changed nothing (None: it was taken)."""
        self.alerts: Counter[Condition] = Counter()
        self.collected = 0
        """Bags dropped after they left an end zone (forgotten or evicted)."""
        self._bags: OrderedDict[str, Bag] = OrderedDict()  # least recently heard first
        self._dedup = Deduplicator(seen_max)
        self._swept: float | None = None

    # ----------------------------------------------------------------------- settings

    def still_limit(self, zone: str) -> float | None:
        """How long (s) a bag may stay in ``zone`` before it is "still"; None: forever."""
        for pattern, seconds in self.still_after_zone:
            if fnmatch.fnmatchcase(zone, pattern):
                return seconds if seconds > 0 else None
        return self.still_after_s if self.still_after_s > 0 else None

    def is_end_zone(self, zone: str) -> bool:
        """Whether leaving ``zone`` ends a bag's journey (no "lost" alert)."""
        return any(fnmatch.fnmatchcase(zone, pattern) for pattern in self.end_zones)

    # ----------------------------------------------------------------------- events

    def bag(self, bag_id: str) -> Bag | None:
        """What is known about a bag."""
        return self._bags.get(bag_id)

    def __len__(self) -> int:
        return len(self._bags)

    def handle(self, event: Mapping[str, Any]) -> list[Alert]:
        """Take one event; the alerts it (or the time it moves the clock to) raises."""
        self.last_skipped = None
        event_id = text_field(event, "event_id")
        if event_id is None:
            return self._skip("malformed")
        if not self._dedup.first_time(event_id):
            return self._skip("duplicate")
        sighting = read_sighting(event)
        if isinstance(sighting, str):
            return self._skip(sighting)
        self.clock = sighting.at if self.clock is None else max(self.clock, sighting.at)
        return self._update(sighting) + self._sweep_if_due()

    def _skip(self, reason: str) -> list[Alert]:
        self.skipped[reason] += 1
        self.last_skipped = reason
        return []

    def _update(self, sighting: Sighting) -> list[Alert]:
        kind, zone, at = sighting.kind, sighting.zone, sighting.at
        bag = self._bags.get(sighting.bag_id)
        if bag is None:
            bag = Bag(
                sighting.bag_id,
                sighting.flight,
                sighting.destination,
                sighting.owner,
                zone=zone,
                present=kind != "exit",
                since=sighting.entered,
                last_heard=at,
                nearest_gateway=sighting.nearest_gateway,
            )
            self._bags[bag.bag_id] = bag
            self._evict()
            return []
        self._bags.move_to_end(bag.bag_id)
        alerts: list[Alert] = []
        if bag.lost_alerted:
            bag.lost_alerted = False
            unheard = (at - bag.last_heard) / 60
            alerts.append(
                self._alert(
                    "found", bag, at, unheard, f"heard again in {zone} after {unheard:.0f} min"
                )
            )
        if kind == "exit":
            if zone == bag.zone:  # an exit of a zone it already left changes nothing
                bag.present = False
        elif zone != bag.zone or (not bag.present and at - bag.last_heard >= self.lost_after_s):
            if bag.still_alerted:
                bag.still_alerted = False
                stayed = (at - bag.since) / 60
                moved = f"moved {bag.zone} -> {zone}" if zone != bag.zone else f"back in {zone}"
                text = f"{moved} after {stayed:.0f} min"
                alerts.append(self._alert("moving", bag, at, stayed, text))
            bag.zone, bag.since, bag.present = zone, sighting.entered, True
        else:  # the same zone: heard on, or back after a short silence; the stay goes on
            bag.present = True
            bag.since = min(bag.since, sighting.entered)
        bag.last_heard = max(bag.last_heard, at)
        bag.nearest_gateway = sighting.nearest_gateway or bag.nearest_gateway
        return alerts

    def _evict(self) -> None:
        while len(self._bags) > self.max_bags:
            _, oldest = self._bags.popitem(last=False)
            self._count_gone(oldest)
            self.skipped["evicted"] += 1

    def _count_gone(self, bag: Bag) -> None:
        if not bag.present and self.is_end_zone(bag.zone):
            self.collected += 1

    # ----------------------------------------------------------------------- time

    def _sweep_if_due(self) -> list[Alert]:
        clock = self.clock
        if clock is None or (self._swept is not None and clock - self._swept < self.sweep_every_s):
            return []
        self._swept = clock
        return self.sweep()

    def sweep(self) -> list[Alert]:
        """Check every bag against the clock: still and lost alerts; forget old bags."""
        clock = self.clock
        if clock is None:
            return []
        alerts: list[Alert] = []
        for bag in list(self._bags.values()):
            if clock - bag.last_heard >= self.forget_after_s:
                del self._bags[bag.bag_id]
                self._count_gone(bag)
                continue
            alert = self._still(bag, clock) if bag.present else self._lost(bag, clock)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _still(self, bag: Bag, clock: float) -> Alert | None:
        """A bag in a zone, heard recently, there for longer than the zone's limit."""
        limit = self.still_limit(bag.zone)
        stayed = clock - bag.since
        heard = clock - bag.last_heard <= self.heard_within_s  # not a late or stale event
        if bag.still_alerted or not heard or limit is None or stayed < limit:
            return None
        bag.still_alerted = True
        near = f", near {bag.nearest_gateway}" if bag.nearest_gateway else ""
        text = (
            f"{bag.describe()} in {bag.zone} for {stayed / 60:.0f} min "
            f"(since {clock_text(bag.since)}{near})"
        )
        return self._alert("still", bag, clock, stayed / 60, text)

    def _lost(self, bag: Bag, clock: float) -> Alert | None:
        """A bag that left a zone (not an end zone) and has been unheard for too long."""
        unheard = clock - bag.last_heard
        if bag.lost_alerted or unheard < self.lost_after_s or self.is_end_zone(bag.zone):
            return None
        bag.lost_alerted = True
        near = f", last near {bag.nearest_gateway}" if bag.nearest_gateway else ""
        text = (
            f"{bag.describe()} unheard for {unheard / 60:.0f} min since it left "
            f"{bag.zone} at {clock_text(bag.last_heard)}{near}"
        )
        return self._alert("lost", bag, clock, unheard / 60, text)

    def _alert(self, condition: Condition, bag: Bag, at: float, minutes: float, text: str) -> Alert:
        self.alerts[condition] += 1
        if condition in {"moving", "found"}:
            text = f"{bag.describe()} {text}"
        return Alert(condition, bag.bag_id, bag.zone, at, minutes, text)

    # ----------------------------------------------------------------------- the table

    def table(self) -> str:
        """Bags per last-seen zone (in it now, or left it), the longest stays, the alerted."""
        clock = self.clock
        if clock is None:
            return "no bags seen yet"
        by_zone: dict[str, list[Bag]] = {}
        for bag in self._bags.values():
            by_zone.setdefault(bag.zone, []).append(bag)
        lines = [
            f"bags at {clock_text(clock)} (newest event time): {len(self._bags)} known",
            f"{'zone':<14}{'here':>6}{'still':>7}{'left':>7}  longest  nearest gateways (here)",
        ]
        for zone in sorted(by_zone):
            here = [bag for bag in by_zone[zone] if bag.present]
            still = sum(bag.still_alerted for bag in here)
            left = len(by_zone[zone]) - len(here)
            longest = f"{max(clock - bag.since for bag in here) / 60:4.0f} min" if here else "   -"
            gateways = Counter(bag.nearest_gateway or "?" for bag in here).most_common(3)
            near = ", ".join(f"{gateway} {n}" for gateway, n in gateways)
            lines.append(
                f"{zone:<14}{len(here):>6}{still:>7}{left:>7}  {longest:<8} {near}".rstrip()
            )
        gone = [bag for bag in self._bags.values() if not bag.present]
        collected = sum(self.is_end_zone(bag.zone) for bag in gone)
        lost = sum(bag.lost_alerted for bag in gone)
        lines.append(
            f"collected {collected + self.collected} (left {', '.join(self.end_zones)}), "
            f"in transit {len(gone) - collected - lost}, lost {lost}"
        )
        alerted = [bag for bag in self._bags.values() if bag.still_alerted or bag.lost_alerted]
        for bag in sorted(alerted, key=lambda bag: bag.since):
            if bag.lost_alerted:
                where = f"left {bag.zone} at {clock_text(bag.last_heard)}"
            else:
                where = f"in {bag.zone} since {clock_text(bag.since)}"
                if not bag.present:
                    where += f", unheard since {clock_text(bag.last_heard)}"
            state = "lost" if bag.lost_alerted else "still"
            lines.append(f"  {state:<6} {bag.describe()} {where}")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line of counts."""
        alerts = ", ".join(f"{condition} {n}" for condition, n in sorted(self.alerts.items()))
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        return f"alerts: {alerts or 'none'}; skipped: {skipped or 'none'}"


# --------------------------------------------------------------------------- command line


def zone_minutes(value: str) -> tuple[str, float]:
    """``ZONE=MINUTES`` (ZONE may be a pattern: ``claim-*``)."""
    zone, equals, minutes = value.partition("=")
    try:
        parsed = float(minutes)
    except ValueError:
        parsed = -1.0
    if not equals or not zone or parsed < 0:
        msg = f"expected ZONE=MINUTES (minutes >= 0), got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return zone, parsed


def main(argv: list[str] | None = None) -> int:
    """Track bags until interrupted; alerts as they happen, the table on SIGUSR1 and at exit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_connection_options(parser, client_id="luggage-tracker-example")
    parser.add_argument(
        "--still-after",
        type=float,
        default=STILL_AFTER_MIN,
        metavar="MINUTES",
        help="alert when a bag stays this long in one zone; 0: never (default: %(default)g)",
    )
    parser.add_argument(
        "--still-after-zone",
        type=zone_minutes,
        action="append",
        default=[],
        metavar="ZONE=MINUTES",
        help="the same for one zone or pattern (sorting=30, claim-*=45, checkin=0); repeatable",
    )
    parser.add_argument(
        "--heard-within",
        type=float,
        default=HEARD_WITHIN_MIN,
        metavar="MINUTES",
        help="still means heard this recently (dwell events: every minute) (default: %(default)g)",
    )
    parser.add_argument(
        "--lost-after",
        type=float,
        default=LOST_AFTER_MIN,
        metavar="MINUTES",
        help="alert when a bag is unheard this long after leaving a zone (default: %(default)g)",
    )
    parser.add_argument(
        "--end-zone",
        action="append",
        metavar="PATTERN",
        help="leaving such a zone ends the journey, not lost (default: claim-*); repeatable",
    )
    parser.add_argument("--max-bags", type=int, default=BAGS_MAX, help="(default: %(default)s)")
    parser.add_argument(
        "--forget-after",
        type=float,
        default=FORGET_AFTER_H,
        metavar="HOURS",
        help="drop bags unheard this long (default: %(default)g)",
    )
    options = parser.parse_args(argv)
    setup_logging(options)
    tracker = LuggageTracker(
        still_after_s=options.still_after * 60,
        still_after_zone=[(zone, minutes * 60) for zone, minutes in options.still_after_zone],
        heard_within_s=options.heard_within * 60,
        lost_after_s=options.lost_after * 60,
        end_zones=options.end_zone or END_ZONES,
        max_bags=options.max_bags,
        forget_after_s=options.forget_after * 3600,
    )

    def handle(_topic: str, event: Event) -> None:
        for alert in tracker.handle(event):
            print(alert.line(), flush=True)
        if tracker.last_skipped is not None:
            log.debug("skipped %s: %s", event.get("event_id"), tracker.last_skipped)

    def show_table() -> None:
        print(tracker.table(), flush=True)

    presence = events_filter(options.topic_prefix, options.site, "presence")
    consumer = Consumer(options, [presence], handle)
    status = consumer.run({signal.SIGUSR1: show_table})
    show_table()
    print(tracker.summary(), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
