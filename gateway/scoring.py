"""Scoring presence against ground truth: enter/exit F1, zone-time agreement, spurious exits.

The truth is the simulator's (``beacon-sim run --truth``): per subject, the zones it was in and
when. The rules:

- an enter or exit is a **hit** when the same subject's same kind of change in the same zone
  happened within :data:`MATCH_TOLERANCE_S` of it (each truth change matches one event at most,
  closest first);
- truth stays shorter than :data:`SHORT_STAY_S` (walking through a corner of a zone) count
  neither for nor against: an event that matches one of their changes is ignored, and missing
  it is no miss;
- a stay still open when the scene ends has no exit to find;
- **zone-time agreement** is the intersection over union of the time each subject was in each
  zone, by the events and by the truth (an event stay still open at the end closes there);
- a **spurious exit** is an exit that matches no truth exit: the subject was still there (or
  left elsewhere), counted per subject-hour of truth presence.

Only enrolled subjects count: the gateway cannot know the others (and must not report them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MATCH_TOLERANCE_S: Final = 20.0
SHORT_STAY_S: Final = 10.0
_END_SLACK_S: Final = 1.0
"""A truth stay ending this close to the scene's end is still open."""


@dataclass(frozen=True, slots=True)
class Change:
    """An enter or exit, of a subject, in a zone, at a time (from events or from the truth)."""

    subject: str
    zone: str
    kind: str  # "enter" or "exit"
    at: float


@dataclass(frozen=True, slots=True)
class Score:
    """The figures for one run (one pipeline on one scene)."""

    hits: int
    false_events: int
    misses: int
    precision: float
    recall: float
    f1: float
    enter_f1: float
    exit_f1: float
    zone_iou: float
    spurious_exits: int
    subject_hours: float

    @property
    def spurious_exits_per_subject_hour(self) -> float:
        """Spurious exits per hour of truth presence."""
        return self.spurious_exits / self.subject_hours if self.subject_hours else 0.0


def _f1(hits: int, false_events: int, misses: int) -> tuple[float, float, float]:
    precision = hits / (hits + false_events) if hits + false_events else 1.0
    recall = hits / (hits + misses) if hits + misses else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _match(events: list[float], counted: list[float], excused: list[float]) -> tuple[int, int, int]:
    """Hits, false events and misses of event times against truth times (one subject/zone/kind).

    Counted truth changes take the closest events first; events left over that are near an
    excused (short-stay) change are ignored.
    """
    pairs = sorted(
        (abs(event - truth), index, target)
        for index, event in enumerate(events)
        for target, truth in enumerate(counted)
        if abs(event - truth) <= MATCH_TOLERANCE_S
    )
    used_events: set[int] = set()
    used_truth: set[int] = set()
    for _, index, target in pairs:
        if index in used_events or target in used_truth:
            continue
        used_events.add(index)
        used_truth.add(target)
    hits = len(used_truth)
    leftover = [event for index, event in enumerate(events) if index not in used_events]
    false_events = sum(
        1 for event in leftover if not any(abs(event - t) <= MATCH_TOLERANCE_S for t in excused)
    )
    return hits, false_events, len(counted) - hits


def _intervals(
    changes: Iterable[Change], end: float
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Stays from enter/exit changes, per (subject, zone); an open stay closes at ``end``."""
    open_at: dict[tuple[str, str], float] = {}
    stays: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for change in sorted(changes, key=lambda c: (c.at, c.kind != "exit")):
        key = (change.subject, change.zone)
        if change.kind == "enter":
            open_at.setdefault(key, change.at)
        elif key in open_at:
            stays[key].append((open_at.pop(key), change.at))
    for key, start in open_at.items():
        stays[key].append((start, end))
    return stays


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total = 0.0
    for start_a, end_a in a:
        for start_b, end_b in b:
            total += max(0.0, min(end_a, end_b) - max(start_a, start_b))
    return total


def _length(stays: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in stays)


def truth_changes(truth: Mapping[str, Any]) -> tuple[list[Change], list[Change], float, float]:
    """Counted changes, excused (short-stay) changes, the scene's end, and subject-hours."""
    end = float(truth["end"])
    counted: list[Change] = []
    excused: list[Change] = []
    hours = 0.0
    for subject in truth["subjects"]:
        if not subject["enrolled"]:
            continue
        hours += (min(subject["leave"], end) - subject["arrive"]) / 3600
        for stay in subject["stays"]:
            bucket = counted if stay["exit"] - stay["enter"] >= SHORT_STAY_S else excused
            bucket.append(Change(subject["id"], stay["zone"], "enter", stay["enter"]))
            if stay["exit"] < end - _END_SLACK_S:
                bucket.append(Change(subject["id"], stay["zone"], "exit", stay["exit"]))
    return counted, excused, end, hours


def score(truth: Mapping[str, Any], events: Iterable[Change]) -> Score:
    """Score enter/exit events (other kinds are ignored) against a scene's ground truth."""
    counted, excused, end, hours = truth_changes(truth)
    events = [event for event in events if event.kind in {"enter", "exit"}]
    enrolled = {subject["id"] for subject in truth["subjects"] if subject["enrolled"]}

    def grouped(changes: Iterable[Change]) -> dict[tuple[str, str, str], list[float]]:
        groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for change in changes:
            groups[change.subject, change.zone, change.kind].append(change.at)
        return groups

    by_event, by_counted, by_excused = grouped(events), grouped(counted), grouped(excused)
    totals = {"enter": [0, 0, 0], "exit": [0, 0, 0]}
    for key in set(by_event) | set(by_counted):
        hits, false_events, misses = _match(
            by_event.get(key, []), by_counted.get(key, []), by_excused.get(key, [])
        )
        total = totals[key[2]]
        total[0] += hits
        total[1] += false_events
        total[2] += misses
    hits = totals["enter"][0] + totals["exit"][0]
    false_events = totals["enter"][1] + totals["exit"][1]
    misses = totals["enter"][2] + totals["exit"][2]
    precision, recall, f1 = _f1(hits, false_events, misses)
    truth_stays = _intervals([*counted, *excused], end)
    event_stays = _intervals((e for e in events if e.subject in enrolled), end)
    intersection = sum(
        _overlap(stays, truth_stays.get(key, [])) for key, stays in event_stays.items()
    )
    union = (
        sum(_length(stays) for stays in truth_stays.values())
        + sum(_length(stays) for stays in event_stays.values())
        - intersection
    )
    return Score(
        hits=hits,
        false_events=false_events,
        misses=misses,
        precision=precision,
        recall=recall,
        f1=f1,
        enter_f1=_f1(*totals["enter"])[2],
        exit_f1=_f1(*totals["exit"])[2],
        zone_iou=intersection / union if union else 1.0,
        spurious_exits=totals["exit"][1],
        subject_hours=hours,
    )
