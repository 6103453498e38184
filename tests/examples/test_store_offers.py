"""The store engagement example's logic (examples/store_offers.py), without a broker."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from store_offers import CATALOGUE, Greeting, Offer, OfferEngine

from tests.examples.events import customer, new_id, trigger

MINUTE = 60.0


def test_an_offer_trigger_makes_an_offer_from_the_catalogue() -> None:
    engine = OfferEngine()
    event = trigger(customer(segment="gold"), at=90)
    offer = engine.handle(event)
    assert isinstance(offer, Offer)
    assert offer.deal == CATALOGUE["aisle-2", "gold"]
    assert offer.customer_id == "cust-00012"
    assert offer.text.startswith("Nora V., you've been browsing aisle 2: 15% off")
    assert "cust-00012 Nora V. (gold)" in offer.line()
    message = json.loads(json.dumps(offer.message()))
    assert message["trigger_event_id"] == event["event_id"]
    assert message["segment"] == "gold"
    assert message["discount_pct"] == 15
    assert engine.offers == 1


def test_the_offer_id_is_the_same_for_the_same_trigger_in_another_process() -> None:
    event = trigger(customer())
    first, second = OfferEngine().handle(event), OfferEngine().handle(dict(event))
    assert isinstance(first, Offer)
    assert isinstance(second, Offer)
    assert first.offer_id == second.offer_id


def test_a_duplicate_event_makes_no_second_offer() -> None:
    engine = OfferEngine()
    event = trigger(customer())
    assert isinstance(engine.handle(event), Offer)
    assert engine.handle(dict(event)) is None
    assert engine.last_skipped == "duplicate"
    assert engine.offers == 1


def test_a_customer_without_consent_never_gets_an_offer() -> None:
    engine = OfferEngine()
    for action in ("offer", "notify"):
        assert engine.handle(trigger({"kind": "customer"}, action=action)) is None
        assert engine.last_skipped == "no-consent"
    nulls = {"kind": "customer", "id": None, "alias": None, "segment": None}
    assert engine.handle(trigger(nulls)) is None
    assert engine.skipped["no-consent"] == 3
    assert engine.offers == 0


def test_no_deal_no_offer() -> None:
    engine = OfferEngine()
    assert engine.handle(trigger(customer(segment="standard"))) is None
    assert engine.handle(trigger(customer(segment=None))) is None
    assert engine.handle(trigger(customer(), zone="car-park")) is None
    assert engine.skipped["no-deal"] == 3


def test_at_most_one_offer_per_customer_per_cooldown_of_event_time() -> None:
    engine = OfferEngine(cooldown_s=60 * MINUTE)
    assert isinstance(engine.handle(trigger(customer(), at=0)), Offer)
    assert engine.handle(trigger(customer(), at=10 * MINUTE)) is None
    assert engine.last_skipped == "cooldown"
    assert engine.handle(trigger(customer(), at=-10 * MINUTE)) is None  # late, out of order
    assert isinstance(engine.handle(trigger(customer("cust-00099"), at=10 * MINUTE)), Offer)
    assert isinstance(engine.handle(trigger(customer(), at=61 * MINUTE)), Offer)
    assert engine.offers == 3


def test_notify_greets_and_other_actions_and_events_are_ignored() -> None:
    engine = OfferEngine()
    greeting = engine.handle(trigger(customer(), rule="welcome", action="notify", zone="entrance"))
    assert greeting == Greeting("cust-00012", "Nora V.", "entrance")
    assert greeting.line() == "hello  cust-00012 Nora V.: welcome (entrance)"
    assert engine.handle(trigger(customer(), rule="checkout-queue", action="alert")) is None
    assert engine.last_skipped == "other-action"
    presence = {**trigger(customer()), "type": "dwell"}
    assert engine.handle(presence) is None
    assert engine.last_skipped == "not-a-trigger"
    bag = trigger({"kind": "bag", "id": "0125000003"}, action="notify")
    assert engine.handle(bag) is None
    assert engine.last_skipped == "not-a-customer"
    assert engine.greetings == 1


def test_unknown_fields_are_ignored() -> None:
    event = {**trigger(customer()), "new_field": [1, 2], "schema_version": 7}
    event["subject"] = {**event["subject"], "loyalty_tier_v2": "platinum"}
    assert isinstance(OfferEngine().handle(event), Offer)


def test_malformed_events_are_skipped_and_counted() -> None:
    engine = OfferEngine()
    good = trigger(customer())
    malformed: list[dict[str, Any]] = [
        {},
        {"event_id": 42},
        {**good, "event_id": new_id(), "subject": "cust-00012"},
        {**good, "event_id": new_id(), "zone": None},
        {**good, "event_id": new_id(), "event_time": "yesterday"},
        {**good, "event_id": new_id(), "event_time": 1767225600},
        {**good, "event_id": new_id(), "subject": {**customer(), "segment": 5}},
        {**good, "event_id": new_id(), "subject": {**customer(), "id": ["x"]}},
    ]
    for event in malformed:
        assert engine.handle(event) is None, event
    assert engine.offers == 0
    assert sum(engine.skipped.values()) == len(malformed)
    assert isinstance(engine.handle(good), Offer)


def test_memory_is_bounded() -> None:
    engine = OfferEngine(seen_max=10, customers_max=5)
    for number in range(100):
        assert isinstance(engine.handle(trigger(customer(f"cust-{number:05d}"))), Offer)
    assert len(engine._dedup) == 10
    assert len(engine._last_offer) == 5
    # The oldest customer was forgotten: a new trigger makes an offer again.
    assert isinstance(engine.handle(trigger(customer("cust-00000"))), Offer)


def test_the_summary_counts() -> None:
    engine = OfferEngine()
    event = trigger(customer())
    engine.handle(event)
    engine.handle(event)
    assert engine.summary() == "offers 1, greetings 0; skipped: duplicate 1"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(["event_id", "type", "subject", "action", "zone", "event_time", "x"])


@given(st.lists(st.dictionaries(KEYS, JSON, max_size=7), max_size=10))
def test_no_payload_makes_it_raise(events: list[dict[str, Any]]) -> None:
    engine = OfferEngine()
    for event in events:
        engine.handle(event)
        engine.handle({**trigger(customer()), **event})
