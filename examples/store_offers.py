"""Store engagement: turn the gateway's ``offer`` triggers into offers for the customers.

The store scene's ``aisle-2-offer`` rule fires when a gold or silver customer lingers 30 s in
aisle 2. This consumer picks a deal for the zone and the customer's segment from a small
catalogue and writes the offer the customer's app would show::

    offer  cust-00012 Nora V. (gold): Nora V., you've been browsing aisle 2: 15% off freshly
           roasted coffee beans, today only  [trigger 4b8e...]

Run it beside the demo (two terminals; docs/examples.md)::

    make demo DEMO_ARGS='--speed 10'           # its banner shows the broker's port
    .venv/bin/python examples/store_offers.py --port PORT
    .venv/bin/python examples/store_offers.py --port PORT --publish-to 'store/offers/{customer}'

With ``--publish-to`` each offer is also published as JSON (QoS 1, not retained, expiring after
an hour) to that topic, ``{customer}`` replaced by the customer's id: the hand-over to a push
service. It greets customers on ``notify`` triggers (the store's ``welcome``) with one line and
ignores other actions (``alert``: the checkout queue is the staff's business).

An offer is sent at most once per trigger event (duplicates are dropped by ``event_id``) and at
most once per customer per ``--cooldown`` minutes of event time, whatever the gateway's own
rules say; its ``offer_id`` is derived from the trigger's ``event_id``, so the app can drop a
copy this consumer sends again after a restart. Customers without consent arrive as
``{"kind": "customer"}`` only and never get an offer. Memory is bounded.

``OfferEngine`` is the logic (no MQTT, tested in tests/examples/); ``main`` the MQTT shell
(examples/consumer.py: persistent session, QoS 1, Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consumer import (
    SEEN_MAX,
    Consumer,
    Deduplicator,
    Event,
    add_connection_options,
    event_seconds,
    events_filter,
    setup_logging,
    text_field,
    topic_safe,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger("store_offers")

OFFER_NAMESPACE = uuid.UUID("0d6c3f55-8f5e-4c1e-9d7a-2b8f3e6a1c42")
"""Offer ids are UUIDv5 of the trigger's event id in this namespace: stable across restarts."""
COOLDOWN_S = 3600.0
"""At most one offer per customer this often (s of event time)."""
CUSTOMERS_MAX = 100_000
"""How many customers' last offer times to remember."""
OFFER_EXPIRY_S = 3600
"""A published offer the app has not fetched within this long (s) is dropped by the broker."""


@dataclass(frozen=True, slots=True)
class Deal:
    """What a segment gets in a zone."""

    deal_id: str
    discount_pct: int
    product: str


CATALOGUE: Mapping[tuple[str, str], Deal] = {
    ("aisle-1", "gold"): Deal("bakery-gold", 20, "the fresh bakery"),
    ("aisle-1", "silver"): Deal("bakery-silver", 10, "the fresh bakery"),
    ("aisle-2", "gold"): Deal("coffee-gold", 15, "freshly roasted coffee beans"),
    ("aisle-2", "silver"): Deal("coffee-silver", 10, "freshly roasted coffee beans"),
    ("aisle-3", "gold"): Deal("wine-gold", 15, "wines of the month"),
}
"""(zone, segment) -> deal. A real engine loads this from its campaign manager."""


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer for one customer, made from one trigger event."""

    offer_id: str
    customer_id: str
    alias: str | None
    segment: str
    zone: str
    deal: Deal
    site: str | None
    trigger_event_id: str
    event_time: str

    @property
    def text(self) -> str:
        """What the customer's app shows."""
        who = self.alias or "Hello"
        where = self.zone.replace("-", " ")
        return (
            f"{who}, you've been browsing {where}: {self.deal.discount_pct}% off "
            f"{self.deal.product}, today only"
        )

    def line(self) -> str:
        """One line for the console."""
        who = f"{self.alias} " if self.alias else ""
        return (
            f"offer  {self.customer_id} {who}({self.segment}): {self.text}"
            f"  [trigger {self.trigger_event_id}]"
        )

    def message(self) -> dict[str, Any]:
        """The JSON the app gets (``offer_id`` is its dedup key)."""
        return {
            "offer_id": self.offer_id,
            "customer_id": self.customer_id,
            "alias": self.alias,
            "segment": self.segment,
            "zone": self.zone,
            "site": self.site,
            "deal_id": self.deal.deal_id,
            "discount_pct": self.deal.discount_pct,
            "text": self.text,
            "trigger_event_id": self.trigger_event_id,
            "event_time": self.event_time,
        }


@dataclass(frozen=True, slots=True)
class Greeting:
    """A short hello for a ``notify`` trigger (the store's ``welcome`` at the entrance)."""

    customer_id: str
    alias: str | None
    zone: str | None

    def line(self) -> str:
        """One line for the console."""
        who = f" {self.alias}" if self.alias else ""
        return f"hello  {self.customer_id}{who}: welcome ({self.zone or 'the store'})"


class OfferEngine:
    """Trigger events in, offers and greetings out; no I/O.

    :attr:`skipped` counts what produced nothing, by reason (``duplicate``, ``no-consent``...).
    """

    def __init__(
        self,
        catalogue: Mapping[tuple[str, str], Deal] = CATALOGUE,
        *,
        cooldown_s: float = COOLDOWN_S,
        seen_max: int = SEEN_MAX,
        customers_max: int = CUSTOMERS_MAX,
    ) -> None:
        self.catalogue = catalogue
        self.cooldown_s = cooldown_s
        self.customers_max = customers_max
        self.skipped: Counter[str] = Counter()
        self.last_skipped: str | None = None
        self.offers = 0
        self.greetings = 0
        self._dedup = Deduplicator(seen_max)
        self._last_offer: OrderedDict[str, float] = OrderedDict()

    def handle(  # noqa: PLR0911 - one return per reason to skip, each counted
        self, event: Mapping[str, Any]
    ) -> Offer | Greeting | None:
        """The offer or greeting an event makes, or None (and why, in :attr:`last_skipped`)."""
        self.last_skipped = None
        event_id = text_field(event, "event_id")
        if event_id is None:
            self._skip("malformed")
            return None
        if not self._dedup.first_time(event_id):
            self._skip("duplicate")
            return None
        if event.get("type") != "trigger":
            self._skip("not-a-trigger")
            return None
        subject = event.get("subject")
        if not isinstance(subject, dict) or subject.get("kind") != "customer":
            self._skip("not-a-customer")
            return None
        customer_id = text_field(subject, "id")
        if customer_id is None:  # no consent: the gateway shows only {"kind": "customer"}
            self._skip("no-consent")
            return None
        action = event.get("action")
        if action == "notify":
            self.greetings += 1
            return Greeting(customer_id, text_field(subject, "alias"), text_field(event, "zone"))
        if action != "offer":
            self._skip("other-action")
            return None
        return self._offer(event, event_id, customer_id, subject)

    def _offer(
        self, event: Mapping[str, Any], event_id: str, customer_id: str, subject: Mapping[str, Any]
    ) -> Offer | None:
        zone, segment = text_field(event, "zone"), text_field(subject, "segment")
        event_time = text_field(event, "event_time")
        at = event_seconds(event_time)
        if zone is None or event_time is None or at is None:
            self._skip("malformed")
            return None
        deal = self.catalogue.get((zone, segment or ""))
        if segment is None or deal is None:
            self._skip("no-deal")
            return None
        last = self._last_offer.get(customer_id)
        if last is not None and abs(at - last) < self.cooldown_s:  # out-of-order events too
            self._skip("cooldown")
            return None
        self._remember(customer_id, at)
        self.offers += 1
        return Offer(
            offer_id=str(uuid.uuid5(OFFER_NAMESPACE, event_id)),
            customer_id=customer_id,
            alias=text_field(subject, "alias"),
            segment=segment,
            zone=zone,
            deal=deal,
            site=text_field(event, "site"),
            trigger_event_id=event_id,
            event_time=event_time,
        )

    def _remember(self, customer_id: str, at: float) -> None:
        self._last_offer[customer_id] = at
        self._last_offer.move_to_end(customer_id)
        while len(self._last_offer) > self.customers_max:
            self._last_offer.popitem(last=False)

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1
        self.last_skipped = reason

    def summary(self) -> str:
        """One line of counts."""
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        return f"offers {self.offers}, greetings {self.greetings}; skipped: {skipped or 'none'}"


def main(argv: list[str] | None = None) -> int:
    """Consume trigger events until interrupted; print (and publish) offers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_connection_options(parser, client_id="store-offers-example")
    parser.add_argument(
        "--publish-to",
        metavar="TOPIC",
        help="also publish each offer as JSON here; {customer} is the customer's id",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=COOLDOWN_S / 60,
        metavar="MINUTES",
        help="at most one offer per customer this often, in event time (default: %(default)g)",
    )
    parser.add_argument(
        "--share-group",
        metavar="GROUP",
        help="subscribe as $share/GROUP/...: several copies split the triggers between them",
    )
    options = parser.parse_args(argv)
    setup_logging(options)
    engine = OfferEngine(cooldown_s=options.cooldown * 60)
    triggers = events_filter(options.topic_prefix, options.site, "trigger")
    if options.share_group:
        triggers = f"$share/{options.share_group}/{triggers}"

    def handle(_topic: str, event: Event) -> None:
        made = engine.handle(event)
        if made is None:
            log.debug("nothing from %s: %s", event.get("event_id"), engine.last_skipped)
            return
        print(made.line(), flush=True)
        if isinstance(made, Offer) and options.publish_to:
            topic = options.publish_to.replace("{customer}", topic_safe(made.customer_id))
            consumer.publish(topic, made.message(), expiry_s=OFFER_EXPIRY_S)

    consumer = Consumer(options, [triggers], handle)
    status = consumer.run()
    print(engine.summary(), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
