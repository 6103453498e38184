"""The luggage tracker's logic (examples/luggage_tracker.py), without a broker.

Time is the events' own: every test feeds events at once, the clock moves only with their
``event_time``s. ``sweep_every_s=0`` checks every bag on every event.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from luggage_tracker import Alert, LuggageTracker, zone_minutes

from tests.examples.events import customer, new_id, presence, trigger

MINUTE = 60.0
BAG, OTHER = "0125000003", "0125000099"


def tracker(**settings: Any) -> LuggageTracker:
    defaults: dict[str, Any] = {
        "still_after_s": 10 * MINUTE,
        "lost_after_s": 5 * MINUTE,
        "sweep_every_s": 0.0,
    }
    return LuggageTracker(**{**defaults, **settings})


def feed(tracker: LuggageTracker, *events: dict[str, Any]) -> list[Alert]:
    alerts: list[Alert] = []
    for event in events:
        alerts += tracker.handle(event)
    return alerts


def conditions(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(alert.condition, alert.bag_id) for alert in alerts]


def dwells(tag: str, zone: str, entered: float, until: float) -> list[dict[str, Any]]:
    """An enter, then a dwell event every minute until ``until`` (as the gateway sends)."""
    events = [presence("enter", tag, zone, entered)]
    at = entered + MINUTE
    while at <= until:
        events.append(presence("dwell", tag, zone, at, dwell_s=at - entered))
        at += MINUTE
    return events


def test_last_seen_zone_time_and_gateway() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "checkin", 0), presence("exit", BAG, "checkin", 50))
    feed(t, presence("enter", BAG, "sorting", 70, gateway="gw-sorting-east"))
    bag = t.bag(BAG)
    assert bag is not None
    assert (bag.zone, bag.present, bag.nearest_gateway) == ("sorting", True, "gw-sorting-east")
    assert bag.since == bag.last_heard == t.clock
    assert (bag.flight, bag.destination, bag.owner) == ("KL1002", "AMS", "W. Weber")
    feed(t, presence("exit", BAG, "sorting", 100))
    assert bag.zone == "sorting"
    assert not bag.present


def test_a_bag_heard_in_one_zone_too_long_is_still_once_until_it_moves() -> None:
    t = tracker()
    alerts = feed(t, *dwells(BAG, "sorting", 0, 9 * MINUTE))
    assert alerts == []
    alerts = feed(t, *dwells(BAG, "sorting", 0, 20 * MINUTE)[10:])
    assert conditions(alerts) == [("still", BAG)]
    assert alerts[0].zone == "sorting"
    assert alerts[0].minutes == pytest.approx(10)
    assert "bag 0125000003 (KL1002 to AMS, owner W. Weber) in sorting for 10 min" in alerts[0].text
    assert alerts[0].line().startswith("ALERT still ")
    moved = feed(t, presence("enter", BAG, "claim-2", 21 * MINUTE))
    assert conditions(moved) == [("moving", BAG)]
    assert "moved sorting -> claim-2 after 21 min" in moved[0].text
    assert moved[0].line().startswith("clear moving")
    # A new zone, a new stay: still again after another ten minutes there.
    again = feed(t, *dwells(BAG, "claim-2", 21 * MINUTE, 31 * MINUTE)[1:])
    assert conditions(again) == [("still", BAG)]


def test_the_clock_is_the_newest_event_time_of_any_bag() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "sorting", 0), presence("dwell", BAG, "sorting", 9 * MINUTE))
    # No more events of this bag: other bags' events move the clock, and this one becomes
    # still when the clock passes ten minutes.
    assert feed(t, presence("enter", OTHER, "checkin", 9.9 * MINUTE)) == []
    late = presence("dwell", OTHER, "checkin", 5 * MINUTE, dwell_s=60)  # older: no going back
    assert feed(t, late) == []
    assert t.clock == pytest.approx(9.9 * MINUTE + 1_767_225_600)
    assert conditions(feed(t, presence("dwell", OTHER, "checkin", 10 * MINUTE))) == [("still", BAG)]


def test_only_a_bag_still_being_heard_is_still() -> None:
    t = tracker()
    feed(t, presence("enter", OTHER, "checkin", 30 * MINUTE))
    # A gateway's backlog arrives late: a bag that was in sorting half an hour ago is not
    # still now, and a bag present but unheard for long (its gateway gone) is not either.
    assert feed(t, *dwells(BAG, "sorting", 0, 24 * MINUTE)) == []
    assert conditions(feed(t, presence("dwell", BAG, "sorting", 25 * MINUTE))) == [("still", BAG)]
    t = tracker()
    feed(t, presence("enter", BAG, "sorting", 0), presence("dwell", BAG, "sorting", 4 * MINUTE))
    assert feed(t, presence("enter", OTHER, "checkin", 10 * MINUTE)) == []
    assert tracker(heard_within_s=10 * MINUTE).heard_within_s == 10 * MINUTE


def test_per_zone_limits_and_patterns() -> None:
    t = tracker(still_after_zone=[("claim-*", 0.0), ("sorting", 30 * MINUTE)])
    assert t.still_limit("claim-3") is None
    assert t.still_limit("sorting") == 30 * MINUTE
    assert t.still_limit("checkin") == 10 * MINUTE
    assert feed(t, *dwells(BAG, "claim-3", 0, 60 * MINUTE)) == []
    assert feed(t, *dwells(OTHER, "sorting", 60 * MINUTE, 89 * MINUTE)) == []
    assert conditions(feed(t, presence("dwell", OTHER, "sorting", 90 * MINUTE))) == [
        ("still", OTHER)
    ]
    assert tracker(still_after_s=0).still_limit("sorting") is None


def test_a_bag_that_left_a_zone_and_is_not_heard_again_is_lost_once() -> None:
    t = tracker(still_after_s=0)
    feed(t, presence("enter", BAG, "sorting", 0), presence("exit", BAG, "sorting", MINUTE))
    assert feed(t, presence("enter", OTHER, "checkin", 5 * MINUTE + 59)) == []
    lost = feed(t, presence("dwell", OTHER, "checkin", 6 * MINUTE, dwell_s=61))
    assert conditions(lost) == [("lost", BAG)]
    assert "unheard for 5 min since it left sorting at 2026-01-01 00:01:00" in lost[0].text
    assert "last near gw-sorting" in lost[0].text
    assert feed(t, presence("dwell", OTHER, "checkin", 20 * MINUTE, dwell_s=900)) == []
    found = feed(t, presence("enter", BAG, "claim-1", 21 * MINUTE))
    assert conditions(found) == [("found", BAG)]
    assert "heard again in claim-1 after 20 min" in found[0].text


def test_leaving_an_end_zone_is_the_end_of_the_journey_not_a_loss() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "claim-1", 0), presence("exit", BAG, "claim-1", MINUTE))
    assert feed(t, presence("enter", OTHER, "checkin", 60 * MINUTE)) == []
    assert t.is_end_zone("claim-1")
    assert not tracker(end_zones=["exit-*"]).is_end_zone("claim-1")
    assert "collected 1 (left claim-*), in transit 0, lost 0" in t.table()


def test_an_exit_of_a_zone_already_left_changes_nothing() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "checkin", 0), presence("enter", BAG, "sorting", 30))
    feed(t, presence("exit", BAG, "checkin", 25))  # the gateway's exit came after the enter
    bag = t.bag(BAG)
    assert bag is not None
    assert (bag.zone, bag.present, bag.last_heard) == ("sorting", True, t.clock)


def test_a_first_dwell_dates_the_stay_back() -> None:
    t = tracker()
    feed(t, presence("dwell", BAG, "sorting", 9 * MINUTE, dwell_s=9 * MINUTE))
    bag = t.bag(BAG)
    assert bag is not None
    assert t.clock is not None
    assert bag.since == t.clock - 9 * MINUTE
    assert conditions(feed(t, presence("dwell", BAG, "sorting", 10 * MINUTE))) == [("still", BAG)]


def test_a_short_silence_in_the_same_zone_does_not_restart_the_stay() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "claim-2", 0), presence("exit", BAG, "claim-2", 4 * MINUTE))
    feed(t, presence("enter", BAG, "claim-2", 6 * MINUTE))
    assert conditions(feed(t, presence("dwell", BAG, "claim-2", 10 * MINUTE))) == [("still", BAG)]


def test_a_long_silence_in_the_same_zone_starts_a_new_stay() -> None:
    t = tracker()
    feed(t, presence("enter", BAG, "claim-2", 0), presence("exit", BAG, "claim-2", MINUTE))
    feed(t, presence("enter", BAG, "claim-2", 7 * MINUTE))
    assert feed(t, presence("dwell", BAG, "claim-2", 16 * MINUTE)) == []
    assert conditions(feed(t, presence("dwell", BAG, "claim-2", 17 * MINUTE))) == [("still", BAG)]


def test_duplicates_are_dropped() -> None:
    t = tracker()
    enter = presence("enter", BAG, "sorting", 0)
    feed(t, enter, presence("enter", BAG, "claim-1", MINUTE))
    feed(t, dict(enter))  # the re-sent enter must not take the bag back to sorting
    bag = t.bag(BAG)
    assert bag is not None
    assert bag.zone == "claim-1"
    assert t.skipped["duplicate"] == 1
    assert t.last_skipped == "duplicate"


def test_other_events_and_malformed_payloads_are_skipped() -> None:
    t = tracker()
    good = presence("enter", BAG, "sorting", 0)
    skipped: list[dict[str, Any]] = [
        {},
        {"event_id": None},
        trigger(customer()),
        {**presence("enter", BAG, "sorting", 0), "subject": customer()},
        {**presence("enter", BAG, "sorting", 0), "type": "telemetry"},
        {**good, "event_id": new_id(), "zone": 3},
        {**good, "event_id": new_id(), "event_time": "soon"},
        {**good, "event_id": new_id(), "subject": {"kind": "bag"}},
        {**good, "event_id": new_id(), "subject": None},
    ]
    assert feed(t, *skipped) == []
    assert len(t) == 0
    assert t.clock is None
    assert sum(t.skipped.values()) == len(skipped)
    assert t.skipped["malformed"] == 5
    unknown = {**good, "flight_plan": {"legs": 2}, "dwell_s": "long"}
    feed(t, unknown)
    assert len(t) == 1


def test_memory_is_bounded_by_count_and_by_age() -> None:
    t = tracker(max_bags=5, forget_after_s=60 * MINUTE)
    for number in range(20):
        feed(t, presence("enter", f"01250{number:05d}", "checkin", number))
    assert len(t) == 5
    assert t.bag("0125000000") is None
    assert t.bag("0125000019") is not None
    assert t.skipped["evicted"] == 15
    feed(t, presence("enter", OTHER, "checkin", 61 * MINUTE))
    assert len(t) == 1
    assert t.bag(OTHER) is not None
    assert len(tracker(seen_max=3)._dedup) == 0


def test_sweeps_run_at_most_every_sweep_interval_of_event_time() -> None:
    t = tracker(sweep_every_s=MINUTE)
    feed(t, presence("enter", BAG, "sorting", 0))  # swept at 0
    feed(t, presence("dwell", BAG, "sorting", 9.5 * MINUTE))  # swept
    assert feed(t, presence("dwell", OTHER, "checkin", 10 * MINUTE)) == []  # 30 s: not swept
    assert conditions(feed(t, presence("dwell", OTHER, "checkin", 10.5 * MINUTE))) == [
        ("still", BAG)
    ]


def test_the_table_of_bags_per_last_seen_zone() -> None:
    t = tracker()
    assert t.table() == "no bags seen yet"
    feed(t, *dwells(BAG, "claim-2", 0, 12 * MINUTE))
    feed(t, presence("enter", OTHER, "claim-2", 11 * MINUTE, gateway="gw-claim-2"))
    feed(t, presence("enter", "0125000077", "sorting", 11 * MINUTE))
    feed(t, presence("exit", "0125000077", "sorting", 11.5 * MINUTE))
    feed(
        t,
        presence("enter", "0125000078", "claim-1", 0),
        presence("exit", "0125000078", "claim-1", 60),
    )
    table = t.table().splitlines()
    assert table[0] == "bags at 2026-01-01 00:12:00 (newest event time): 4 known"
    assert table[1].split()[:4] == ["zone", "here", "still", "left"]
    assert table[2].split() == ["claim-1", "0", "0", "1", "-"]
    assert table[3].split()[:6] == ["claim-2", "2", "1", "0", "12", "min"]
    assert table[3].endswith("gw-claim-2 2")
    assert table[4].split() == ["sorting", "0", "0", "1", "-"]
    assert table[5] == "collected 1 (left claim-*), in transit 1, lost 0"
    assert table[6] == (
        "  still  bag 0125000003 (KL1002 to AMS, owner W. Weber) in claim-2 "
        "since 2026-01-01 00:00:00"
    )
    assert len(table) == 7


def test_zone_minutes_option() -> None:
    assert zone_minutes("sorting=30") == ("sorting", 30.0)
    assert zone_minutes("claim-*=0") == ("claim-*", 0.0)
    for bad in ("sorting", "=3", "sorting=-1", "sorting=soon"):
        with pytest.raises(argparse.ArgumentTypeError):
            zone_minutes(bad)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(["event_id", "type", "subject", "zone", "event_time", "dwell_s", "x"])
TIMES = st.datetimes(timezones=st.timezones() | st.none()).map(lambda moment: moment.isoformat())


@given(st.lists(st.dictionaries(KEYS, JSON | TIMES, max_size=7), max_size=10))
def test_no_payload_makes_it_raise(events: list[dict[str, Any]]) -> None:
    t = tracker()
    for event in events:
        t.handle(event)
        t.handle({**presence("dwell", BAG, "sorting", 0, event_id=new_id()), **event})
    t.table()
    t.summary()
