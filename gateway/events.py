"""The events the gateway publishes: versioned pydantic models, and their JSON Schemas.

Every event has ``schema_version``, a unique ``event_id`` that is stable for the same occurrence
(a UUIDv5 of what happened, so a consumer drops duplicates after a retry or a replay), the
``event_time`` when it happened and the ``gateway_time`` when the gateway concluded it, the
``site`` and ``gateway_id``. Subjects appear only with the fields the configuration allows, and
never with keys or raw EIDs (unless ``publish.raw_eids`` is set, for debugging).

``beacon-gateway schemas`` writes the JSON Schemas to ``schemas/``; CI checks they match.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.presence import PresenceChange
from gateway.core.triggers import TriggerFired

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.core.identity import Telemetry
    from gateway.core.pipeline import Output
    from gateway.core.subjects import SubjectDirectory

SCHEMA_VERSION: Final = 1
_EVENT_NAMESPACE: Final = uuid.UUID("6f1c3f52-61a4-4d43-9a55-0c6e0b3a8d17")
"""The UUIDv5 namespace of event ids (fixed forever: ids must not change between releases)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectView(_Model):
    """What an event shows of the subject: its kind, and the fields the config allows."""

    kind: Literal["customer", "bag", "unknown"]
    id: str | None = None
    beacon: str | None = None
    alias: str | None = None
    segment: str | None = None
    tag: str | None = None
    flight: str | None = None
    owner_alias: str | None = None
    destination: str | None = None


class _Event(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: uuid.UUID
    event_time: datetime
    gateway_time: datetime
    site: str
    gateway_id: str
    subject: SubjectView


class PresenceEvent(_Event):
    """A subject entered, dwelled in, or left a zone."""

    type: Literal["enter", "dwell", "exit"]
    zone: str
    dwell_s: Annotated[float, Field(ge=0)]
    threshold_s: float | None = None
    exit_reason: Literal["timeout", "moved", "out-of-range"] | None = None
    proximity: Literal["immediate", "near", "far"]
    distance_m: Annotated[float, Field(ge=0)]
    rssi: float
    """Filtered RSSI (dBm, gateway offset applied) at the nearest gateway."""
    nearest_gateway: str
    raw_eid: str | None = None


class TriggerEvent(_Event):
    """A trigger rule fired: an offer, a notification, an alert."""

    type: Literal["trigger"] = "trigger"
    rule: str
    action: str
    cause: Literal["enter", "dwell", "exit", "unseen"]
    zone: str
    dwell_s: float | None = None
    unseen_s: float | None = None
    proximity: Literal["immediate", "near", "far"] | None = None
    distance_m: float | None = None


class TelemetryEvent(_Event):
    """A beacon's telemetry (decrypted if it came as eTLM)."""

    type: Literal["telemetry"] = "telemetry"
    battery_mv: Annotated[int, Field(ge=0)]
    temperature_c: float | None
    adv_count: Annotated[int, Field(ge=0)]
    uptime_s: Annotated[float, Field(ge=0)]
    encrypted: bool


Event = PresenceEvent | TriggerEvent | TelemetryEvent
EVENT_MODELS: Final[dict[str, type[_Event]]] = {
    "presence-event": PresenceEvent,
    "trigger-event": TriggerEvent,
    "telemetry-event": TelemetryEvent,
}


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _event_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, "|".join(str(part) for part in parts))


class EventBuilder:
    """Turns the pipeline's outputs into events, joining subjects and applying publish rules."""

    def __init__(
        self,
        *,
        site: str,
        gateway_id: str,
        subjects: SubjectDirectory | None = None,
        subject_fields: frozenset[str] = frozenset({"id"}),
        raw_eid: Callable[[str], bytes | None] | None = None,
    ) -> None:
        """``raw_eid`` (debugging only) gives a beacon's last raw EID."""
        self._site = site
        self._gateway_id = gateway_id
        self._subjects = subjects
        self._fields = subject_fields
        self._raw_eid = raw_eid

    def subject(self, beacon_id: str) -> SubjectView:
        """The subject behind a beacon, as far as events may show it."""
        subject = None if self._subjects is None else self._subjects.for_beacon(beacon_id)
        if subject is None:
            shown: dict[str, object] = {"kind": "unknown"}
            if "beacon" in self._fields:
                shown["beacon"] = beacon_id
            return SubjectView.model_validate(shown)
        view: dict[str, object] = dict(subject.view(self._fields))
        if "beacon" in self._fields and len(view) > 1:
            view["beacon"] = beacon_id
        return SubjectView.model_validate(
            {k: str(v) if k != "kind" else v for k, v in view.items()}
        )

    def build(self, output: Output) -> Event:
        """The event for one pipeline output."""
        if isinstance(output, PresenceChange):
            return self._presence(output)
        if isinstance(output, TriggerFired):
            return self._trigger(output)
        return self._telemetry(output)

    def _common(
        self, kind: str, beacon_id: str, at: float, decided: float, *extra: object
    ) -> dict[str, object]:
        return {
            "event_id": _event_id(
                self._site, self._gateway_id, kind, beacon_id, f"{at:.3f}", *extra
            ),
            "event_time": _time(at),
            "gateway_time": _time(decided),
            "site": self._site,
            "gateway_id": self._gateway_id,
            "subject": self.subject(beacon_id),
        }

    def _presence(self, change: PresenceChange) -> PresenceEvent:
        raw = None if self._raw_eid is None else self._raw_eid(change.beacon_id)
        return PresenceEvent.model_validate(
            {
                **self._common(
                    change.kind.value,
                    change.beacon_id,
                    change.at,
                    change.decided_at,
                    change.zone,
                    change.threshold_s,
                ),
                "type": change.kind.value,
                "zone": change.zone,
                "dwell_s": round(change.dwell_s, 3),
                "threshold_s": change.threshold_s,
                "exit_reason": None if change.exit_reason is None else change.exit_reason.value,
                "proximity": change.proximity.value,
                "distance_m": change.distance_m,
                "rssi": change.rssi,
                "nearest_gateway": change.gateway,
                "raw_eid": None if raw is None else raw.hex(),
            }
        )

    def _trigger(self, fired: TriggerFired) -> TriggerEvent:
        change = fired.change
        return TriggerEvent.model_validate(
            {
                **self._common(
                    "trigger",
                    fired.beacon_id,
                    fired.at,
                    fired.decided_at,
                    fired.rule_id,
                    fired.zone,
                ),
                "rule": fired.rule_id,
                "action": fired.action,
                "cause": "unseen" if change is None else change.kind.value,
                "zone": fired.zone,
                "dwell_s": None if change is None else round(change.dwell_s, 3),
                "unseen_s": fired.unseen_s,
                "proximity": None if change is None else change.proximity.value,
                "distance_m": None if change is None else change.distance_m,
            }
        )

    def _telemetry(self, telemetry: Telemetry) -> TelemetryEvent:
        return TelemetryEvent.model_validate(
            {
                **self._common("telemetry", telemetry.beacon_id, telemetry.at, telemetry.at),
                "battery_mv": telemetry.battery_mv,
                "temperature_c": telemetry.temperature_c,
                "adv_count": telemetry.adv_count,
                "uptime_s": telemetry.uptime_ds / 10,
                "encrypted": telemetry.encrypted,
            }
        )


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text, for every event model (what ``schemas/`` holds)."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in EVENT_MODELS.items()
    }
