"""Resolve observed EIDs to registered beacons, at any registry size (spec section 10).

Model. Each registered beacon has an identity key, a rotation exponent K and a clock offset
(``beacon counter = floor(unix time) + clock_offset``); at time ``now`` it is expected in rotation
period ``q = counter >> K``. The resolver accepts the EIDs of periods ``q - before .. q + after``
(beacons switch at a random moment inside the period), widened by a drift allowance of
``drift_ppm`` of the time since the beacon was last resolved (or registered), capped at
``power_loss_allowance`` seconds. A hit two or more periods away from the expected one re-centres
the beacon's offset on the matched period (drift tracking), so a beacon that is seen now and then
stays resolvable however far its clock drifts.

Storage. One compact table (:class:`~eid.u64map.U64MultiMap`, 16 bytes an entry) maps every EID
of every beacon's window to ``(beacon slot, period)``; per-beacon state lives in numpy columns and
byte arrays, not in per-beacon objects. Beacons are indexed by the phase at which their period
rolls, so moving time forward refreshes exactly the beacons whose period rolled (a few AES blocks
each), never the whole table. EIDs that left a window are remembered for ``replay_memory``
seconds: a lookup can then tell a replayed (stale) EID from an unknown one, and out-of-order
sightings a little older than the newest still resolve. A jump back in time of more than
:data:`BACKWARD_TOLERANCE` seconds rebuilds the table for that time.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from eid.ephemeral import COUNTER_LIMIT, EidGenerator, check_exponent
from eid.errors import EidError
from eid.phase_index import PhaseIndex
from eid.primitives import check_aes_key
from eid.resolution import BeaconState, Match, Resolution, ResolutionReason
from eid.retired import RetiredEids
from eid.u64map import EMPTY, U64MultiMap, bool_view, float_view, int_view

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_PERIODS_BEFORE: Final = 1
"""Accept the previous period's EID: beacons switch at a random moment inside the period."""
DEFAULT_PERIODS_AFTER: Final = 1
"""Accept the next period's EID: a beacon whose clock runs a little ahead."""
DEFAULT_DRIFT_PPM: Final = 150.0
"""Spec section 6: a beacon clock ticks at 1 Hz with at most 150 ppm error."""
DEFAULT_POWER_LOSS_ALLOWANCE: Final = 86_400.0
"""Cap of the drift allowance, in seconds: a day, what a daily clock save can lose on power loss."""
DEFAULT_REPLAY_MEMORY: Final = 86_400.0
"""Seconds an EID that left its window is remembered, to report it as stale (a replay)."""
DEFAULT_MAX_RETIRED: Final = 1 << 18
"""Retired EIDs remembered at most (16 bytes each in the table plus 24 in the ring: ~10 MiB)."""
BACKWARD_TOLERANCE: Final = 60
"""Seconds a lookup may lag the newest one and still be served by the retired EIDs."""
_BULK_FRACTION: Final = 4
"""Rebuild the whole table when more than 1/4 of the beacons roll in one step."""
_EID_SIZE: Final = 8
_KEY_SIZE: Final = 16
_MAX_ID_BYTES: Final = 255
_LOW32: Final = 0xFFFF_FFFF
_NO_PERIOD: Final = -1
_OFFSET_LIMIT: Final = 1 << 48
"""Offsets live in int64 columns; 2**48 s is 8.9 million years, far beyond any clock."""
_TIME_LIMIT: Final = 1 << 48
"""Times too live in int64 columns, next to the offsets: ``now`` lies within +-2**48 s."""


_new_match = object.__new__
_set_field = object.__setattr__  # builds a Match on the hot path without re-checking its fields


def _check_number(name: str, value: object, *, integer: bool = False) -> None:
    valid_type = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, valid_type)
        or not math.isfinite(value)
        or value < 0
    ):
        kind = "integer" if integer else "number"
        msg = f"{name} must be a non-negative {kind}, got {value!r}"
        raise EidError(msg)


def _check_eid(eid8: object) -> bytes:
    if not isinstance(eid8, bytes | bytearray | memoryview):
        msg = f"eid8 must be bytes, got {type(eid8).__name__}"
        raise EidError(msg)
    return bytes(eid8)


def _check_id(beacon_id: object) -> bytes:
    if not isinstance(beacon_id, str) or not beacon_id:
        msg = f"beacon_id must be a non-empty string, got {beacon_id!r}"
        raise EidError(msg)
    encoded = beacon_id.encode("utf-8", "surrogatepass")
    if len(encoded) > _MAX_ID_BYTES:
        msg = f"beacon_id must be at most {_MAX_ID_BYTES} bytes of UTF-8, got {len(encoded)}"
        raise EidError(msg)
    return encoded


def _second(now: object) -> int:
    if (
        isinstance(now, bool)
        or not isinstance(now, int | float)
        or not -_TIME_LIMIT < now < _TIME_LIMIT  # also False for NaN
    ):
        msg = f"now must be a finite number of unix seconds within +-2**48, got {now!r}"
        raise EidError(msg)
    return math.floor(now)


def _chunks(slots: npt.NDArray[np.int64], size: int = 1 << 16) -> Iterator[list[int]]:
    """The slots as lists of Python ints, a bounded list at a time (no million-int list)."""
    for start in range(0, len(slots), size):
        yield slots[start : start + size].tolist()


def _chunked(slots: npt.NDArray[np.int64]) -> Iterator[int]:
    """The slots as Python ints, one bounded chunk in memory at a time."""
    for chunk in _chunks(slots):
        yield from chunk


def _pack(slot: int, period: int) -> int:
    return (slot << 32) | period


class Resolver:
    """Resolve 8-byte EIDs to registered beacons; see the module docstring for the model."""

    def __init__(
        self,
        *,
        periods_before: int = DEFAULT_PERIODS_BEFORE,
        periods_after: int = DEFAULT_PERIODS_AFTER,
        drift_ppm: float = DEFAULT_DRIFT_PPM,
        power_loss_allowance: float = DEFAULT_POWER_LOSS_ALLOWANCE,
        replay_memory: float = DEFAULT_REPLAY_MEMORY,
        max_retired: int = DEFAULT_MAX_RETIRED,
        track_drift: bool = True,
    ) -> None:
        _check_number("periods_before", periods_before, integer=True)
        _check_number("periods_after", periods_after, integer=True)
        _check_number("drift_ppm", drift_ppm)
        _check_number("power_loss_allowance", power_loss_allowance)
        _check_number("replay_memory", replay_memory)
        _check_number("max_retired", max_retired, integer=True)
        self._before = periods_before
        self._after = periods_after
        self._drift = drift_ppm * 1e-6
        self._cap = float(power_loss_allowance)
        self._track_drift = bool(track_drift)

        self._table = U64MultiMap()
        self._ids = U64MultiMap()  # hash(beacon_id) -> slot
        self._phase = [PhaseIndex() for _ in range(16)]
        self._pending = array("q")  # registered slots not yet in the table (compact)
        self._synced: int | None = None  # the second the table is kept for
        self._built_at = 0  # the second of the last full build
        # Beacons registered while the table was already at a later second than some lookups
        # may still be: slot -> the second they were built at. Lookups before that second
        # check them directly (they were never in the table for earlier periods).
        self._late: dict[int, int] = {}
        self._late_until = 0
        self._count = 0
        self._slots = 0
        self._keys = bytearray()  # identity keys, 16 bytes a slot
        self._id_blob = bytearray()  # beacon ids: a length byte, then UTF-8
        self._allocate(16)
        self._retired = RetiredEids(max_retired, replay_memory)

    # ------------------------------------------------------------------------------- beacon columns

    def _allocate(self, capacity: int) -> None:
        """Create (or grow to ``capacity``) the per-beacon columns."""

        def column(name: str, dtype: type[np.generic], fill: float) -> npt.NDArray[Any]:
            new = np.full(capacity, fill, dtype=dtype)
            old: npt.NDArray[Any] | None = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old
            return new

        self._keys.extend(bytes(capacity * _KEY_SIZE - len(self._keys)))
        self._exponent_col = column("_exponent_col", np.int8, 0)
        self._offset_col = column("_offset_col", np.int64, 0)
        self._last_col = column("_last_col", np.float64, np.nan)
        self._lo_col = column("_lo_col", np.int64, _NO_PERIOD)
        self._hi_col = column("_hi_col", np.int64, _NO_PERIOD - 1)
        self._alive_col = column("_alive_col", np.bool_, 0)
        self._shifted_col = column("_shifted_col", np.bool_, 0)
        self._id_start_col = column("_id_start_col", np.uint32, 0)
        self._capacity = capacity
        # Scalar access goes through memoryviews: a Python int per read, no numpy boxing.
        self._exponent = int_view(self._exponent_col, "b")
        self._offset = int_view(self._offset_col, "q")
        self._last = float_view(self._last_col)
        self._lo = int_view(self._lo_col, "q")
        self._hi = int_view(self._hi_col, "q")
        self._alive = bool_view(self._alive_col)
        self._shifted = bool_view(self._shifted_col)
        self._id_start = int_view(self._id_start_col, "I")

    def _beacon_id(self, slot: int) -> str:
        start = self._id_start[slot]
        length = self._id_blob[start]
        return self._id_blob[start + 1 : start + 1 + length].decode("utf-8", "surrogatepass")

    def _identity_key(self, slot: int) -> bytes:
        return bytes(self._keys[slot * _KEY_SIZE : (slot + 1) * _KEY_SIZE])

    def _find_slot(self, beacon_id: object) -> int | None:
        if not isinstance(beacon_id, str):
            return None
        for slot in self._ids.find(hash(beacon_id) & ((1 << 64) - 1)):
            if self._alive[slot] and self._beacon_id(slot) == beacon_id:
                return slot
        return None

    # ---------------------------------------------------------------------------------- public API

    def __len__(self) -> int:
        return self._count

    def __contains__(self, beacon_id: object) -> bool:
        return self._find_slot(beacon_id) is not None

    def __repr__(self) -> str:
        return f"Resolver(beacons={self._count})"

    def register(
        self,
        beacon_id: str,
        identity_key: bytes,
        exponent: int,
        clock_offset: int,
        *,
        registered_at: float | None = None,
    ) -> None:
        """Register (or re-register, replacing) a beacon; its counter is ``unix time + offset``.

        ``registered_at`` (unix seconds) starts the beacon's drift allowance; by default it
        starts at the first lookup after registration.
        """
        encoded = _check_id(beacon_id)
        check_aes_key(identity_key, "identity key")
        check_exponent(exponent)
        if type(clock_offset) is not int or abs(clock_offset) >= _OFFSET_LIMIT:
            msg = f"clock_offset must be an integer within +-2**48 seconds, got {clock_offset!r}"
            raise EidError(msg)
        if registered_at is not None:
            _second(registered_at)
        self.unregister(beacon_id)
        if self._slots == self._capacity:
            self._allocate(self._capacity * 2)
        slot = self._slots
        self._slots += 1
        self._keys[slot * _KEY_SIZE : (slot + 1) * _KEY_SIZE] = bytes(identity_key)
        self._exponent[slot] = exponent
        self._offset[slot] = clock_offset
        self._last[slot] = math.nan if registered_at is None else float(registered_at)
        self._alive[slot] = True
        self._id_start[slot] = len(self._id_blob)
        self._id_blob.append(len(encoded))
        self._id_blob.extend(encoded)
        self._ids.insert(hash(beacon_id) & ((1 << 64) - 1), slot)
        self._pending.append(slot)
        self._count += 1

    def unregister(self, beacon_id: str) -> bool:
        """Forget a beacon; return whether it was registered."""
        slot = self._find_slot(beacon_id)
        if slot is None:
            return False
        self._set_window(slot, _NO_PERIOD, _NO_PERIOD - 1, None)
        self._alive[slot] = False
        self._ids.remove(hash(beacon_id) & ((1 << 64) - 1), slot)
        self._count -= 1
        return True

    def state(self, beacon_id: str) -> BeaconState | None:
        """The beacon's exponent, current clock offset estimate and last resolution time."""
        slot = self._find_slot(beacon_id)
        if slot is None:
            return None
        last = self._last[slot]
        return BeaconState(
            beacon_id, self._exponent[slot], self._offset[slot], None if math.isnan(last) else last
        )

    def resolve(self, eid8: bytes, now: float) -> Match | None:
        """The beacon whose EID at ``now`` (unix seconds) is ``eid8``, or None (see lookup)."""
        eid_bytes = eid8 if type(eid8) is bytes else _check_eid(eid8)
        if type(now) is int and -_TIME_LIMIT < now < _TIME_LIMIT:
            second = now
        elif type(now) is float and -_TIME_LIMIT < now < _TIME_LIMIT:
            second = math.floor(now)
        else:
            second = _second(now)
        if second != self._synced or self._pending:
            self._sync(second)
        if len(eid_bytes) != _EID_SIZE:
            return None
        key = int.from_bytes(eid_bytes, "big")
        value = self._table.find_unique(key)
        if value != EMPTY and second >= self._late_until:
            # The common case, inlined: one entry, a beacon with no drift allowance yet, seen
            # inside the period its clock estimate predicts (what _offset_in_window and _track
            # do, without their calls; anything else takes the general path below).
            slot, period = value >> 32, value & _LOW32
            exponent = self._exponent[slot]
            last = self._last[slot]
            if (
                (second + self._offset[slot]) >> exponent == period
                and self._alive[slot]
                and self._drift * (second + (1 << exponent) - last) < 1
            ):
                if second > last:
                    self._last[slot] = second
                start = self._id_start[slot]
                blob = self._id_blob
                match = _new_match(Match)
                _set_field(
                    match,
                    "beacon_id",
                    blob[start + 1 : start + 1 + blob[start]].decode("utf-8", "surrogatepass"),
                )
                _set_field(match, "counter", period << exponent)
                _set_field(match, "period_offset", 0)
                return match
        accepted, _ = self._candidates(key, second)
        if len(accepted) != 1:
            return None
        [(slot, (period, offset))] = accepted.items()
        self._track(slot, period, second)
        return Match(self._beacon_id(slot), period << self._exponent[slot], offset)

    def lookup(self, eid8: bytes, now: float) -> Resolution:
        """Resolve ``eid8`` seen at ``now``; say why when it does not resolve."""
        eid_bytes = _check_eid(eid8)
        second = _second(now)
        self._sync(second)
        if len(eid_bytes) != _EID_SIZE:
            return Resolution(ResolutionReason.UNKNOWN)
        accepted, stale = self._candidates(int.from_bytes(eid_bytes, "big"), second)
        if len(accepted) > 1:
            ids = tuple(sorted(self._beacon_id(slot) for slot in accepted))
            return Resolution(ResolutionReason.AMBIGUOUS, beacon_ids=ids)
        if not accepted:
            if stale:
                ids = tuple(sorted(self._beacon_id(slot) for slot in stale))
                return Resolution(ResolutionReason.STALE, beacon_ids=ids)
            return Resolution(ResolutionReason.UNKNOWN)
        [(slot, (period, offset))] = accepted.items()
        exponent = self._exponent[slot]
        match = Match(self._beacon_id(slot), period << exponent, offset)
        self._track(slot, period, second)
        return Resolution(ResolutionReason.RESOLVED, match, (match.beacon_id,))

    def _candidates(self, key: int, second: int) -> tuple[dict[int, tuple[int, int]], set[int]]:
        """Beacons showing ``key`` within their window (slot -> period, offset), and outside it.

        The live table and the EIDs retired from it both answer: a retired EID still inside its
        beacon's window serves an out-of-order sighting, one outside it tells a replay from an
        unknown EID.
        """
        accepted: dict[int, tuple[int, int]] = {}
        stale: set[int] = set()
        if second < self._late_until:
            self._late_candidates(key, second, accepted)
        for source in (self._table, self._retired):
            for value in source.find(key):
                slot, period = value >> 32, value & _LOW32
                if not self._alive[slot]:
                    continue
                offset = self._offset_in_window(slot, period, second)
                if offset is None:
                    stale.add(slot)
                elif slot not in accepted or abs(offset) < abs(accepted[slot][1]):
                    accepted[slot] = (period, offset)
        stale.difference_update(accepted)
        return accepted, stale

    def _late_candidates(self, key: int, second: int, accepted: dict[int, tuple[int, int]]) -> None:
        """Check beacons built after ``second`` against their window at ``second``, directly."""
        for slot, built in self._late.items():
            if built <= second or not self._alive[slot]:
                continue
            exponent = self._exponent[slot]
            counter = second + self._offset[slot]
            allowance = self._allowance(slot, second)
            low = max(((counter - allowance) >> exponent) - self._before, 0)
            high = min(
                ((counter + allowance) >> exponent) + self._after, (COUNTER_LIMIT - 1) >> exponent
            )
            generator = EidGenerator(self._identity_key(slot))
            for period in range(low, high + 1):
                if (
                    int.from_bytes(generator.eid_unchecked(exponent, period << exponent), "big")
                    == key
                ):
                    offset = period - (counter >> exponent)
                    if slot not in accepted or abs(offset) < abs(accepted[slot][1]):
                        accepted[slot] = (period, offset)

    # ------------------------------------------------------------------------------------ windows

    def _allowance(self, slot: int, second: int) -> int:
        """Whole seconds of drift allowance: drift_ppm of the time since last resolved, capped.

        Rounded down: a fraction of a second is covered by the neighbouring periods already.
        """
        last = self._last[slot]
        if math.isnan(last) or second <= last:
            return 0
        return math.floor(min(self._drift * (second - last), self._cap))

    def _offset_in_window(self, slot: int, period: int, second: int) -> int | None:
        exponent = self._exponent[slot]
        counter = second + self._offset[slot]
        allowance = self._allowance(slot, second)
        low = ((counter - allowance) >> exponent) - self._before
        high = ((counter + allowance) >> exponent) + self._after
        if low <= period <= high:
            return period - (counter >> exponent)
        return None

    def _table_window(self, slot: int, second: int) -> tuple[int, int]:
        """Periods the table must hold for the beacon from ``second`` until its next refresh.

        Refreshes come when the period rolls, at the phase the beacon was indexed with; once
        drift tracking has moved its offset by a fraction of a period, the next refresh may come
        up to a whole period later, so the window then covers a whole period ahead.
        """
        exponent = self._exponent[slot]
        counter = second + self._offset[slot]
        if self._shifted[slot]:
            period_end = counter + (1 << exponent)
        else:
            period_end = ((counter >> exponent) + 1) << exponent  # first counter of next period
        allowance = self._allowance(slot, second + (period_end - counter))
        low = max(((counter - allowance) >> exponent) - self._before, 0)
        high = min(
            ((period_end - 1 + allowance) >> exponent) + self._after,
            (COUNTER_LIMIT - 1) >> exponent,
        )
        return low, high

    def _set_window(self, slot: int, low: int, high: int, second: int | None) -> None:
        """Make the table hold exactly periods ``low..high`` of the beacon (retire the rest)."""
        old_low, old_high = self._lo[slot], self._hi[slot]
        if (old_low, old_high) == (low, high):
            return
        exponent = self._exponent[slot]
        generator = EidGenerator(self._identity_key(slot))
        for period in range(old_low, old_high + 1):
            if low <= period <= high:
                continue
            key = int.from_bytes(generator.eid_unchecked(exponent, period << exponent), "big")
            value = _pack(slot, period)
            self._table.remove(key, value)
            if second is not None:
                self._retired.retire(key, value, second)
        for period in range(low, high + 1):
            if old_low <= period <= old_high:
                continue
            key = int.from_bytes(generator.eid_unchecked(exponent, period << exponent), "big")
            self._table.insert(key, _pack(slot, period))
        self._lo[slot], self._hi[slot] = low, high

    def _track(self, slot: int, period: int, second: int) -> None:
        """After a hit: restart the drift allowance and re-centre the beacon's clock estimate.

        A beacon shows period q's EID from ``q * 2**K + d`` to ``(q + 1) * 2**K + d``, with d
        its (fixed) random switching delay: for the resolver that delay is part of the clock
        offset. So a hit on period q at ``second`` bounds the effective counter to period q, and
        the offset moves by the least that puts the prediction there (drift tracking).
        """
        last = self._last[slot]
        self._last[slot] = float(second) if math.isnan(last) else max(last, float(second))
        exponent = self._exponent[slot]
        counter = second + self._offset[slot]
        start, end = period << exponent, (period + 1) << exponent
        shift = start - counter if counter < start else min(end - 1 - counter, 0)
        if not (shift and self._track_drift):
            # The table window was built with an allowance of at most what this bound gives;
            # below one second it was zero, and it stays zero: nothing to move.
            if math.isnan(last) or self._drift * (second + (1 << exponent) - last) < 1:
                return
        else:
            self._offset[slot] += shift
            if shift % (1 << exponent):
                self._shifted[slot] = True
        table_time = max(second, self._synced or second)
        low, high = self._table_window(slot, table_time)
        self._set_window(slot, low, high, table_time)

    # --------------------------------------------------------------------------- keeping in time

    def _sync(self, second: int) -> None:
        synced = self._synced
        if synced is None or second < self._built_at or second < synced - BACKWARD_TOLERANCE:
            # Before the last build nothing was ever in the table; long before the newest
            # lookup the retired EIDs may be gone: build the table for this time instead.
            self._rebuild(second)
            return
        if second > synced:
            if second - synced > self._gapless_jump():
                # Periods of some windows were skipped, never in the table and never retired:
                # a later lookup before this second must rebuild rather than miss them.
                self._built_at = second
            self._roll(synced + 1, second)
            self._synced = second
            self._retired.expire(second)
            if self._late and second - BACKWARD_TOLERANCE > self._late_until:
                self._late.clear()
        if self._pending:
            pending, self._pending = self._pending, array("q")
            built = max(second, synced)
            self._build(np.frombuffer(pending, dtype=np.int64), built)
            if built > self._built_at:
                for slot in pending:
                    self._late[slot] = built
                self._late_until = max(self._late_until, built)

    def _gapless_jump(self) -> int:
        """The longest step forward after which every skipped period was in the table before."""
        for exponent, index in enumerate(self._phase):
            if len(index.slots):
                return (self._before + self._after + 1) << exponent
        return COUNTER_LIMIT

    def _roll(self, first: int, last: int) -> None:
        """Refresh the beacons whose period rolls at a second in ``first..last``."""
        batches: list[npt.NDArray[np.int32]] = []
        for exponent, index in enumerate(self._phase):
            if not len(index.slots):
                continue
            period = 1 << exponent
            if last - first + 1 >= period:
                batches.append(index.slots)
            else:
                batches.append(index.rolled(first, last, period))
        rolled = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int32)
        if len(rolled) * _BULK_FRACTION > max(self._count, 1) and len(rolled) > 64:  # noqa: PLR2004
            self._rebuild(last)
            return
        for slot in rolled.tolist():
            if self._alive[slot]:
                low, high = self._table_window(slot, last)
                self._set_window(slot, low, high, last)

    def _rebuild(self, second: int) -> None:
        """Build the whole table for ``second`` (first lookup, or a jump back in time)."""
        self._table = U64MultiMap()
        self._lo_col[: self._slots] = _NO_PERIOD
        self._hi_col[: self._slots] = _NO_PERIOD - 1
        self._phase = [PhaseIndex() for _ in range(16)]
        alive = np.flatnonzero(self._alive_col[: self._slots])
        self._pending = array("q")
        self._synced = second
        self._built_at = second
        self._late.clear()
        self._late_until = 0
        self._build(alive, second)

    def _build(self, slots: npt.NDArray[np.int64], second: int) -> None:
        """Put newly registered (or all) beacons in the table at once.

        Windows first, then the table is sized once and filled a chunk of beacons at a time,
        so that building a million beacons leaves no large temporaries behind.
        """
        for slot in _chunked(slots):
            if not self._alive[slot]:
                continue
            if math.isnan(self._last[slot]):
                self._last[slot] = float(second)
            self._shifted[slot] = False  # indexed below with its current phase
            self._lo[slot], self._hi[slot] = self._table_window(slot, second)
        sizes = self._hi_col[slots] - self._lo_col[slots] + 1
        self._table.reserve(len(self._table) + int(sizes[sizes > 0].sum()))
        for chunk in _chunks(slots):
            keys = array("Q")
            values = array("Q")
            for slot in chunk:
                if not self._alive[slot]:
                    continue
                exponent = self._exponent[slot]
                generator = EidGenerator(self._identity_key(slot))
                for period in range(self._lo[slot], self._hi[slot] + 1):
                    eid8 = generator.eid_unchecked(exponent, period << exponent)
                    keys.append(int.from_bytes(eid8, "big"))
                    values.append(_pack(slot, period))
            self._table.insert_many(
                np.frombuffer(keys, dtype=np.uint64), np.frombuffer(values, dtype=np.uint64)
            )
        live = slots[self._alive_col[slots]]
        if len(live):
            exponents = self._exponent_col[live]
            for exponent in np.unique(exponents).tolist():
                members = live[exponents == exponent]
                phases = (-self._offset_col[members]) % (1 << exponent)
                self._phase[exponent].keep(self._alive_col)
                self._phase[exponent].add(phases, members)


__all__ = ["BeaconState", "Match", "Resolution", "ResolutionReason", "Resolver"]
