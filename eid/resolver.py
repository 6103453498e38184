"""Resolve observed EIDs to registered beacons (eddystone-spec.md section 10).

Each registered beacon has an identity key, a rotation exponent K and a clock offset
(``beacon counter = floor(unix time) + clock_offset``). At time ``now`` a beacon is expected in
rotation period ``q = counter >> K``; since beacons switch EIDs at a random moment inside the
period and clocks drift, the resolver accepts the EIDs of periods ``q - before .. q + after``.

A table maps every EID of every beacon's window to ``(beacon, period)``, so a lookup is one dict
access. Each beacon's entries roll when its own period rolls (a heap orders the beacons by the
time their period ends), so time moving forward costs a few AES blocks per beacon per period and
never a full rebuild. The table keeps one extra past period per beacon, so sightings that arrive
slightly out of order still resolve; a jump back in time past that rebuilds the table.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Final

from eid.ephemeral import COUNTER_LIMIT, EidGenerator, check_exponent
from eid.errors import EidError

DEFAULT_PERIODS_BEFORE: Final = 1
"""Accept the previous period's EID: beacons switch at a random moment inside the period."""
DEFAULT_PERIODS_AFTER: Final = 1
"""Accept the next period's EID: a beacon clock running ahead of the registered offset."""
_EID_SIZE: Final = 8


@dataclass(frozen=True, slots=True)
class Match:
    """An EID resolved to a beacon.

    ``counter`` is the beacon's counter at the start of the rotation period whose EID matched
    (what :func:`eid.decrypt_etlm` needs); ``period_offset`` is that period relative to the one
    the registered clock offset predicts (-1 previous, 0 expected, +1 next, ...).
    """

    beacon_id: str
    counter: int
    period_offset: int


@dataclass(slots=True, eq=False)
class _Beacon:
    beacon_id: str
    generator: EidGenerator
    exponent: int
    clock_offset: int
    entries: list[bytes] = field(default_factory=list)
    serial: int = 0


def _check_registration(beacon_id: object, exponent: object, clock_offset: object) -> None:
    if not isinstance(beacon_id, str) or not beacon_id:
        msg = f"beacon_id must be a non-empty string, got {beacon_id!r}"
        raise EidError(msg)
    check_exponent(exponent)
    if not isinstance(clock_offset, int) or isinstance(clock_offset, bool):
        msg = f"clock_offset must be an integer number of seconds, got {clock_offset!r}"
        raise EidError(msg)


def _check_window(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"{name} must be a non-negative integer, got {value!r}"
        raise EidError(msg)


def _check_eid(eid8: object) -> bytes:
    if not isinstance(eid8, bytes | bytearray | memoryview):
        msg = f"eid8 must be bytes, got {type(eid8).__name__}"
        raise EidError(msg)
    return bytes(eid8)


class Resolver:
    """Resolve 8-byte EIDs to registered beacons within a window of rotation periods."""

    def __init__(
        self,
        *,
        periods_before: int = DEFAULT_PERIODS_BEFORE,
        periods_after: int = DEFAULT_PERIODS_AFTER,
    ) -> None:
        _check_window("periods_before", periods_before)
        _check_window("periods_after", periods_after)
        self._before = periods_before
        self._after = periods_after
        self._beacons: dict[str, _Beacon] = {}
        self._table: dict[bytes, list[tuple[_Beacon, int]]] = {}
        self._due: list[tuple[int, int, _Beacon]] = []  # (second its period ends, tie, beacon)
        self._pending: dict[str, _Beacon] = {}  # registered, not yet in the table
        self._shortest_period = 1 << 15  # shortest rotation period registered (never grows back)
        self._synced_to: int | None = None  # the wall second the table is built for
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._beacons)

    def __contains__(self, beacon_id: object) -> bool:
        return beacon_id in self._beacons

    def __repr__(self) -> str:
        return f"Resolver(beacons={len(self._beacons)})"

    def register(
        self, beacon_id: str, identity_key: bytes, exponent: int, clock_offset: int
    ) -> None:
        """Register (or re-register, replacing) a beacon; its counter is ``unix time + offset``."""
        _check_registration(beacon_id, exponent, clock_offset)
        beacon = _Beacon(beacon_id, EidGenerator(identity_key), exponent, clock_offset)
        self.unregister(beacon_id)
        self._beacons[beacon_id] = beacon
        self._pending[beacon_id] = beacon
        self._shortest_period = min(self._shortest_period, 1 << exponent)

    def unregister(self, beacon_id: str) -> bool:
        """Forget a beacon; return whether it was registered."""
        beacon = self._beacons.pop(beacon_id, None)
        if beacon is None:
            return False
        self._drop_entries(beacon)
        beacon.serial = -1  # its heap entry is now stale
        self._pending.pop(beacon_id, None)
        return True

    def resolve(self, eid8: bytes, now: float) -> Match | None:
        """The beacon whose EID at time ``now`` (unix seconds) is ``eid8``, or None.

        None when no registered beacon shows that EID within the window, or when two beacons do
        (an ambiguous EID is never attributed to either).
        """
        key = _check_eid(eid8)
        second = self._second(now)
        self._sync(second)
        candidates = self._table.get(key) if len(key) == _EID_SIZE else None
        if not candidates:
            return None
        found: dict[str, Match] = {}
        for beacon, period in candidates:
            offset = period - self._period(beacon, second)
            if -self._before <= offset <= self._after:
                best = found.get(beacon.beacon_id)
                if best is None or abs(offset) < abs(best.period_offset):
                    counter = period << beacon.exponent
                    found[beacon.beacon_id] = Match(beacon.beacon_id, counter, offset)
        if len(found) != 1:
            return None
        return next(iter(found.values()))

    # -------------------------------------------------------------------------------- table upkeep

    @staticmethod
    def _second(now: object) -> int:
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            msg = f"now must be a finite number of unix seconds, got {now!r}"
            raise EidError(msg)
        return math.floor(now)

    @staticmethod
    def _period(beacon: _Beacon, second: int) -> int:
        return (second + beacon.clock_offset) >> beacon.exponent

    def _period_end(self, beacon: _Beacon, second: int) -> int:
        """The first wall second of the beacon's next rotation period."""
        return ((self._period(beacon, second) + 1) << beacon.exponent) - beacon.clock_offset

    def _sync(self, second: int) -> None:
        synced = self._synced_to
        if synced is not None and second < synced:
            # Out-of-order sightings within the shortest period are served by the extra past
            # period each beacon keeps; a larger jump back rebuilds the table for that time.
            if second < synced - self._shortest_period:
                self._rebuild(second)
            self._refresh_pending(synced)
            return
        self._synced_to = second
        self._refresh_pending(second)
        due = self._due
        while due and due[0][0] <= second:
            _, serial, beacon = heapq.heappop(due)
            if serial == beacon.serial:  # else unregistered or refreshed since: stale
                self._refresh(beacon, second)

    def _refresh_pending(self, second: int) -> None:
        pending, self._pending = self._pending, {}
        for beacon in pending.values():
            self._refresh(beacon, second)

    def _rebuild(self, second: int) -> None:
        self._table.clear()
        self._due.clear()
        for beacon in self._beacons.values():
            beacon.entries.clear()
            self._refresh(beacon, second)
        self._pending.clear()
        self._synced_to = second

    def _refresh(self, beacon: _Beacon, second: int) -> None:
        """Put the beacon's window around ``second`` (plus one extra past period) in the table."""
        self._drop_entries(beacon)
        current = self._period(beacon, second)
        entries = beacon.entries
        for period in range(current - self._before - 1, current + self._after + 1):
            counter = period << beacon.exponent
            if not 0 <= counter < COUNTER_LIMIT:
                continue  # outside the beacon's uint32 clock: it never shows such an EID
            eid8 = beacon.generator.eid(beacon.exponent, counter)
            self._table.setdefault(eid8, []).append((beacon, period))
            entries.append(eid8)
        beacon.serial = next(self._tie)
        heapq.heappush(self._due, (self._period_end(beacon, second), beacon.serial, beacon))

    def _drop_entries(self, beacon: _Beacon) -> None:
        for eid8 in beacon.entries:
            bucket = self._table.get(eid8)
            if bucket is None:
                continue
            bucket[:] = [entry for entry in bucket if entry[0] is not beacon]
            if not bucket:
                del self._table[eid8]
        beacon.entries.clear()
