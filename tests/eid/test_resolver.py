"""eid.Resolver against EIDs computed by the independent oracle (never by eid.compute_eid).

Model (design.md, spec section 10): beacon counter = floor(unix time) + clock_offset; the period is
counter >> K; the resolver accepts the previous, current and next period by default and reports the
beacon counter at the start of the matched period and the period's offset from the expected one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eid
from eid import Match, Resolver
from eid import resolver as resolver_module
from tests.eid import oracle

if TYPE_CHECKING:
    from collections.abc import Iterable

T0 = 1_700_000_000
"""A wall-clock second (2023-11-14) as plain data; nothing reads the real clock."""
IK_A = bytes.fromhex("0102030405060708090a111213141516")
IK_B = bytes.fromhex("00112233445566778899aabbccddeeff")
IK_C = bytes.fromhex("589417b0324b1b71d7a6751852867ae8")

keys = st.binary(min_size=16, max_size=16)
exponents = st.integers(min_value=0, max_value=15)


def period_of(now: float, exponent: int, clock_offset: int) -> int:
    return (math.floor(now) + clock_offset) >> exponent


def eid_of_period(ik: bytes, exponent: int, period: int) -> bytes:
    return oracle.compute_eid(ik, exponent, period << exponent)


@dataclass(frozen=True)
class Beacon:
    beacon_id: str
    ik: bytes
    exponent: int
    clock_offset: int


def assert_window(
    resolver: Resolver, beacon: Beacon, now: float, *, before: int = 1, after: int = 1
) -> None:
    """The EIDs of periods -before..+after resolve to the beacon; two more either side do not."""
    beacon_id, ik, exponent, clock_offset = (
        beacon.beacon_id,
        beacon.ik,
        beacon.exponent,
        beacon.clock_offset,
    )
    current = period_of(now, exponent, clock_offset)
    for delta in range(-before - 2, after + 3):
        period = current + delta
        if not 0 <= period << exponent < 2**32:
            continue
        found = resolver.resolve(eid_of_period(ik, exponent, period), now)
        if -before <= delta <= after:
            assert found == Match(beacon_id, counter=period << exponent, period_offset=delta), (
                f"delta {delta}"
            )
        else:
            assert found is None, f"delta {delta}"


def counter_at(now: float, clock_offset: int) -> int:
    return math.floor(now) + clock_offset


# ----------------------------------------------------------------------- the resolution window


@given(
    keys,
    exponents,
    st.integers(min_value=6 << 15, max_value=2**32 - (6 << 15)),
    st.integers(min_value=0, max_value=2**33),
    st.floats(min_value=0.0, max_value=0.999),
)
def test_previous_current_and_next_period_resolve_and_two_away_do_not(
    ik: bytes, exponent: int, counter: int, second: int, fraction: float
) -> None:
    clock_offset = counter - second
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("beacon", ik, exponent, clock_offset)
    assert_window(resolver, Beacon("beacon", ik, exponent, clock_offset), second + fraction)


@pytest.mark.parametrize("exponent", [0, 1, 10, 15])
@pytest.mark.parametrize("order", ["at-start-first", "second-before-first", "fresh"])
def test_exact_rotation_boundaries(exponent: int, order: str) -> None:
    period = 40_000 >> (exponent // 2)  # a boundary well inside uint32 for every K
    start = period << exponent
    clock_offset = start - T0  # the beacon counter is exactly a period start at T0
    assert counter_at(T0, clock_offset) == start
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, exponent, clock_offset)
    schedules: dict[str, list[float]] = {
        "at-start-first": [T0, T0 - 1, T0 - 0.25],
        "second-before-first": [T0 - 1, T0, T0 - 0.25],
        "fresh": [T0],
    }
    for now in schedules[order]:
        assert_window(resolver, Beacon("b", IK_A, exponent, clock_offset), now)
    if order == "fresh":
        for now in (T0 - 1, T0 - 0.001, T0 + 0.999):
            fresh = Resolver(drift_ppm=0, track_drift=False)
            fresh.register("b", IK_A, exponent, clock_offset)
            assert_window(fresh, Beacon("b", IK_A, exponent, clock_offset), now)


@pytest.mark.parametrize("exponent", [0, 1, 10, 15])
def test_boundary_second_belongs_to_the_new_period(exponent: int) -> None:
    start = 77 << max(exponent, 16)
    clock_offset = start - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_B, exponent, clock_offset)
    new = eid_of_period(IK_B, exponent, start >> exponent)
    old = eid_of_period(IK_B, exponent, (start >> exponent) - 1)
    assert resolver.resolve(new, T0) == Match("b", start, 0)
    assert resolver.resolve(old, T0) == Match("b", start - (1 << exponent), -1)
    assert resolver.resolve(old, T0 - 1) == Match("b", start - (1 << exponent), 0)
    assert resolver.resolve(new, T0 - 1) == Match("b", start, 1)


# ------------------------------------------------------------------------- TK rollover (2**16)


@pytest.mark.parametrize("exponent", [0, 4])
def test_tk_rollover_from_65535_to_65536(exponent: int) -> None:
    clock_offset = 65535 - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, exponent, clock_offset)
    for now in (T0 - 1, T0, T0 + 1, T0 + 16, T0 + 17, T0, T0 - 2):
        assert_window(resolver, Beacon("b", IK_A, exponent, clock_offset), now)
    # The first EID of the new TK block resolves on both sides of the rollover.
    first_new = oracle.compute_eid(IK_A, exponent, 65536)
    assert resolver.resolve(first_new, T0) == Match("b", 65536, 1)
    assert resolver.resolve(first_new, T0 + 1) == Match("b", 65536, 0)


@pytest.mark.parametrize("block", [1, 2, 255, 0x5A7C, 0x8000, 0xFFFF])
@pytest.mark.parametrize("exponent", [0, 3, 12, 15])
def test_tk_rollover_near_every_multiple_of_65536(block: int, exponent: int) -> None:
    rollover = block * 65536
    clock_offset = rollover - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_C, exponent, clock_offset)
    for now in (T0 - 1, T0, T0 + 1, T0 - (1 << exponent), T0 + (1 << exponent)):
        assert_window(resolver, Beacon("b", IK_C, exponent, clock_offset), now)


def test_counter_at_the_top_of_uint32_resolves_previous_and_current() -> None:
    clock_offset = 2**32 - 1 - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 0, clock_offset)
    assert resolver.resolve(oracle.compute_eid(IK_A, 0, 2**32 - 1), T0) == Match("b", 2**32 - 1, 0)
    assert resolver.resolve(oracle.compute_eid(IK_A, 0, 2**32 - 2), T0) == Match("b", 2**32 - 2, -1)
    assert_window(resolver, Beacon("b", IK_A, 0, clock_offset), T0)


def test_beacon_whose_counter_is_negative_resolves_nothing() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 0, -T0 - 100)
    assert resolver.resolve(oracle.compute_eid(IK_A, 0, 0), T0) is None
    # 100 seconds later the counter reaches 0 and the beacon resolves.
    assert resolver.resolve(oracle.compute_eid(IK_A, 0, 0), T0 + 100) == Match("b", 0, 0)


# --------------------------------------------------------------------------------- many beacons


@settings(max_examples=5)
@given(st.integers(min_value=0, max_value=2**64))
def test_200_beacons_each_resolve_to_themselves(seed: int) -> None:
    rng = random.Random(seed)  # distinct beacons (hypothesis' own Random starts from all zeros)
    beacons = [
        (f"beacon-{index}", rng.randbytes(16), rng.randint(0, 15), rng.randint(-(10**9), 10**9))
        for index in range(200)
    ]
    assert len({ik for _, ik, _, _ in beacons}) == 200
    resolver = Resolver(drift_ppm=0, track_drift=False)
    for beacon_id, ik, exponent, clock_offset in beacons:
        resolver.register(beacon_id, ik, exponent, clock_offset)
    assert len(resolver) == 200
    for now in (T0, T0 + 40_000.5):
        for beacon_id, ik, exponent, clock_offset in beacons:
            current = period_of(now, exponent, clock_offset)
            for delta in (-1, 0, 1):
                period = current + delta
                found = resolver.resolve(eid_of_period(ik, exponent, period), now)
                assert found == Match(beacon_id, period << exponent, delta)


# --------------------------------------------------------------------------------- moving time


@pytest.mark.parametrize("exponent", [0, 1, 4, 10, 15])
def test_time_moving_forward_over_50_periods_keeps_resolving(exponent: int) -> None:
    clock_offset = 123_456_789 - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_B, exponent, clock_offset)
    for step in range(50):
        now = T0 + step * (1 << exponent) + 0.5
        assert_window(resolver, Beacon("b", IK_B, exponent, clock_offset), now)


def test_mixed_exponents_stepping_one_second_at_a_time() -> None:
    beacons = [
        ("k0", IK_A, 0, 1000 - T0),
        ("k1", IK_B, 1, 65_530 - T0),
        ("k2", IK_C, 2, 7 - T0),
        ("k3", bytes(range(16)), 3, 2**31 - T0),
        ("k8", bytes(range(16, 32)), 8, 65_536 * 9 - 100 - T0),
    ]
    resolver = Resolver(drift_ppm=0, track_drift=False)
    for beacon_id, ik, exponent, clock_offset in beacons:
        resolver.register(beacon_id, ik, exponent, clock_offset)
    for second in range(300):
        for beacon_id, ik, exponent, clock_offset in beacons:
            current = period_of(T0 + second, exponent, clock_offset)
            for delta in (-1, 0, 1):
                period = current + delta
                found = resolver.resolve(eid_of_period(ik, exponent, period), T0 + second)
                assert found == Match(beacon_id, period << exponent, delta)


@pytest.mark.parametrize("exponent", [0, 2, 10, 15])
def test_time_moving_back_ten_periods_still_resolves(exponent: int) -> None:
    clock_offset = 3_000_000 - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, exponent, clock_offset)
    later = T0 + 20 * (1 << exponent)
    assert_window(resolver, Beacon("b", IK_A, exponent, clock_offset), later)
    earlier = later - 10 * (1 << exponent)
    assert_window(resolver, Beacon("b", IK_A, exponent, clock_offset), earlier)
    assert_window(resolver, Beacon("b", IK_A, exponent, clock_offset), later)


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, 10])
def test_out_of_order_sightings_by_a_few_seconds(exponent: int) -> None:
    clock_offset = 5_000_000 - T0
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_C, exponent, clock_offset)
    for now in (T0, T0 - 3, T0 + 1, T0 - 2, T0 + 4.5, T0 + 0.25, T0 + 8, T0 + 5, T0 + 7, T0 + 6):
        assert_window(resolver, Beacon("b", IK_C, exponent, clock_offset), now)


beacon_params = st.builds(
    lambda ik, exponent, offset: (ik, exponent, offset),
    keys,
    exponents,
    st.integers(min_value=-(10**9), max_value=10**9),
)
time_steps = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=-(2**17), max_value=2**17),
    st.sampled_from([0, 1, -1]),
)
_OPERATION_KINDS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "resolve": st.tuples(st.just("resolve"), time_steps, st.integers(0, 3), st.integers(-3, 3)),
    "register": st.tuples(st.just("register"), st.integers(0, 3), beacon_params),
    "unregister": st.tuples(st.just("unregister"), st.integers(0, 3)),
}
operations = st.sampled_from(["resolve"] * 6 + ["register", "unregister"]).flatmap(
    _OPERATION_KINDS.__getitem__
)


@given(
    st.lists(beacon_params, min_size=4, max_size=4),
    st.lists(operations, min_size=10, max_size=40),
)
def test_resolution_never_depends_on_history(
    initial: list[tuple[bytes, int, int]], ops: list[tuple[Any, ...]]
) -> None:
    """Whatever happened before (time jumps either way, re-registrations), a lookup at ``now``
    answers exactly what a fresh computation for ``now`` answers."""
    resolver = Resolver(drift_ppm=0, track_drift=False)
    registered: dict[int, Beacon] = {}
    known: dict[int, Beacon] = {}
    for index, (ik, exponent, offset) in enumerate(initial):
        beacon = Beacon(f"b{index}", ik, exponent, offset)
        resolver.register(beacon.beacon_id, ik, exponent, offset)
        registered[index] = known[index] = beacon
    now = float(T0)
    for op in ops:
        if op[0] == "register":
            _, index, (ik, exponent, offset) = op
            beacon = Beacon(f"b{index}", ik, exponent, offset)
            resolver.register(beacon.beacon_id, ik, exponent, offset)
            registered[index] = known[index] = beacon
        elif op[0] == "unregister":
            _, index = op
            assert resolver.unregister(f"b{index}") == (index in registered)
            registered.pop(index, None)
        else:
            _, step, index, delta = op
            now += step
            beacon = known[index]
            period = period_of(now, beacon.exponent, beacon.clock_offset) + delta
            eid8 = eid_of_period(beacon.ik, beacon.exponent, period)
            owners = _owners(registered.values(), eid8, now)
            expected = next(iter(owners)) if len(owners) == 1 else None
            assert resolver.resolve(eid8, now) == expected
            if index in registered and registered[index] == beacon and abs(delta) <= 1:
                assert Match(beacon.beacon_id, period << beacon.exponent, delta) in owners


def _owners(beacons: Iterable[Beacon], eid8: bytes, now: float) -> set[Match]:
    """Stateless: every registered beacon that shows ``eid8`` in its window at ``now``."""
    owners = set()
    for b in beacons:
        current = period_of(now, b.exponent, b.clock_offset)
        for delta in (-1, 0, 1):
            if eid_of_period(b.ik, b.exponent, current + delta) == eid8:
                owners.add(Match(b.beacon_id, (current + delta) << b.exponent, delta))
    return owners


# ---------------------------------------------------------------------------- custom windows


@pytest.mark.parametrize(("before", "after"), [(0, 0), (0, 2), (3, 0), (2, 5), (4, 4)])
@pytest.mark.parametrize("exponent", [0, 5])
def test_custom_window_accepts_exactly_its_periods(before: int, after: int, exponent: int) -> None:
    clock_offset = 9_000_000 - T0
    resolver = Resolver(periods_before=before, periods_after=after, drift_ppm=0, track_drift=False)
    resolver.register("b", IK_B, exponent, clock_offset)
    for now in (T0, T0 + (1 << exponent), T0 + 0.5 * (1 << exponent), T0 - 1, T0 + 1000):
        assert_window(
            resolver, Beacon("b", IK_B, exponent, clock_offset), now, before=before, after=after
        )


@pytest.mark.parametrize("bad", [-1, 1.5, "1", None])
def test_resolver_rejects_bad_window_settings(bad: Any) -> None:
    with pytest.raises(eid.EidError):
        Resolver(periods_before=bad)
    with pytest.raises(eid.EidError):
        Resolver(periods_after=bad)


# ----------------------------------------------------------------- registration and identity


def test_reregistering_with_a_new_key_replaces_the_old_one() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 4, 0)
    old = eid_of_period(IK_A, 4, T0 >> 4)
    assert resolver.resolve(old, T0) == Match("b", (T0 >> 4) << 4, 0)
    resolver.register("b", IK_B, 4, 0)
    assert len(resolver) == 1
    for delta in (-1, 0, 1):
        assert resolver.resolve(eid_of_period(IK_A, 4, (T0 >> 4) + delta), T0) is None
    assert_window(resolver, Beacon("b", IK_B, 4, 0), T0)


def test_reregistering_with_a_new_exponent_and_offset_replaces_the_old_one() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 4, 0)
    assert_window(resolver, Beacon("b", IK_A, 4, 0), T0)
    resolver.register("b", IK_A, 10, 5000)
    assert resolver.resolve(eid_of_period(IK_A, 4, T0 >> 4), T0) is None
    assert_window(resolver, Beacon("b", IK_A, 10, 5000), T0)


def test_reregistering_the_same_beacon_unchanged_is_not_ambiguous() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 3, 11)
    assert_window(resolver, Beacon("b", IK_A, 3, 11), T0)
    resolver.register("b", IK_A, 3, 11)
    assert_window(resolver, Beacon("b", IK_A, 3, 11), T0)


def test_registering_after_the_table_was_built_resolves_at_once() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    assert_window(resolver, Beacon("a", IK_A, 0, 0), T0)
    resolver.register("b", IK_B, 5, 77)
    assert_window(resolver, Beacon("b", IK_B, 5, 77), T0 - 0.5)  # also a little back in time
    assert_window(resolver, Beacon("a", IK_A, 0, 0), T0 + 3)


def test_unregister_forgets_the_beacon() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 2, 0)
    resolver.register("b", IK_B, 2, 0)
    assert_window(resolver, Beacon("a", IK_A, 2, 0), T0)
    assert "a" in resolver
    assert resolver.unregister("a") is True
    assert "a" not in resolver
    assert len(resolver) == 1
    for delta in (-1, 0, 1):
        assert resolver.resolve(eid_of_period(IK_A, 2, (T0 >> 2) + delta), T0) is None
    assert resolver.unregister("a") is False
    assert resolver.unregister("never") is False
    assert_window(resolver, Beacon("b", IK_B, 2, 0), T0)


def test_unregister_before_any_lookup() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 2, 0)
    assert resolver.unregister("a") is True
    assert resolver.resolve(eid_of_period(IK_A, 2, T0 >> 2), T0) is None
    assert len(resolver) == 0


@pytest.mark.parametrize("exponent", [0, 7, 15])
def test_two_beacons_with_identical_eids_are_ambiguous(exponent: int) -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("twin-1", IK_C, exponent, 42)
    resolver.register("twin-2", IK_C, exponent, 42)
    current = period_of(T0, exponent, 42)
    for delta in (-1, 0, 1):
        assert resolver.resolve(eid_of_period(IK_C, exponent, current + delta), T0) is None
    resolver.unregister("twin-1")
    assert_window(resolver, Beacon("twin-2", IK_C, exponent, 42), T0)


def test_unknown_eid_is_none() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    unknown = eid_of_period(IK_B, 0, T0)
    assert resolver.resolve(unknown, T0) is None
    assert resolver.resolve(bytes(8), T0) is None
    assert Resolver(drift_ppm=0, track_drift=False).resolve(unknown, T0) is None


@pytest.mark.parametrize("size", [0, 1, 7, 9, 10, 16])
def test_wrong_length_eid_is_none(size: int) -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    real = eid_of_period(IK_A, 0, T0)
    assert resolver.resolve((real * 2)[:size], T0) is None


def test_eid_as_bytearray_or_memoryview_resolves() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    real = eid_of_period(IK_A, 0, T0)
    assert resolver.resolve(cast("bytes", bytearray(real)), T0) == Match("a", T0, 0)
    assert resolver.resolve(cast("bytes", memoryview(real)), T0) == Match("a", T0, 0)


@pytest.mark.parametrize("eid8", ["0011223344556677", None, 12345])
def test_eid_that_is_not_bytes_is_an_error(eid8: Any) -> None:
    with pytest.raises(eid.EidError):
        Resolver(drift_ppm=0, track_drift=False).resolve(eid8, T0)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, True, "1700000000", None])
def test_now_that_is_not_a_finite_number_is_an_error(now: Any) -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    with pytest.raises(eid.EidError):
        resolver.resolve(bytes(8), now)


BAD_REGISTRATIONS = {
    "exponent 16": ("b", IK_A, 16, 0),
    "exponent -1": ("b", IK_A, -1, 0),
    "exponent float": ("b", IK_A, 1.0, 0),
    "key 15 bytes": ("b", IK_A[:15], 0, 0),
    "key 17 bytes": ("b", IK_A + b"\x00", 0, 0),
    "key str": ("b", IK_A.hex(), 0, 0),
    "empty id": ("", IK_A, 0, 0),
    "id not str": (7, IK_A, 0, 0),
    "id None": (None, IK_A, 0, 0),
    "offset float": ("b", IK_A, 0, 1.5),
    "offset bool": ("b", IK_A, 0, True),
    "offset None": ("b", IK_A, 0, None),
}


@pytest.mark.parametrize("args", BAD_REGISTRATIONS.values(), ids=BAD_REGISTRATIONS.keys())
def test_bad_registrations_raise_and_keep_the_previous_registration(args: tuple[Any, ...]) -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("b", IK_B, 0, 0)
    with pytest.raises(eid.EidError) as info:
        resolver.register(*args)
    assert IK_A.hex() not in str(info.value).lower()
    assert len(resolver) == 1
    assert_window(resolver, Beacon("b", IK_B, 0, 0), T0)


def test_bad_key_sizes_raise_invalid_key_error() -> None:
    with pytest.raises(eid.InvalidKeyError):
        Resolver(drift_ppm=0, track_drift=False).register("b", bytes(15), 0, 0)


def test_repr_shows_no_key_and_no_eid() -> None:
    resolver = Resolver(drift_ppm=0, track_drift=False)
    resolver.register("a", IK_A, 0, 0)
    resolver.register("b", IK_B, 3, 0)
    resolver.resolve(bytes(8), T0)
    text = repr(resolver) + str(resolver)
    for secret in (IK_A, IK_B, eid_of_period(IK_A, 0, T0), eid_of_period(IK_B, 3, T0 >> 3)):
        assert secret.hex() not in text.lower()
        assert repr(secret) not in text


class _RepeatingGenerator(eid.EidGenerator):
    """A beacon whose EID never changes (as if AES collided): every period shows the same EID."""

    def eid_unchecked(self, exponent: int, counter: int) -> bytes:
        del exponent, counter
        return b"\x5a" * 8


@pytest.mark.parametrize(("before", "after"), [(1, 1), (3, 2), (0, 4)])
def test_an_eid_repeated_across_periods_matches_the_nearest_period(
    before: int, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolver_module, "EidGenerator", _RepeatingGenerator)
    resolver = Resolver(periods_before=before, periods_after=after, drift_ppm=0, track_drift=False)
    resolver.register("b", IK_A, 2, 0)
    assert resolver.resolve(b"\x5a" * 8, T0) == Match("b", (T0 >> 2) << 2, 0)
    assert resolver.resolve(b"\x5a" * 8, T0 + 4) == Match("b", ((T0 + 4) >> 2) << 2, 0)
    assert resolver.unregister("b") is True
    assert resolver.resolve(b"\x5a" * 8, T0 + 4) is None
    assert len(resolver._table) == 0


def test_match_is_a_value() -> None:
    assert Match("a", 16, -1) == Match(beacon_id="a", counter=16, period_offset=-1)
    assert Match("a", 16, -1) != Match("a", 16, 0)
    assert len({Match("a", 16, -1), Match("a", 16, -1)}) == 1
