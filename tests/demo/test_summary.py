"""The demo's summary: counting what arrived and scoring it honestly against the truth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.demo.gateway_child import Delivery, delivery_from_log
from gateway.demo.reference import Reference
from gateway.demo.summary import Tally, assess, render, window
from gateway.scoring import Change

START = 1_767_225_600.0


def iso(offset: float) -> str:
    return datetime.fromtimestamp(START + offset, tz=UTC).isoformat().replace("+00:00", "Z")


def presence(
    event_id: str,
    kind: str,
    beacon: str | None,
    zone: str,
    at: float,
    *,
    decided: float | None = None,
) -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": "customer"}
    if beacon is not None:
        subject |= {"id": f"cust-{beacon}", "beacon": beacon}
    return {
        "event_id": event_id,
        "type": kind,
        "zone": zone,
        "event_time": iso(at),
        "gateway_time": iso(at if decided is None else decided),
        "subject": subject,
    }


def truth(*subjects: dict[str, Any], end: float = 1000.0) -> dict[str, Any]:
    return {"scene": "t", "seed": 1, "start": START, "end": START + end, "subjects": list(subjects)}


def subject(
    sid: str, stays: list[tuple[str, float, float]], *, enrolled: bool = True
) -> dict[str, Any]:
    return {
        "id": sid,
        "flow": "f",
        "enrolled": enrolled,
        "arrive": START + stays[0][1],
        "leave": START + stays[-1][2],
        "stays": [{"zone": z, "enter": START + a, "exit": START + b} for z, a, b in stays],
    }


def reference(the_truth: dict[str, Any], named: set[str], settle_s: float = 100.0) -> Reference:
    enrolled = sum(1 for s in the_truth["subjects"] if s["enrolled"])
    return Reference(
        name="t",
        description="",
        seed=1,
        start=the_truth["start"],
        end=the_truth["end"],
        truth=the_truth,
        named=frozenset(named),
        enrolled=enrolled,
        settle_s=settle_s,
    )


def test_tally_counts_types_actions_subjects_and_drops_duplicates() -> None:
    tally = Tally()
    assert tally.add(presence("e1", "enter", "b1", "entrance", 10.0))
    assert not tally.add(presence("e1", "enter", "b1", "entrance", 10.0))
    tally.add({**presence("t1", "trigger", "b1", "entrance", 10.0), "action": "notify"})
    tally.add({**presence("t2", "trigger", "b1", "entrance", 20.0), "action": "\x1b[31moffer"})
    tally.add(presence("e2", "exit", "b1", "entrance", 50.0, decided=60.0))
    tally.add(presence("e3", "dwell", None, "aisle", 30.0))  # a customer without consent
    tally.add({"event_id": "x", "type": "telemetry", "subject": {"kind": "bag", "tag": "0125"}})
    tally.add({"type": "enter"})  # no event id: unreadable
    assert tally.events == 6
    assert tally.duplicates == 1
    assert tally.unreadable == 1
    assert dict(tally.by_type) == {"enter": 1, "trigger": 2, "exit": 1, "dwell": 1, "telemetry": 1}
    assert dict(tally.by_action) == {"notify": 1, "offer": 1}  # cleaned of escapes
    assert tally.subjects == {"customer": {"cust-b1"}, "bag": {"0125"}, "unknown": set()}
    assert dict(tally.anonymous) == {"customer": 1}
    assert tally.beacons == {"b1"}
    assert tally.changes == [
        Change("b1", "entrance", "enter", START + 10.0),
        Change("b1", "entrance", "exit", START + 50.0),
    ]
    assert tally.last_gateway_time == START + 60.0


def test_a_whole_run_that_got_everything_right_scores_one() -> None:
    the_truth = truth(subject("b1", [("entrance", 10.0, 50.0), ("aisle", 50.0, 900.0)]))
    tally = Tally()
    for n, (kind, zone, at) in enumerate(
        [("enter", "entrance", 11), ("exit", "entrance", 49), ("enter", "aisle", 52),
         ("exit", "aisle", 899)]
    ):  # fmt: skip
        tally.add(presence(f"e{n}", kind, "b1", zone, at))
    result = assess(reference(the_truth, {"b1"}), tally, whole=True)
    assert result.score is not None
    assert result.score.f1 == 1.0
    assert result.score.zone_iou > 0.99
    assert (result.subjects, result.seen, result.unnamed, result.truth_changes) == (1, 1, 0, 4)


def test_subjects_events_cannot_name_are_left_out_not_counted_as_misses() -> None:
    the_truth = truth(
        subject("b1", [("entrance", 10.0, 500.0)]),
        subject("b2", [("entrance", 20.0, 600.0)]),  # did not consent: events name nobody
        subject("b3", [("entrance", 30.0, 700.0)], enrolled=False),
    )
    tally = Tally()
    tally.add(presence("e1", "enter", "b1", "entrance", 10.0))
    tally.add(presence("e2", "exit", "b1", "entrance", 500.0))
    tally.add(presence("e3", "enter", None, "entrance", 20.0))
    result = assess(reference(the_truth, {"b1"}), tally, whole=True)
    assert result.score is not None
    assert result.score.f1 == 1.0
    assert (result.subjects, result.seen, result.unnamed) == (1, 1, 1)


def test_a_stopped_run_is_scored_only_up_to_what_the_gateway_had_settled() -> None:
    # b1 entered at 10 and left at 500; the run was stopped when the gateway's clock said 300.
    # Scored up to 300 - settle (100) = 200: the enter counts, the exit (not yet due) does not.
    the_truth = truth(
        subject("b1", [("entrance", 10.0, 500.0)]), subject("b2", [("entrance", 250.0, 900.0)])
    )
    tally = Tally()
    tally.add(presence("e1", "enter", "b1", "entrance", 10.0, decided=12.0))
    tally.add(presence("e2", "enter", "b2", "entrance", 251.0, decided=300.0))
    result = assess(reference(the_truth, {"b1", "b2"}), tally, whole=False)
    assert result.scored_to == START + 200.0
    assert result.subjects == 1  # b2 arrived after the cut
    assert result.truth_changes == 1
    assert result.score is not None
    assert result.score.f1 == 1.0


def test_a_run_stopped_before_anything_settled_is_not_scored() -> None:
    the_truth = truth(subject("b1", [("entrance", 10.0, 500.0)]))
    nothing = assess(reference(the_truth, {"b1"}), Tally(), whole=False)
    assert nothing.score is None
    early = Tally()
    early.add(presence("e1", "enter", "b1", "entrance", 10.0, decided=30.0))
    result = assess(reference(the_truth, {"b1"}), early, whole=False)
    assert result.score is None
    lines = "\n".join(render(reference(the_truth, {"b1"}), early, result, None))
    assert "stopped early, before the gateway had settled anything" in lines
    assert "not scored: the run stopped before the gateway had settled any presence" in lines
    assert "truth " not in lines  # no "0 of the 0": nothing was compared


def test_nobody_named_and_no_truth_never_divide_by_zero() -> None:
    empty = reference(truth(), set())
    result = assess(empty, Tally(), whole=True)
    assert result.score is None
    text = "\n".join(render(empty, Tally(), result, Delivery(delivered_all=True, outbox_depth=0)))
    assert "0 received" in text
    assert "not scored: no enrolled subject that events name was in the scene" in text


def test_window_cuts_stays_and_drops_later_arrivals() -> None:
    the_truth = truth(
        subject("b1", [("a", 10.0, 100.0), ("b", 100.0, 400.0)]),
        subject("b2", [("a", 300.0, 400.0)]),
        subject("b3", [("a", 10.0, 400.0)]),
    )
    cut = window(the_truth, START + 200.0, frozenset({"b1", "b2"}))
    assert cut["end"] == START + 200.0
    assert [s["id"] for s in cut["subjects"]] == ["b1"]
    assert cut["subjects"][0]["stays"][-1]["exit"] == START + 200.0
    assert cut["subjects"][0]["leave"] == START + 200.0


def test_render_has_every_section() -> None:
    the_truth = truth(subject("b1", [("entrance", 10.0, 500.0)]))
    tally = Tally()
    tally.add(presence("e1", "enter", "b1", "entrance", 10.0))
    tally.add({**presence("t1", "trigger", "b1", "entrance", 10.0), "action": "notify"})
    ref = reference(the_truth, {"b1"})
    text = "\n".join(
        render(
            ref,
            tally,
            assess(ref, tally, whole=True),
            Delivery(delivered_all=False, outbox_depth=3),
        )
    )
    for expected in (
        "Summary: the t scene (seed 1), all 16 min 40 s of scene time",
        "events     2 received: 1 enter, 1 trigger",
        "triggers   1 notify",
        "subjects   1 seen: 1 customers, 0 bags, 0 unknown beacons",
        "truth      1 of the 1 enrolled subjects that events name were seen",
        "accuracy   F1 ",
        "zone IoU",
        "3 events stayed in the gateway's outbox",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"event": "gateway_stopping", "delivered_all": true, "outbox_depth": 0}'],
         Delivery(delivered_all=True, outbox_depth=0)),
        (['{"event": "gateway_stopping", "delivered_all": false, "outbox_depth": 7}', "junk"],
         Delivery(delivered_all=False, outbox_depth=7)),
        (['not json "gateway_stopping"', '{"event": "other"}'], None),
        ([], None),
    ],
)  # fmt: skip
def test_delivery_from_the_gateway_log(lines: list[str], expected: Delivery | None) -> None:
    assert delivery_from_log(lines) == expected
