"""What every example consumer shares: connection options, a persistent MQTT 5 session, dedup.

The examples (``subscriber.py``, ``store_offers.py``, ``luggage_tracker.py``) import this file
from their own directory; copy it along with the one you adapt. It does what docs/mqtt.md asks
of a consumer that must not miss events:

- a fixed client id, ``clean_start=False`` and a Session Expiry Interval, so the broker queues
  QoS 1 events while the consumer is away and hands them over when it is back;
- QoS 1 subscriptions, renewed on every (re)connect;
- lenient parsing: a payload that is not a JSON object with an ``event_id`` is logged and
  skipped, unknown fields are ignored, and an error in the handler never stops the consumer;
- :class:`Deduplicator`, a bounded memory of event ids (QoS 1 is at least once);
- the gateways' retained ``status`` (``online``/``offline``) printed as it changes;
- SIGINT (Ctrl-C) and SIGTERM stop it cleanly: it disconnects, and the broker keeps the session.

Nothing here knows about offers or bags: each example gives :class:`Consumer` its topic filters
and a handler that takes ``(topic, event)``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import ssl
import sys
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from types import FrameType

    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("consumer")

Event = dict[str, Any]
"""One parsed event payload (docs/mqtt.md): a JSON object with at least an ``event_id``."""

SEEN_MAX = 100_000
"""How many event ids to remember: far more than any gateway's in-flight window."""
SESSION_EXPIRY_S = 86_400
"""How long the broker keeps the session (and queues events) while the consumer is away."""
KEEPALIVE_S = 30
REFUSED_FOR_GOOD = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})
"""CONNACK reason codes no retry fixes: bad protocol, client id, credentials, not authorized."""
TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_", " ": "_"})


class Deduplicator:
    """Remembers the most recent ``size`` event ids; memory stays bounded."""

    def __init__(self, size: int = SEEN_MAX) -> None:
        if size < 1:
            msg = "size must be at least 1"
            raise ValueError(msg)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        """True the first time an id is seen (since it was last forgotten)."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


def parse_event(payload: bytes | bytearray) -> Event | None:
    """The event in a payload: a JSON object with a non-empty string ``event_id``; else None."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, absurd nesting
        return None
    if not isinstance(event, dict):
        return None
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        return None
    return event


def event_seconds(value: object) -> float | None:
    """An ISO 8601 ``event_time`` as Unix seconds (UTC if it names no zone); None if not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):  # not ISO 8601, or beyond what datetime holds in UTC
        return None


def clock_text(seconds: float) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` UTC (as a number if out of datetime's range)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{seconds:.0f}"


def text_field(mapping: Mapping[str, Any], key: str) -> str | None:
    """``mapping[key]`` when it is a non-empty string; else None (absent, null, another type)."""
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def topic_safe(value: str) -> str:
    """``value`` usable as one topic level: ``/``, ``+``, ``#``, NUL and spaces become ``_``."""
    return value.translate(TOPIC_UNSAFE)


def events_filter(prefix: str, site: str, kind: str) -> str:
    """The filter for one kind of event (``presence``, ``trigger``...) of a site (or ``+``)."""
    return f"{prefix}/v1/{site}/+/{kind}/#"


# --------------------------------------------------------------------------- command line


def add_connection_options(parser: argparse.ArgumentParser, *, client_id: str) -> None:
    """The broker, credentials, TLS, session and topic options every example takes."""
    broker = parser.add_argument_group("broker")
    broker.add_argument("--host", default="127.0.0.1", help="broker host (default: %(default)s)")
    broker.add_argument("--port", type=int, default=1883, help="broker port (default: 1883)")
    broker.add_argument("--username", help="MQTT user name")
    broker.add_argument(
        "--password",
        default=os.environ.get("MQTT_PASSWORD"),
        help="MQTT password (default: $MQTT_PASSWORD, which keeps it out of the process list)",
    )
    broker.add_argument("--tls", action="store_true", help="TLS with the system's trusted CAs")
    broker.add_argument("--tls-ca", metavar="PEM", help="TLS, trusting this CA (implies --tls)")
    broker.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    broker.add_argument("--tls-key", metavar="PEM", help="its private key")
    broker.add_argument(
        "--client-id",
        default=client_id,
        help="fixed client id: the broker keeps its session (default: %(default)s)",
    )
    broker.add_argument(
        "--session-expiry",
        type=int,
        default=SESSION_EXPIRY_S,
        metavar="SECONDS",
        help="how long the broker queues events while this is away (default: %(default)s)",
    )
    topics = parser.add_argument_group("topics")
    topics.add_argument(
        "--topic-prefix", default="beacon-gateway", help="mqtt.topic_prefix (default: %(default)s)"
    )
    topics.add_argument("--site", default="+", help="one site, or + for all (default: +)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is skipped, and why")


def setup_logging(options: argparse.Namespace) -> None:
    """Diagnostics to stderr; the example's output goes to stdout."""
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# --------------------------------------------------------------------------- the MQTT shell


class Consumer:
    """A paho MQTT 5 client with a persistent session that feeds events to a handler.

    ``handle(topic, event)`` runs on paho's network thread, under :attr:`lock`, once per
    message (duplicates included: dedup is the handler's business, by ``event_id``). Work the
    main thread does on a signal (see :meth:`run`) takes the same lock. Messages on a
    ``.../status`` topic are printed, not handled; ``watch_status`` adds the filter for the
    gateways' status (leave it out when ``filters`` match the status already).
    """

    def __init__(
        self,
        options: argparse.Namespace,
        filters: Sequence[str],
        handle: Callable[[str, Event], None],
        *,
        watch_status: bool = True,
    ) -> None:
        self.options = options
        self.filters = list(filters)
        if watch_status:
            self.filters.append(f"{options.topic_prefix}/v1/{options.site}/+/status")
        self.lock = threading.Lock()
        self._handle = handle
        self._stop = threading.Event()
        self._failed = False
        self._pending: list[Callable[[], None]] = []
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.reconnect_delay_set(1, 30)
        if options.username is not None:
            self._client.username_pw_set(options.username, options.password)
        if options.tls or options.tls_ca is not None:
            self._client.tls_set(
                ca_certs=options.tls_ca,
                certfile=options.tls_cert,
                keyfile=options.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def publish(self, topic: str, payload: Mapping[str, Any], *, expiry_s: int | None) -> None:
        """Publish a JSON object at QoS 1, not retained (paho queues it while disconnected)."""
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        if expiry_s is not None:
            properties.MessageExpiryInterval = expiry_s
        body = json.dumps(payload, separators=(",", ":"))
        self._client.publish(topic, body, qos=1, retain=False, properties=properties)

    def run(self, on_signal: Mapping[signal.Signals, Callable[[], None]] | None = None) -> int:
        """Connect, consume until SIGINT or SIGTERM, disconnect; the exit status.

        ``on_signal`` maps other signals (SIGUSR1...) to work done on the main thread, under
        :attr:`lock`, so that it never sees the handler's state half-updated.
        """
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self._request_stop)
        for number, work in (on_signal or {}).items():
            signal.signal(number, self._queue(work))
        session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        session.SessionExpiryInterval = self.options.session_expiry
        where = f"{self.options.host}:{self.options.port}"
        try:
            self._client.connect(
                self.options.host,
                self.options.port,
                keepalive=KEEPALIVE_S,
                clean_start=False,
                properties=session,
            )
        except (OSError, ssl.SSLError) as error:
            log.error("cannot connect to %s: %s", where, error)  # noqa: TRY400 - no traceback
            return 1
        self._client.loop_start()
        try:
            while not self._stop.wait(0.2):
                while self._pending:
                    work = self._pending.pop(0)
                    with self.lock:
                        work()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
        return 1 if self._failed else 0

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def _queue(self, work: Callable[[], None]) -> Callable[[int, FrameType | None], None]:
        """A signal handler that leaves ``work`` to the main loop (a handler must not block)."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self._pending.append(work)

        return handler

    # ----------------------------------------------------------------------- paho callbacks

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            if reason.value in REFUSED_FOR_GOOD:
                log.error("the broker refused the connection: %s; giving up", reason)
                self._failed = True
                self._stop.set()
            else:
                log.error("the broker refused the connection: %s; retrying", reason)
            return
        log.info(
            "connected to %s:%s as %s (session present: %s); subscribing to %s",
            self.options.host,
            self.options.port,
            self.options.client_id,
            flags.session_present,
            ", ".join(self.filters),
        )
        client.subscribe([(topic, 1) for topic in self.filters])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [
            f"{topic} ({reason})"
            for topic, reason in zip(self.filters, reasons, strict=False)
            if reason.is_failure
        ]
        if refused:  # an ACL that denies the topic, a broker without shared subscriptions...
            log.error("the broker refused the subscription to %s", ", ".join(refused))
        elif any(reason.value < 1 for reason in reasons):
            log.warning("the broker granted QoS 0: events sent while this is away are lost")
        else:
            log.info("subscribed at QoS 1")

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        log.warning("reconnecting to %s:%s failed; retrying", self.options.host, self.options.port)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if not self._stop.is_set():
            log.warning("disconnected (%s); paho reconnects", reason)

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        topic = message.topic
        if topic.endswith("/status"):
            self._status(topic, message.payload)
            return
        event = parse_event(message.payload)
        if event is None:
            log.warning("skipped a malformed payload on %s (%d bytes)", topic, len(message.payload))
            return
        with self.lock:
            try:
                self._handle(topic, event)
            except Exception:  # an example must survive what it did not foresee: log, go on
                log.exception("the handler failed on event %s; skipped", event.get("event_id"))

    def _status(self, topic: str, payload: bytes | bytearray) -> None:
        levels = topic.split("/")
        where = "/".join(levels[-3:-1]) if len(levels) >= 3 else topic  # noqa: PLR2004
        try:
            status = json.loads(payload).get("status")
        except (ValueError, AttributeError, RecursionError):
            status = None
        with self.lock:
            print(f"gateway {where}: {status or 'unknown status'}", flush=True)
