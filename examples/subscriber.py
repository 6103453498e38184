"""A minimal beacon-gateway consumer: a persistent MQTT 5 session, QoS 1, dedup by event_id.

    .venv/bin/python examples/subscriber.py --host 127.0.0.1 --port 1883 \
        --topic 'beacon-gateway/v1/+/+/#' --client-id my-app

Prints one line per new event. While it is away, the broker queues QoS 1 events for its session
(up to its max_queued_messages); duplicates (after a gateway reconnect or restart) are dropped
by event_id. docs/mqtt.md explains the contract.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections import OrderedDict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SEEN_MAX = 100_000
"""How many event ids to remember: far more than any gateway's in-flight window."""


class Deduplicator:
    """Remembers the most recent event ids."""

    def __init__(self, size: int = SEEN_MAX) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        """True the first time an id is seen."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def describe(topic: str, event: dict[str, Any]) -> str:
    """One line for an event."""
    subject = event.get("subject", {})
    who = subject.get("id") or subject.get("beacon") or subject.get("kind", "?")
    kind = event.get("type", "?")
    where = event.get("zone", "")
    extra = ""
    if kind == "trigger":
        extra = f" rule={event.get('rule')} action={event.get('action')}"
    elif kind == "dwell":
        extra = f" dwell={event.get('dwell_s', 0):.0f}s"
    return f"{event.get('event_time', '?')} {kind:<9} {who:<16} {where:<12}{extra}  [{topic}]"


def main() -> int:
    """Subscribe and print events until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--topic", default="beacon-gateway/v1/#")
    parser.add_argument("--client-id", default="beacon-gateway-example-subscriber")
    parser.add_argument("--session-expiry", type=int, default=86400, help="seconds")
    args = parser.parse_args()

    dedup = Deduplicator()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5
    )

    def on_connect(
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: Any,  # noqa: ANN401 - paho's ReasonCode
        _properties: object,
    ) -> None:
        if reason.is_failure:
            print(f"connect refused: {reason}", file=sys.stderr)
            return
        print(f"connected (session present: {flags.session_present})", file=sys.stderr)
        client.subscribe(args.topic, qos=1)

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            event = json.loads(message.payload)
        except ValueError:
            print(f"not JSON on {message.topic}", file=sys.stderr)
            return
        if message.topic.endswith("/status"):
            print(f"gateway status: {event.get('status')}  [{message.topic}]", flush=True)
            return
        if dedup.first_time(str(event.get("event_id"))):
            print(describe(message.topic, event), flush=True)

    client.on_connect = on_connect
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = args.session_expiry
    client.connect(args.host, args.port, clean_start=False, properties=properties)
    signal.signal(signal.SIGTERM, lambda *_: client.disconnect())
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
