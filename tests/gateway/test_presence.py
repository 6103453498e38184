"""The presence engine on hand-made sighting streams (virtual time, no clock)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.floorplan import (
    CELL_BUDGET,
    FIT_GATEWAYS,
    MAX_CELL_M,
    ZONE_CELLS,
    FloorPlan,
    ZoneFitter,
)
from gateway.core.presence import (
    ChangeKind,
    ExitReason,
    PresenceChange,
    PresenceEngine,
    PresenceSettings,
    ZoneSpec,
)

ZONES = [ZoneSpec("a", frozenset({"gw-a"})), ZoneSpec("b", frozenset({"gw-b"}))]


def feed(engine: PresenceEngine, samples: list[tuple[float, str, float]]) -> list[PresenceChange]:
    changes: list[PresenceChange] = []
    for at, gateway, rssi in samples:
        changes += engine.tick(at)
        changes += engine.observe("bag-1", -12, gateway, rssi, at)
    return changes


def stay(
    gateway: str, start: float, end: float, rssi: float, interval: float = 1.0
) -> list[tuple[float, str, float]]:
    at = start
    out = []
    while at < end:
        out.append((at, gateway, rssi))
        at += interval
    return out


def kinds(changes: list[PresenceChange]) -> list[tuple[str, str]]:
    return [(c.kind.value, c.zone) for c in changes if c.kind != ChangeKind.DWELL]


def test_enter_is_debounced_and_dated_from_the_first_sighting() -> None:
    engine = PresenceEngine(ZONES)
    assert engine.observe("bag-1", -12, "gw-a", -60, 100.0) == []  # one packet is no visit
    changes = feed(engine, stay("gw-a", 101.0, 104.0, -60))
    assert kinds(changes) == [("enter", "a")]
    assert changes[0].at == 100.0
    assert changes[0].decided_at >= 102.0


def test_exit_timeout_follows_the_beacons_own_interval() -> None:
    fast, slow = PresenceEngine(ZONES), PresenceEngine(ZONES)
    feed(fast, stay("gw-a", 0.0, 20.0, -60, interval=1.0))
    feed(slow, stay("gw-a", 0.0, 60.0, -60, interval=5.0))
    assert fast.timeout_s("bag-1") == pytest.approx(10.0, abs=0.5)
    assert slow.timeout_s("bag-1") == pytest.approx(50.0, abs=2.5)
    # Silence: the 1 s beacon is gone after ~10 s, dated at its last sighting.
    exits = fast.tick(19.0 + 11.0)
    assert [(c.kind, c.exit_reason, c.at) for c in exits] == [
        (ChangeKind.EXIT, ExitReason.TIMEOUT, 19.0)
    ]
    assert slow.tick(55.0 + 20.0) == []  # 20 s is four intervals: not yet
    assert slow.zone_of("bag-1") == "a"


def test_lost_packets_do_not_stretch_the_learned_interval() -> None:
    engine = PresenceEngine(ZONES)
    samples = [(float(t), "gw-a", -60.0) for t in range(60) if t % 3 != 2]  # a third lost
    feed(engine, samples)
    assert engine.timeout_s("bag-1") == pytest.approx(10.0, abs=1.5)


def test_zone_change_needs_a_margin_held_over_time() -> None:
    engine = PresenceEngine(ZONES)
    samples = [(float(t), "gw-a", -55.0) for t in range(30)]
    # gw-b a little stronger than gw-a (less than the margin): no change.
    for t in range(30, 60):
        samples += [(float(t), "gw-a", -60.0), (t + 0.01, "gw-b", -58.0)]
    changes = feed(engine, samples)
    assert kinds(changes) == [("enter", "a")]
    # Now clearly stronger for long: a move, dated when the lead began.
    more = feed(engine, [(t + 0.5, g, r) for t in range(60, 90)
                         for g, r in (("gw-a", -75.0), ("gw-b", -50.0))])  # fmt: skip
    more = [c for c in more if c.kind != ChangeKind.DWELL]
    assert kinds(more) == [("exit", "a"), ("enter", "b")]
    assert more[0].exit_reason == ExitReason.MOVED
    assert more[0].at == more[1].at
    assert 55.0 <= more[0].at <= 65.0


def test_one_wild_sample_does_not_move_the_beacon() -> None:
    engine = PresenceEngine(ZONES)
    samples = []
    for t in range(60):
        samples += [(float(t), "gw-a", -55.0), (t + 0.01, "gw-b", -75.0)]
    samples[80] = (40.01, "gw-b", -20.0)  # a freak reading
    changes = feed(engine, samples)
    assert kinds(changes) == [("enter", "a")]


def test_dwell_thresholds_and_periodic_dwells_once_each() -> None:
    settings = PresenceSettings(dwell_thresholds_s=(30.0, 60.0), dwell_interval_s=60.0)
    engine = PresenceEngine(ZONES, settings)
    changes = feed(engine, stay("gw-a", 0.0, 130.0, -60))
    dwells = [(c.at, c.threshold_s) for c in changes if c.kind == ChangeKind.DWELL]
    assert dwells == [(30.0, 30.0), (60.0, 60.0), (120.0, None)]


def test_dwell_is_only_reported_once_a_later_sighting_confirms_it() -> None:
    engine = PresenceEngine(ZONES, PresenceSettings(dwell_thresholds_s=(30.0,)))
    changes = feed(engine, stay("gw-a", 0.0, 28.0, -60))
    changes += engine.tick(60.0)  # it left at 27 s: the 30 s dwell never happened
    assert [c.kind for c in changes] == [ChangeKind.ENTER, ChangeKind.EXIT]


def test_radius_zone_exits_when_the_beacon_walks_away() -> None:
    zones = [ZoneSpec("desk", frozenset({"gw-a"}), radius_m=3.0)]
    engine = PresenceEngine(zones)
    # Tx -12 dBm at 0 m: -53 dBm at 1 m; at n=2, -73 dBm is 10 m.
    changes = feed(engine, stay("gw-a", 0.0, 20.0, -55))
    changes += feed(engine, stay("gw-a", 20.0, 40.0, -73))
    assert kinds(changes) == [("enter", "desk"), ("exit", "desk")]
    assert changes[-1].exit_reason == ExitReason.OUT_OF_RANGE


def test_a_gateway_in_two_zones_is_refused() -> None:
    with pytest.raises(ValueError, match="gw-a"):
        PresenceEngine([ZoneSpec("a", frozenset({"gw-a"})), ZoneSpec("b", frozenset({"gw-a"}))])


def test_floor_plan_prefers_the_zone_that_contains_the_best_fit() -> None:
    # A long zone whose gateway sits in its middle, next to a small zone: at the long zone's
    # far end the small zone's gateway is nearer, yet the floor plan says "long".
    plan = FloorPlan(
        gateways={"g-long": (10.0, 2.0), "g-small": (2.0, 8.0), "g-far": (18.0, 8.0)},
        zones={"long": (0.0, 0.0, 20.0, 4.0), "small": (0.0, 4.0, 20.0, 12.0)},
        path_loss_exponent=2.0,
    )
    fitter = ZoneFitter(plan)
    at = (1.0, 3.5)  # in "long", 9.1 m from g-long, 4.6 m from g-small

    rssi = {
        name: -50 - 20 * math.log10(math.hypot(x - at[0], y - at[1]))
        for name, (x, y) in plan.gateways.items()
    }
    scores = fitter.scores(rssi)
    assert max(scores, key=scores.__getitem__) == "long"
    assert fitter.scores({"g-long": -60.0}) == {}  # one RSSI fits every cell


def _misfit_by_hand(plan: FloorPlan, rssi: dict[str, float], step: float = 1.0) -> dict[str, float]:
    """Per zone, minus the smallest RMS residual over its cells, the mean removed: cell by cell."""
    xs = [x for x, _ in plan.gateways.values()] + [
        r[i] for r in plan.zones.values() for i in (0, 2)
    ]
    ys = [y for _, y in plan.gateways.values()] + [
        r[i] for r in plan.zones.values() for i in (1, 3)
    ]
    best: dict[str, float] = {}
    x = min(xs) - 2.0 + step / 2
    while x < max(xs) + 2.0:
        y = min(ys) - 2.0 + step / 2
        while y < max(ys) + 2.0:
            zone = next(
                (
                    z
                    for z, (x0, y0, x1, y1) in plan.zones.items()
                    if x0 <= x <= x1 and y0 <= y <= y1
                ),
                "",
            )
            residuals = [
                value
                + 10
                * plan.path_loss_exponent
                * math.log10(max(math.hypot(x - plan.gateways[g][0], y - plan.gateways[g][1]), 0.5))
                for g, value in rssi.items()
            ]
            mean = sum(residuals) / len(residuals)
            rms = math.sqrt(sum((r - mean) ** 2 for r in residuals) / len(residuals))
            best[zone] = min(best.get(zone, math.inf), rms)
            y += step
        x += step
    return {zone: -value for zone, value in best.items()}


@settings(max_examples=60, deadline=None)
@given(
    heard=st.lists(
        st.tuples(st.sampled_from(["g1", "g2", "g3", "g4"]), st.floats(-100.0, -40.0)),
        min_size=2,
        max_size=4,
        unique_by=lambda item: item[0],
    ),
    budget=st.sampled_from([0, 10_000, 16 * 1024 * 1024]),
)
def test_floor_plan_scores_match_the_cell_by_cell_fit(
    heard: list[tuple[str, float]], budget: int
) -> None:
    # The fitter caches centred models per gateway set; whatever the cache holds (nothing, a
    # few sets, all), its scores are the plain per-cell fit.
    plan = FloorPlan(
        gateways={"g1": (2.0, 2.0), "g2": (12.0, 3.0), "g3": (7.0, 9.0), "g4": (15.0, 9.5)},
        zones={"a": (0.0, 0.0, 8.0, 10.0), "b": (8.0, 0.0, 16.0, 6.0)},
        path_loss_exponent=2.3,
    )
    fitter = ZoneFitter(plan, cache_bytes=budget)
    rssi = dict(heard)
    for _ in range(2):  # the second time from the cache, if it kept the entry
        scores = fitter.scores(rssi)
        expected = _misfit_by_hand(plan, rssi)
        assert scores.keys() == expected.keys()
        for zone, value in expected.items():
            assert scores[zone] == pytest.approx(value, abs=1e-6)


def test_a_large_floor_is_cut_into_larger_cells_and_fitted_on_them() -> None:
    # 200 m x 100 m of zones: 1 m cells would be 20,000; the fit runs on ~2 m cells instead,
    # and is still the plain per-cell fit on those cells.
    plan = FloorPlan(
        gateways={"g1": (20.0, 20.0), "g2": (100.0, 30.0), "g3": (60.0, 80.0), "g4": (170.0, 70.0)},
        zones={"west": (0.0, 0.0, 100.0, 100.0), "east": (100.0, 0.0, 200.0, 100.0)},
        path_loss_exponent=2.5,
    )
    step = plan.cell_size()
    assert step == pytest.approx(math.sqrt(204 * 104 / CELL_BUDGET))
    assert plan.cells() == pytest.approx(CELL_BUDGET)
    rssi = {"g1": -80.0, "g2": -71.0, "g3": -77.5, "g4": -90.0}
    scores = ZoneFitter(plan).scores(rssi)
    expected = _misfit_by_hand(plan, rssi, step)
    assert scores.keys() == expected.keys()
    for zone, value in expected.items():
        assert scores[zone] == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize(
    ("width", "height", "narrowest", "expected"),
    [
        (40.0, 30.0, 10.0, 1.0),  # a shop: 1 m cells
        (300.0, 200.0, 20.0, math.sqrt(304 * 204 / CELL_BUDGET)),  # a hall: grown to the budget
        (300.0, 200.0, 4.0, 4.0 / ZONE_CELLS),  # a narrow zone keeps cells finer
        (2000.0, 2000.0, 500.0, MAX_CELL_M),  # no coarser than MAX_CELL_M
    ],
)
def test_cell_size_grows_with_the_floor_within_its_zones(
    width: float, height: float, narrowest: float, expected: float
) -> None:
    plan = FloorPlan(
        gateways={"g1": (0.0, 0.0), "g2": (width, height)},
        zones={"big": (0.0, 0.0, width, height), "thin": (0.0, 0.0, narrowest, height)},
    )
    assert plan.cell_size() == pytest.approx(expected)


def test_only_the_strongest_gateways_are_fitted() -> None:
    # Twelve gateways hear the beacon; the four weakest change nothing: the fit is that of the
    # FIT_GATEWAYS strongest, done by hand.
    names = [f"g{i:02d}" for i in range(12)]
    plan = FloorPlan(
        gateways={name: (5.0 * i, 3.0 + 4.0 * (i % 3)) for i, name in enumerate(names)},
        zones={"a": (0.0, 0.0, 30.0, 12.0), "b": (30.0, 0.0, 60.0, 12.0)},
        path_loss_exponent=2.2,
    )
    rssi = {name: -55.0 - 2.5 * i for i, name in enumerate(names)}
    strongest = dict(sorted(rssi.items(), key=lambda item: -item[1])[:FIT_GATEWAYS])
    scores = ZoneFitter(plan).scores(rssi)
    expected = _misfit_by_hand(plan, strongest)
    assert scores.keys() == expected.keys()
    for zone, value in expected.items():
        assert scores[zone] == pytest.approx(value, abs=1e-6)
    weaker = {**rssi, "g11": -99.0, "g10": -98.0}
    assert ZoneFitter(plan).scores(weaker) == pytest.approx(scores, abs=1e-9)


def test_the_fitter_caches_a_gateway_set_once_however_it_was_heard() -> None:
    # Five gateways heard in every order are 120 orderings of one set: one entry, one answer.
    names = ["g1", "g2", "g3", "g4", "g5"]
    plan = FloorPlan(
        gateways={name: (3.0 * i, 2.0 + i % 2) for i, name in enumerate(names)},
        zones={"a": (0.0, 0.0, 6.0, 4.0), "b": (6.0, 0.0, 12.0, 4.0)},
        path_loss_exponent=2.0,
    )
    fitter = ZoneFitter(plan)
    rssi = {name: -60.0 - 3.0 * i for i, name in enumerate(names)}
    first = fitter.scores(rssi)
    for order in itertools.permutations(names):
        scores = fitter.scores({name: rssi[name] for name in order})
        assert scores == pytest.approx(first, abs=1e-9)
    assert len(fitter._cache) == 1  # the cache is what this test is about
