"""A minimal beacon-gateway consumer: prints one line per new event.

    .venv/bin/python examples/subscriber.py --port 1883
    .venv/bin/python examples/subscriber.py --port 1883 --topic 'beacon-gateway/v1/+/+/trigger/#'

It keeps a persistent MQTT 5 session (a fixed ``--client-id``, ``clean_start=False``, a Session
Expiry Interval) with QoS 1 subscriptions, so the broker queues events while it is away (up to
its ``max_queued_messages``); duplicates (after a gateway reconnect or restart) are dropped by
``event_id``; a malformed payload is logged and skipped. The plumbing is in consumer.py, next to
this file; docs/mqtt.md explains the contract, docs/examples.md the other examples.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from consumer import Consumer, Deduplicator, Event, add_connection_options, setup_logging

if TYPE_CHECKING:
    from collections.abc import Mapping


def describe(topic: str, event: Mapping[str, Any]) -> str:
    """One line for an event; fields it lacks (or of the wrong type) show as ``?``."""

    def shown(value: object) -> str:
        return str(value) if isinstance(value, str | int | float) and value != "" else "?"

    subject = event.get("subject")
    subject = subject if isinstance(subject, dict) else {}
    who = subject.get("id") or subject.get("beacon") or subject.get("kind")
    kind = shown(event.get("type"))
    zone = event.get("zone")
    extra = ""
    if kind == "trigger":
        extra = f" rule={shown(event.get('rule'))} action={shown(event.get('action'))}"
    elif kind == "dwell" and isinstance(event.get("dwell_s"), int | float):
        extra = f" dwell={event['dwell_s']:.0f}s"
    return (
        f"{shown(event.get('event_time'))} {kind:<9} {shown(who):<16} "
        f"{zone if isinstance(zone, str) else '':<12}{extra}  [{topic}]"
    )


def main(argv: list[str] | None = None) -> int:
    """Subscribe and print events until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_connection_options(parser, client_id="beacon-gateway-example-subscriber")
    parser.add_argument(
        "--topic", help="topic filter (default: <topic-prefix>/v1/<site>/#: every event)"
    )
    options = parser.parse_args(argv)
    setup_logging(options)
    topic = options.topic or f"{options.topic_prefix}/v1/{options.site}/#"
    dedup = Deduplicator()

    def handle(topic: str, event: Event) -> None:
        if dedup.first_time(event["event_id"]):
            print(describe(topic, event), flush=True)

    return Consumer(options, [topic], handle, watch_status=options.topic is not None).run()


if __name__ == "__main__":
    sys.exit(main())
