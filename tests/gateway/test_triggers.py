"""Trigger rules: filters, once-per-stay dwell, cooldowns, consent, unseen alerts."""

from __future__ import annotations

from gateway.core.presence import ChangeKind, ExitReason, PresenceChange
from gateway.core.signal import Proximity
from gateway.core.subjects import Subject, SubjectDirectory
from gateway.core.triggers import TriggerEngine, TriggerRule

SUBJECTS = SubjectDirectory([
    Subject("cust-1", "customer", "b-gold", {"segment": "gold", "alias": "Ana"}, consent=True),
    Subject("cust-2", "customer", "b-silver", {"segment": "silver"}, consent=True),
    Subject("cust-3", "customer", "b-private", {"segment": "gold"}, consent=False),
    Subject("0125", "bag", "b-bag", {"flight": "BA117", "tag": "0125"}),
])  # fmt: skip


def change(kind: ChangeKind, beacon: str, zone: str, at: float, **kw: object) -> PresenceChange:
    base: dict[str, object] = {
        "kind": kind, "beacon_id": beacon, "zone": zone, "at": at, "decided_at": at,
        "dwell_s": 0.0, "gateway": "gw", "rssi": -60.0, "distance_m": 1.0,
        "proximity": Proximity.NEAR,
    }  # fmt: skip
    base.update(kw)
    return PresenceChange(**base)  # type: ignore[arg-type]


def test_gold_customer_dwelling_30s_gets_one_offer_per_stay() -> None:
    rule = TriggerRule("offer", "dwell", "offer", zone="electronics", min_dwell_s=30.0,
                       where={"segment": frozenset({"gold"})}, cooldown_s=3600)  # fmt: skip
    engine = TriggerEngine([rule], SUBJECTS)
    assert engine.dwell_thresholds() == {30.0}
    fired = engine.on_changes([
        change(ChangeKind.DWELL, "b-gold", "electronics", 30.0, threshold_s=30.0, dwell_s=30.0),
        change(ChangeKind.DWELL, "b-gold", "electronics", 60.0, threshold_s=60.0, dwell_s=60.0),
        change(ChangeKind.DWELL, "b-silver", "electronics", 30.0, threshold_s=30.0),
        change(ChangeKind.DWELL, "b-private", "electronics", 30.0, threshold_s=30.0),
        change(ChangeKind.DWELL, "b-gold", "toys", 30.0, threshold_s=30.0),
    ])  # fmt: skip
    assert [(f.rule_id, f.beacon_id, f.at) for f in fired] == [("offer", "b-gold", 30.0)]
    again = engine.on_changes(
        [change(ChangeKind.DWELL, "b-gold", "electronics", 600.0, threshold_s=30.0)]
    )
    assert again == []  # cooldown


def test_bag_of_a_flight_reaching_a_carousel_notifies() -> None:
    rule = TriggerRule("carousel", "enter", "notify", zone="claim-5", subject_kind="bag",
                       where={"flight": frozenset({"BA117"})})  # fmt: skip
    engine = TriggerEngine([rule], SUBJECTS)
    fired = engine.on_changes([change(ChangeKind.ENTER, "b-bag", "claim-5", 10.0)])
    assert [f.action for f in fired] == ["notify"]
    assert engine.on_changes([change(ChangeKind.ENTER, "unknown", "claim-5", 11.0)]) == []


def test_bag_unseen_after_checkin_raises_one_alert_unless_it_shows_up() -> None:
    rule = TriggerRule("lost", "unseen", "alert", zone="checkin", unseen_s=600.0)
    engine = TriggerEngine([rule], SUBJECTS)
    left = change(ChangeKind.EXIT, "b-bag", "checkin", 100.0, exit_reason=ExitReason.TIMEOUT)
    assert engine.on_changes([left]) == []
    assert engine.tick(650.0) == []
    fired = engine.tick(701.0)
    assert [(f.rule_id, f.at, f.change) for f in fired] == [("lost", 700.0, None)]
    assert engine.tick(2000.0) == []
    # A bag that shows up again in time is no alert.
    engine.on_changes([change(ChangeKind.EXIT, "b-bag", "checkin", 3000.0,
                              exit_reason=ExitReason.TIMEOUT)])  # fmt: skip
    engine.on_changes([change(ChangeKind.ENTER, "b-bag", "sorting", 3100.0)])
    assert engine.tick(4000.0) == []


def test_proximity_filter() -> None:
    rule = TriggerRule("close", "enter", "greet", proximity=frozenset({Proximity.IMMEDIATE}))
    engine = TriggerEngine([rule])
    assert engine.on_changes([change(ChangeKind.ENTER, "x", "z", 1.0)]) == []
    near = change(ChangeKind.ENTER, "x", "z", 2.0, proximity=Proximity.IMMEDIATE)
    assert len(engine.on_changes([near])) == 1
