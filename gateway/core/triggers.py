"""Trigger rules: presence changes of the right subjects, in the right zones, become actions.

A rule names the change it reacts to (``enter``, ``dwell``, ``exit``, or ``unseen``: not heard
anywhere for ``unseen_s`` after leaving a zone by silence), and filters: zone, minimum dwell,
proximity bands, subject kind and subject attributes. A rule fires at most once per
``cooldown_s`` per subject. A ``dwell`` rule with ``min_dwell_s`` fires once per stay, when the
dwell crosses it (the presence engine is told to report that moment). Rules never fire for a
customer without consent, and attribute filters never match a beacon without a subject.

Examples (config): a gold-tier customer dwelling 30 s at electronics gets an offer; a bag of
flight BA117 reaching carousel 5 notifies; a bag unseen 10 min after check-in raises an alert.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from gateway.core.presence import ChangeKind, ExitReason, PresenceChange

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from gateway.core.signal import Proximity
    from gateway.core.subjects import AttributeValue, Subject, SubjectDirectory, SubjectKind

RuleEvent = Literal["enter", "dwell", "exit", "unseen"]
PRUNE_INTERVAL_S: Final = 60.0
"""How often finished cooldowns are forgotten."""


@dataclass(frozen=True, slots=True)
class TriggerRule:
    """One rule; ``where`` maps an attribute to the values it may have (any of them)."""

    id: str
    on: RuleEvent
    action: str
    zone: str | None = None
    min_dwell_s: float | None = None
    unseen_s: float | None = None
    proximity: frozenset[Proximity] | None = None
    subject_kind: SubjectKind | None = None
    where: Mapping[str, frozenset[AttributeValue]] = field(default_factory=dict)
    cooldown_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TriggerFired:
    """A rule fired for a beacon. ``change`` is the presence change behind it (None: unseen).

    ``at`` is when the triggering moment happened; ``decided_at`` when it was known.
    """

    rule_id: str
    action: str
    beacon_id: str
    zone: str
    at: float
    decided_at: float
    change: PresenceChange | None
    unseen_s: float | None = None


@dataclass(order=True, slots=True)
class _Pending:
    due: float
    beacon_id: str = field(compare=False)
    zone: str = field(compare=False)
    last_seen: float = field(compare=False)
    rule: TriggerRule = field(compare=False)


class TriggerEngine:
    """Evaluates rules against presence changes and, for ``unseen`` rules, against time."""

    def __init__(
        self, rules: Iterable[TriggerRule], subjects: SubjectDirectory | None = None
    ) -> None:
        self.rules = tuple(rules)
        self._subjects = subjects
        self._by_event: dict[str, list[TriggerRule]] = {}
        for rule in self.rules:
            self._by_event.setdefault(rule.on, []).append(rule)
        self._last_fired: dict[tuple[str, str], float] = {}
        self._pending: list[_Pending] = []
        self._silent_since: dict[str, float] = {}  # beacon -> last seen, while it is unseen
        self._next_prune = 0.0

    def dwell_thresholds(self) -> frozenset[float]:
        """The dwell moments the rules need reported."""
        return frozenset(
            rule.min_dwell_s for rule in self._by_event.get("dwell", ()) if rule.min_dwell_s
        )

    def _subject(self, beacon_id: str) -> Subject | None:
        return None if self._subjects is None else self._subjects.for_beacon(beacon_id)

    def _admits(self, rule: TriggerRule, beacon_id: str, zone: str) -> bool:
        if rule.zone is not None and rule.zone != zone:
            return False
        subject = self._subject(beacon_id)
        if subject is not None and subject.kind == "customer" and not subject.consent:
            return False
        if rule.subject_kind is not None and (subject is None or subject.kind != rule.subject_kind):
            return False
        for name, accepted in rule.where.items():
            if subject is None or subject.attributes.get(name) not in accepted:
                return False
        return True

    def _cooled(self, rule: TriggerRule, beacon_id: str, at: float) -> bool:
        """Whether the rule may fire for this beacon at ``at`` (and note that it does)."""
        key = (rule.id, beacon_id)
        last = self._last_fired.get(key)
        if last is not None and at - last < rule.cooldown_s:
            return False
        self._last_fired[key] = at
        return True

    def on_changes(self, changes: Iterable[PresenceChange]) -> list[TriggerFired]:
        """The rules these changes fire."""
        fired: list[TriggerFired] = []
        for change in changes:
            self._note(change)
            for rule in self._by_event.get(change.kind.value, ()):
                if not self._admits(rule, change.beacon_id, change.zone):
                    continue
                if rule.proximity is not None and change.proximity not in rule.proximity:
                    continue
                if (
                    change.kind == ChangeKind.DWELL
                    and rule.min_dwell_s is not None
                    and change.threshold_s != rule.min_dwell_s
                ):
                    continue
                if not self._cooled(rule, change.beacon_id, change.at):
                    continue
                fired.append(
                    TriggerFired(
                        rule.id,
                        rule.action,
                        change.beacon_id,
                        change.zone,
                        change.at,
                        change.decided_at,
                        change,
                    )
                )
        return fired

    def _note(self, change: PresenceChange) -> None:
        """Arm unseen rules on an exit by silence; disarm them when the beacon is back."""
        beacon_id = change.beacon_id
        if change.kind != ChangeKind.EXIT:
            self._silent_since.pop(beacon_id, None)
            return
        if change.exit_reason != ExitReason.TIMEOUT or "unseen" not in self._by_event:
            return
        self._silent_since[beacon_id] = change.at
        for rule in self._by_event.get("unseen", ()):
            if rule.unseen_s is not None and self._admits(rule, beacon_id, change.zone):
                pending = _Pending(
                    change.at + rule.unseen_s, beacon_id, change.zone, change.at, rule
                )
                heapq.heappush(self._pending, pending)

    def tick(self, now: float) -> list[TriggerFired]:
        """Unseen rules whose time has come."""
        fired: list[TriggerFired] = []
        pending = self._pending
        while pending and pending[0].due <= now:
            item = heapq.heappop(pending)
            if self._silent_since.get(item.beacon_id) != item.last_seen:
                continue  # seen again since
            rule = item.rule
            if self._cooled(rule, item.beacon_id, item.due):
                fired.append(
                    TriggerFired(
                        rule.id,
                        rule.action,
                        item.beacon_id,
                        item.zone,
                        item.due,
                        now,
                        None,
                        unseen_s=rule.unseen_s,
                    )
                )
        if not pending:
            self._silent_since.clear()
        if now >= self._next_prune:
            self._prune(now)
        return fired

    def _prune(self, now: float) -> None:
        """Forget firings whose cooldown is over: the table stays as small as the crowd."""
        self._next_prune = now + PRUNE_INTERVAL_S
        cooldowns = {rule.id: rule.cooldown_s for rule in self.rules}
        self._last_fired = {
            key: at for key, at in self._last_fired.items() if now - at < cooldowns[key[0]]
        }
