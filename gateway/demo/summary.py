"""The demo's end summary: what the subscriber received, and how right it was.

:class:`Tally` counts the events as they arrive (dropping duplicates by ``event_id``, as the
MQTT contract asks consumers to). :func:`assess` scores the received enters and exits against
the scene's ground truth with :func:`gateway.scoring.score`, the same rules as
``beacon-gateway score``, over the subjects whose events name their beacon.

A run stopped early is scored honestly: only up to the scene time the gateway had surely
settled (its last event's ``gateway_time`` less :attr:`Reference.settle_s`), against a truth cut
at that moment (stays still open then have no exit to find); a run too short for that is not
scored at all. Nothing here divides by zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from gateway.demo.lines import clean
from gateway.scoring import MATCH_TOLERANCE_S, Change, Score, score, truth_changes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.demo.gateway_child import Delivery
    from gateway.demo.reference import Reference

KINDS: Final = ("customer", "bag", "unknown")
TYPES: Final = ("enter", "dwell", "exit", "trigger", "telemetry")
PAD: Final = " " * 13
"""Indent of a summary line's continuation."""
PLURALS: Final = {"customer": "customers", "bag": "bags", "unknown": "unknown beacons"}


def _seconds(value: object) -> float | None:
    """An ISO 8601 time as unix seconds, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _name(subject: Mapping[str, Any]) -> str | None:
    for key in ("id", "beacon", "alias", "tag"):
        value = subject.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(slots=True)
class Tally:
    """Everything the subscriber received, counted."""

    by_type: Counter[str] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    subjects: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    anonymous: Counter[str] = field(default_factory=Counter)
    """Events per subject kind that name nobody (a customer who did not consent)."""
    beacons: set[str] = field(default_factory=set)
    changes: list[Change] = field(default_factory=list)
    duplicates: int = 0
    unreadable: int = 0
    last_gateway_time: float | None = None
    _ids: set[str] = field(default_factory=set)

    @property
    def events(self) -> int:
        """Distinct events received."""
        return len(self._ids)

    def add(self, event: Mapping[str, Any]) -> bool:
        """Count an event payload; False (and counted as such) for a duplicate."""
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            self.unreadable += 1
            return True  # shown, since it arrived, but not counted as an event
        if event_id in self._ids:
            self.duplicates += 1
            return False
        self._ids.add(event_id)
        kind = str(event.get("type"))
        self.by_type[kind if kind in TYPES else "other"] += 1
        if kind == "trigger":
            self.by_action[clean(event.get("action"))] += 1
        decided = _seconds(event.get("gateway_time"))
        if decided is not None:
            self.last_gateway_time = max(decided, self.last_gateway_time or decided)
        self._subject(event, kind)
        return True

    def _subject(self, event: Mapping[str, Any], kind: str) -> None:
        subject = event.get("subject")
        if not isinstance(subject, dict):
            return
        subject_kind = subject.get("kind")
        subject_kind = subject_kind if subject_kind in KINDS else "unknown"
        name = _name(subject)
        if name is None:
            self.anonymous[subject_kind] += 1
        else:
            self.subjects[subject_kind].add(name)
        beacon = subject.get("beacon")
        if not isinstance(beacon, str) or not beacon:
            return
        self.beacons.add(beacon)
        at = _seconds(event.get("event_time"))
        zone = event.get("zone")
        if kind in {"enter", "exit"} and at is not None and isinstance(zone, str):
            self.changes.append(Change(beacon, zone, kind, at))


@dataclass(frozen=True, slots=True)
class Assessment:
    """The received events scored against the truth (``score`` None: nothing to score)."""

    score: Score | None
    scored_to: float
    """Scene time the score covers up to (the scene's end for a whole run)."""
    whole: bool
    subjects: int
    """Scored subjects (enrolled, named by their events) present in the covered time."""
    seen: int
    """How many of those the events named."""
    unnamed: int
    """Enrolled subjects present in the covered time whose events do not name them."""
    truth_changes: int


def window(truth: Mapping[str, Any], cut: float, keep: frozenset[str]) -> dict[str, Any]:
    """The truth of the subjects in ``keep``, as if the scene had ended at ``cut``."""
    subjects = []
    for subject in truth["subjects"]:
        if not subject["enrolled"] or subject["id"] not in keep or subject["arrive"] >= cut:
            continue
        stays = [
            {**stay, "exit": min(stay["exit"], cut)}
            for stay in subject["stays"]
            if stay["enter"] < cut
        ]
        subjects.append({**subject, "leave": min(subject["leave"], cut), "stays": stays})
    return {**truth, "end": min(float(truth["end"]), cut), "subjects": subjects}


def _present(truth: Mapping[str, Any], cut: float) -> set[str]:
    return {str(s["id"]) for s in truth["subjects"] if s["enrolled"] and s["arrive"] < cut}


def assess(reference: Reference, tally: Tally, *, whole: bool) -> Assessment:
    """Score what was received: the whole scene, or the part a stopped run settled."""
    if whole:
        cut = reference.end
    elif tally.last_gateway_time is None:
        cut = reference.start
    else:
        cut = min(reference.end, tally.last_gateway_time - reference.settle_s)
    present = _present(reference.truth, cut)
    scored = present & reference.named
    truth = window(reference.truth, cut, reference.named)
    counted = len(truth_changes(truth)[0]) if scored else 0
    result = None
    if counted:
        changes = [c for c in tally.changes if whole or c.at < cut]
        result = score(truth, changes)
    return Assessment(
        score=result,
        scored_to=cut,
        whole=whole,
        subjects=len(scored),
        seen=len(scored & tally.beacons),
        unnamed=len(present - reference.named),
        truth_changes=counted,
    )


def _clock(reference: Reference, at: float) -> str:
    minutes, seconds = divmod(max(0.0, at - reference.start), 60)
    return f"{int(minutes)} min {int(seconds):02d} s"


def render(
    reference: Reference,
    tally: Tally,
    assessment: Assessment,
    delivery: Delivery | None,
) -> list[str]:
    """The summary's lines."""
    total = _clock(reference, reference.end)
    if assessment.whole:
        covered = f"all {total} of scene time"
    elif assessment.scored_to > reference.start:
        covered = (
            f"stopped early: scored up to {_clock(reference, assessment.scored_to)} of {total}"
        )
    else:
        covered = f"stopped early, before the gateway had settled anything of its {total}"
    lines = [f"Summary: the {reference.name} scene (seed {reference.seed}), {covered}"]
    counts = ", ".join(f"{tally.by_type[t]} {t}" for t in (*TYPES, "other") if tally.by_type[t])
    lines.append(f"  events     {tally.events} received" + (f": {counts}" if counts else ""))
    if tally.by_action:
        actions = ", ".join(f"{n} {a}" for a, n in tally.by_action.most_common())
        lines.append(f"  triggers   {actions}")
    lines += _subjects_lines(tally)
    lines += _accuracy_lines(reference, assessment)
    lines.append(_delivery_line(tally, delivery))
    return lines


def _subjects_lines(tally: Tally) -> list[str]:
    named = sum(len(names) for names in tally.subjects.values())
    kinds = ", ".join(f"{len(tally.subjects[k])} {PLURALS[k]}" for k in KINDS)
    lines = [f"  subjects   {named} seen: {kinds}"]
    anonymous = sum(tally.anonymous.values())
    if anonymous:
        lines.append(
            f"{PAD}and {anonymous} anonymous events (a customer who did not consent "
            "shows only their kind)"
        )
    return lines


def _accuracy_lines(reference: Reference, assessment: Assessment) -> list[str]:
    lines = []
    if assessment.whole or assessment.scored_to > reference.start:
        seen = f"{assessment.seen} of the {assessment.subjects} enrolled subjects"
        lines.append(f"  truth      {seen} that events name were seen")
        if assessment.unnamed:
            lines.append(f"{PAD}({assessment.unnamed} more are anonymous in events: not scored)")
    found = assessment.score
    if found is None:
        if not assessment.whole and assessment.scored_to <= reference.start:
            reason = "the run stopped before the gateway had settled any presence"
        elif assessment.subjects == 0:
            reason = "no enrolled subject that events name was in the scene"
        else:
            reason = "no enter or exit in the truth"
        lines.append(f"  accuracy   not scored: {reason}")
        return lines
    figures = (
        f"F1 {found.f1:.2f} (precision {found.precision:.2f}, recall {found.recall:.2f}), "
        f"zone IoU {found.zone_iou:.2f}, on {assessment.truth_changes} true enters and exits"
    )
    within = f"{MATCH_TOLERANCE_S:.0f} s"
    lines += [
        f"  accuracy   {figures}",
        f"{PAD}F1 1.00 would be every true enter and exit reported, in its zone within {within},",
        f"{PAD}and nothing else; zone IoU 1.00, each subject's time in each zone exactly right",
    ]
    if not assessment.whole:
        lines.append(
            f"{PAD}(a partial run: its last {reference.settle_s:.0f} s of scene time "
            "were not settled yet, so are left out)"
        )
    return lines


def _delivery_line(tally: Tally, delivery: Delivery | None) -> str:
    extra = []
    if tally.duplicates:
        extra.append(f"{tally.duplicates} duplicates dropped by event_id")
    if tally.unreadable:
        extra.append(f"{tally.unreadable} unreadable messages")
    tail = f" ({'; '.join(extra)})" if extra else ""
    if delivery is None:
        return f"  delivery   the gateway did not report its outbox when it stopped{tail}"
    if delivery.delivered_all:
        return f"  delivery   the gateway delivered every event it produced{tail}"
    return (
        f"  delivery   {delivery.outbox_depth} events stayed in the gateway's outbox "
        f"(not delivered before it stopped){tail}"
    )
