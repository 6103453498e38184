"""Event payloads shaped like the gateway's (docs/mqtt.md), for the examples' tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)


def stamp(seconds: float) -> str:
    """``START + seconds`` as the gateway writes event times."""
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    """A fresh event id."""
    return f"00000000-0000-5000-8000-{next(_ids):012d}"


def customer(
    customer_id: str = "cust-00012", segment: str | None = "gold", alias: str | None = "Nora V."
) -> dict[str, Any]:
    """A customer subject with consent (``publish.subject_fields`` of the store scene)."""
    return {
        "kind": "customer",
        "id": customer_id,
        "beacon": "shopper-00011",
        "alias": alias,
        "segment": segment,
        "tag": None,
        "flight": None,
        "owner_alias": None,
        "destination": None,
    }


def trigger(
    subject: dict[str, Any],
    *,
    rule: str = "aisle-2-offer",
    action: str = "offer",
    zone: str = "aisle-2",
    at: float = 0.0,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A trigger event."""
    return {
        "schema_version": 1,
        "event_id": event_id or new_id(),
        "event_time": stamp(at),
        "gateway_time": stamp(at + 2),
        "site": "store",
        "gateway_id": "store-sim",
        "subject": subject,
        "type": "trigger",
        "rule": rule,
        "action": action,
        "cause": "dwell",
        "zone": zone,
        "dwell_s": 30.0,
        "unseen_s": None,
        "proximity": "near",
        "distance_m": 1.9,
    }


def bag(tag: str = "0125000003") -> dict[str, Any]:
    """A bag subject (``publish.subject_fields`` of the airport scene)."""
    return {
        "kind": "bag",
        "id": tag,
        "beacon": f"bag-{tag[-5:]}",
        "alias": None,
        "segment": None,
        "tag": tag,
        "flight": "KL1002",
        "owner_alias": "W. Weber",
        "destination": "AMS",
    }


def presence(
    kind: str,
    tag: str,
    zone: str,
    at: float,
    *,
    dwell_s: float = 0.0,
    gateway: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A presence event (enter, dwell, exit) of a bag ``at`` seconds after START."""
    return {
        "schema_version": 1,
        "event_id": event_id or new_id(),
        "event_time": stamp(at),
        "gateway_time": stamp(at + 2),
        "site": "airport",
        "gateway_id": "airport-sim",
        "subject": bag(tag),
        "type": kind,
        "zone": zone,
        "dwell_s": dwell_s,
        "threshold_s": None,
        "exit_reason": "timeout" if kind == "exit" else None,
        "proximity": "far",
        "distance_m": 4.3,
        "rssi": -61.7,
        "nearest_gateway": gateway or f"gw-{zone}",
        "raw_eid": None,
    }
