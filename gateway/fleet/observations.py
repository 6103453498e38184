"""The arbiter's source: observations batches from the broker, as already identified sightings.

The arbiter is the ordinary gateway daemon (``beacon-gateway run --observations``) whose source
is the site's observations: every gateway's reports of every beacon of its shards, published by
resolver workers (central mode) or by edge gateways. Its presence engine therefore sees each
beacon through every gateway that hears it and makes one zone decision per beacon, published
once (docs/fleet.md, "Arbitration").

Delivery: one MQTT 5 client with a persistent session (its own client id, ``<publisher's>-in``)
subscribed at QoS 1 to ``<prefix>/v1/<site>/fleet/observations/<shard>`` for each of its shards.
A batch is acknowledged only once the events it caused are committed to the outbox (the daemon
binds :meth:`ObservationSource.bind_commit` to the outbox's flush), so a killed arbiter gets
again what it had not finished. A batch seen before (the same name on the same topic: a worker
redelivered it) is skipped.

Late observations. Batches reach the arbiter a little out of time order (each gateway batches
for half a second, workers take turns); the presence engine takes that in its stride. A batch
that waited out an outage (mosquitto keeps a killed worker's share until it is back) is another
matter: replayed into presence after newer ones, it would rewrite a past the events have already
told. An observation more than ``late_s`` older than the newest one seen is therefore counted
(:attr:`ObservationSource.late`) and kept out of presence: the arbiter's view is of now, and
what it published stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import structlog
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.core.fleet import observed_sightings
from gateway.core.wire import BatchKind, WireError, decode
from gateway.fleet.session_client import INBOX_LIMIT, InboxLimit, release, session_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    import paho.mqtt.client as paho
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

    from gateway.core.sighting import Sighting
    from gateway.delivery.mqtt_settings import MqttSettings
    from gateway.topics import FleetTopics

REMEMBERED_BATCHES: Final = 200_000
"""Batch names remembered to skip redeliveries: minutes of a large site's traffic."""
ACK_EVERY: Final = 32
"""Acknowledge at least every this many batches (and whenever the queue runs dry)."""
CLIENT_SUFFIX: Final = "-in"
LATE_LOG_S: Final = 10.0
LATE_S: Final = 5.0
"""An observation this much older than the newest is late. Shorter than the shortest exit
timeout (6 s): a late observation cannot fall before an exit that silence already decided."""

_log = structlog.get_logger(__name__)


class ObservationSource:
    """Observations of the given shards (all: ``None``) as sightings (see the module docstring)."""

    def __init__(
        self,
        settings: MqttSettings,
        topics: FleetTopics,
        shards: Sequence[int] | None = None,
        *,
        late_s: float = LATE_S,
        inbox_limit: int = INBOX_LIMIT,
    ) -> None:
        if not settings.is_v5:
            msg = "the arbiter needs MQTT 5 (persistent sessions with expiry)"
            raise ValueError(msg)
        self.settings = settings
        self.topics = topics
        self.filters = (
            [topics.observations_filter()]
            if shards is None
            else [topics.observations(shard) for shard in sorted(set(shards))]
        )
        self.name = "observations"
        self._committed: Callable[[], Awaitable[None]] | None = None
        self._seen: OrderedDict[tuple[str, str, int, int], None] = OrderedDict()
        self.batches = 0
        self.duplicates = 0
        self.rejected = 0
        self.late = 0
        self._late_s = late_s
        self._newest = -math.inf
        self._next_late_log = -math.inf
        self._inbox_size = inbox_limit
        self.inbox_limit = InboxLimit(inbox_limit)
        """The current connection's (a new one each time :meth:`sightings` starts)."""

    def bind_commit(self, committed: Callable[[], Awaitable[None]]) -> None:
        """What to await before acknowledging: every event put so far is durable."""
        self._committed = committed

    async def sightings(self) -> AsyncIterator[Sighting]:
        """Observations as they arrive, already identified."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[paho.MQTTMessage] = asyncio.Queue()
        limit = self.inbox_limit = InboxLimit(self._inbox_size)

        def arrived(message: paho.MQTTMessage) -> None:
            if limit.admit():
                loop.call_soon_threadsafe(inbox.put_nowait, message)

        client = self._client(arrived)
        client.loop_start()
        pending: list[paho.MQTTMessage] = []
        try:
            while True:
                message = await inbox.get()
                limit.taken()
                for sighting in self._take(message):
                    yield sighting
                pending.append(message)
                if inbox.empty() or len(pending) >= ACK_EVERY:
                    if self._committed is not None:
                        await self._committed()
                    for done in pending:
                        client.ack(done.mid, done.qos)
                    pending.clear()
        finally:
            limit.close()
            client.disconnect()
            release(client)

    def _take(self, message: paho.MQTTMessage) -> list[Sighting]:
        try:
            batch = decode(bytes(message.payload))
        except WireError as exc:
            self.rejected += 1
            _log.warning(
                "batch_rejected", topic=message.topic, reason=str(exc.reason), error=str(exc)
            )
            return []
        if batch.kind is not BatchKind.OBSERVATIONS:
            self.rejected += 1
            _log.warning("batch_rejected", topic=message.topic, reason="bad-kind")
            return []
        key = (message.topic, *batch.key)
        if key in self._seen:
            self.duplicates += 1
            return []
        self._seen[key] = None
        if len(self._seen) > REMEMBERED_BATCHES:
            self._seen.popitem(last=False)
        self.batches += 1
        sightings = list(observed_sightings(batch, self.name))
        if not sightings:
            return sightings
        self._newest = max(self._newest, *(s.at for s in sightings))
        horizon = self._newest - self._late_s
        timely = [s for s in sightings if s.at >= horizon]
        if len(timely) < len(sightings):
            self.late += len(sightings) - len(timely)
            now = time.monotonic()
            if now >= self._next_late_log:  # a backlog makes many: one line per interval
                self._next_late_log = now + LATE_LOG_S
                _log.info("observations_late", total_late=self.late, newest=self._newest)
        return timely

    def _client(self, on_message: Callable[[paho.MQTTMessage], None]) -> paho.Client:
        client = session_client(self.settings, f"{self.settings.client_id}{CLIENT_SUFFIX}")
        filters = self.filters

        def on_connect(
            client: paho.Client,
            _userdata: object,
            flags: paho.ConnectFlags,
            reason_code: ReasonCode,
            _properties: Properties | None,
        ) -> None:
            if reason_code.is_failure:
                _log.error("observations_connect_refused", reason=reason_code.getName())
                return
            _log.info("observations_connected", session_present=flags.session_present)
            for topic in filters:
                with contextlib.suppress(ValueError):
                    client.subscribe(topic, options=SubscribeOptions(qos=1))

        def on_subscribe(*_args: object) -> None:
            _log.info("observations_subscribed")  # what starts an arbiter waits for this

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe

        def on_arrival(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
            on_message(message)

        client.on_message = on_arrival
        return client
