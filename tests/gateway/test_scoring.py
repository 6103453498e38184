"""The scoring rules, on hand-made truth (an independent check of the arithmetic)."""

from __future__ import annotations

import pytest

from gateway.scoring import Change, score

TRUTH = {
    "end": 1000.0,
    "subjects": [
        {"id": "s1", "enrolled": True, "arrive": 0.0, "leave": 400.0,
         "stays": [{"zone": "a", "enter": 0.0, "exit": 100.0},
                   {"zone": "b", "enter": 100.0, "exit": 105.0},   # a 5 s walk-through
                   {"zone": "c", "enter": 105.0, "exit": 400.0}]},
        {"id": "s2", "enrolled": False, "arrive": 0.0, "leave": 1000.0,
         "stays": [{"zone": "a", "enter": 0.0, "exit": 1000.0}]},
    ],
}  # fmt: skip


def test_perfect_events_score_one() -> None:
    events = [Change("s1", "a", "enter", 0.0), Change("s1", "a", "exit", 100.0),
              Change("s1", "c", "enter", 105.0), Change("s1", "c", "exit", 400.0)]  # fmt: skip
    result = score(TRUTH, events)
    assert (result.f1, result.spurious_exits, result.misses) == (1.0, 0, 0)
    assert result.zone_iou == pytest.approx(395 / 400)  # the walk-through is truth time too


def test_tolerance_short_stays_and_spurious_exits() -> None:
    events = [
        Change("s1", "a", "enter", 15.0),  # within 20 s: a hit
        Change("s1", "a", "exit", 50.0),  # phantom exit (and re-enter)
        Change("s1", "a", "enter", 52.0),
        Change("s1", "a", "exit", 101.0),
        Change("s1", "b", "enter", 101.0),  # the walk-through: neither for nor against
        Change("s1", "b", "exit", 104.0),
        Change("s1", "c", "enter", 140.0),  # 35 s late: a false event and a miss
    ]
    result = score(TRUTH, events)
    # Hits: enter a, exit a(101). False: exit a(50), enter a(52), enter c(140).
    # Misses: enter c, exit c.
    assert (result.hits, result.false_events, result.misses) == (2, 3, 2)
    assert result.spurious_exits == 1
    assert result.spurious_exits_per_subject_hour == pytest.approx(1 / (400 / 3600))
