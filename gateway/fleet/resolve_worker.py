"""A resolver worker: sightings batches in through a shared subscription, observations out.

Each worker is one MQTT 5 client with a persistent session (``clean_start=False``, a Session
Expiry) and a stable client id (``beacon-gateway-resolve-<worker id>``), subscribed at QoS 1 to
``$share/<group>/<prefix>/v1/<site>/+/sightings``: the broker hands each batch to one worker of
the group. A batch is acknowledged (manual PUBACK) only once every observations batch made from
it has been PUBACKed by the broker, so a worker killed at any moment loses nothing: the broker
redelivers what it had not acknowledged. A redelivered batch gives the same observations under
the same name ``(gateway, boot, seq)``, which the arbiter recognises (docs/fleet.md).

Where the unacknowledged batches of a killed worker go depends on the broker: mosquitto (2.0)
keeps them, and keeps routing that worker's share to its session, until a worker with the same
id comes back (run workers under systemd with ``Restart=always``); EMQX redispatches them
only once that session ends (docs/fleet.md). A worker that stops on purpose first
unsubscribes, so nothing new waits for it, then finishes and acknowledges what it holds;
``leave`` also ends its session.

Threads: paho's network thread only queues messages; the calling thread decodes, resolves,
publishes and acknowledges.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.core.fleet import split
from gateway.core.wire import BatchKind, WireError, decode, encode
from gateway.delivery.mqtt_client import properties
from gateway.fleet.session_client import INBOX_LIMIT, InboxLimit, release, session_client

if TYPE_CHECKING:
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

    from gateway.core.fleet import BatchResolver
    from gateway.delivery.mqtt_settings import MqttSettings
    from gateway.topics import FleetTopics

CLIENT_ID_PREFIX: Final = "beacon-gateway-resolve-"
POLL_S: Final = 0.1
"""How often the worker looks at its stop flag and its pending acknowledgements when idle."""
PROGRESS_S: Final = 10.0
"""A progress line at most this often."""
DRAIN_S: Final = 30.0
"""On stop, how long the worker waits for the broker to acknowledge its last observations."""
BATCH_PROPERTY: Final = "batch"
"""MQTT 5 user property naming the batch (``gateway/boot/seq``), for logs and consumers."""

_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class WorkerCounts:
    """What a worker did (for its progress lines and its exit summary)."""

    batches: int = 0
    records: int = 0
    observations: int = 0
    published: int = 0
    acknowledged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    connects: int = 0


@dataclass(slots=True)
class _Pending:
    mid: int
    qos: int
    published: list[paho.MQTTMessageInfo]


class ResolveWorker:
    """Consumes sightings batches, publishes observations (see the module docstring)."""

    def __init__(
        self,
        settings: MqttSettings,
        topics: FleetTopics,
        resolver: BatchResolver,
        *,
        group: str,
        shards: int,
        leave: bool = False,
        inbox_limit: int = INBOX_LIMIT,
    ) -> None:
        if not settings.is_v5:
            msg = "resolver workers need MQTT 5 (shared subscriptions, session expiry)"
            raise ValueError(msg)
        self.settings = settings
        self.topics = topics
        self.resolver = resolver
        self.counts = WorkerCounts()
        self._subscription = topics.shared_sightings(group)
        self._shards = shards
        self._leave = leave
        self._inbox: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.inbox_limit = InboxLimit(inbox_limit)
        self._pending: list[_Pending] = []
        self._taking = True
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        client = session_client(self.settings, self.settings.client_id)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -------------------------------------------------------------------- paho's thread

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _log.error("resolver_connect_refused", reason=reason_code.getName())
            return
        self.counts.connects += 1
        _log.info("resolver_connected", session_present=flags.session_present)
        if self._taking:
            client.subscribe(self._subscription, options=SubscribeOptions(qos=1))

    def _on_subscribe(self, *_args: object) -> None:
        """Logged: what starts a worker (systemd, a test, ``fleet``) waits for this line."""
        if self._taking:
            _log.info("resolver_subscribed", subscription=self._subscription)

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        if self.inbox_limit.admit():
            self._inbox.put(message)

    # -------------------------------------------------------------------- the worker's thread

    def run(self, stop: threading.Event) -> WorkerCounts:
        """Work until ``stop`` is set; then stop taking batches, finish, and disconnect."""
        self._client.loop_start()
        next_progress = 0.0
        try:
            while not stop.is_set():
                self._work(POLL_S)
                now = time.monotonic()
                if now >= next_progress:
                    next_progress = now + PROGRESS_S
                    self._progress()
            self._stop_taking()
            self._drain()
        finally:
            self._disconnect()
        self._progress()
        return self.counts

    def _work(self, wait: float) -> None:
        try:
            message = self._inbox.get(timeout=wait)
        except queue.Empty:
            self._settle()
            return
        self.inbox_limit.taken()
        self._handle(message)
        while True:  # take what else is waiting before settling acknowledgements
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                break
            self.inbox_limit.taken()
            self._handle(message)
        self._settle()

    def _handle(self, message: paho.MQTTMessage) -> None:
        counts = self.counts
        try:
            batch = decode(bytes(message.payload))
        except WireError as exc:
            self._reject(message, str(exc.reason), str(exc))
            return
        if batch.kind is not BatchKind.SIGHTINGS:
            self._reject(message, "bad-kind", "an observations batch on a sightings topic")
            return
        counts.batches += 1
        counts.records += len(batch.records)
        resolved = self.resolver.resolve(batch)
        counts.observations += len(resolved.records)
        published = []
        name = f"{batch.gateway}/{batch.boot}/{batch.seq}"
        for shard, part in split(resolved, self._shards).items():
            props = properties(PacketTypes.PUBLISH)
            props.UserProperty = [(BATCH_PROPERTY, name)]
            published.append(
                self._client.publish(
                    self.topics.observations(shard), encode(part), qos=1, properties=props
                )
            )
        counts.published += len(published)
        self._pending.append(_Pending(message.mid, message.qos, published))

    def _reject(self, message: paho.MQTTMessage, reason: str, detail: str) -> None:
        """A batch that can never be read: count it, say so, acknowledge it (never retried)."""
        self.counts.rejected[reason] += 1
        _log.warning("batch_rejected", topic=message.topic, reason=reason, error=detail)
        self._pending.append(_Pending(message.mid, message.qos, []))

    def _settle(self) -> None:
        """Acknowledge every batch whose observations the broker has acknowledged."""
        still = []
        for pending in self._pending:
            if all(info.is_published() for info in pending.published):
                if pending.qos > 0:
                    self._client.ack(pending.mid, pending.qos)
                self.counts.acknowledged += 1
            else:
                still.append(pending)
        self._pending = still

    def _stop_taking(self) -> None:
        self._taking = False
        with contextlib.suppress(ValueError):
            self._client.unsubscribe(self._subscription)

    def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            self._work(POLL_S)
            if not self._pending and self._inbox.empty():
                return
        _log.warning("resolver_stopped_with_pending", batches=len(self._pending))

    def _disconnect(self) -> None:
        props = None
        if self._leave and not self._pending:
            props = properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.inbox_limit.close()
        self._client.disconnect(properties=props)
        release(self._client)

    def _progress(self) -> None:
        c = self.counts
        _log.info(
            "resolver_progress",
            batches=c.batches,
            records=c.records,
            observations=c.observations,
            acknowledged=c.acknowledged,
            pending=len(self._pending),
            rejected=dict(c.rejected),
            outcomes={str(k): v for k, v in self.resolver.counts.items()},
        )
