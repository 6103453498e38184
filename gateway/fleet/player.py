"""Keyless gateways played from a recording: each gateway's reporter, publishing its batches.

A fleet scene (or a capture) holds what every gateway of a site heard. :class:`FleetPlayer`
gives each gateway the :class:`~gateway.core.fleet.Reporter` a keyless gateway runs and
publishes its sightings batches at QoS 1 to that gateway's topic, as the gateways would: this
is how the fleet is run and measured without forty boxes (``beacon-gateway fleet``,
benchmarks/fleet_bench.py). One MQTT 5 client carries every gateway's batches.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.core.fleet import BATCH_INTERVAL_S, REPORT_INTERVAL_S, Reporter
from gateway.core.wire import encode
from gateway.fleet.session_client import release, set_no_delay

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from gateway.core.sighting import Sighting
    from gateway.core.wire import Batch
    from gateway.topics import FleetTopics

MAX_UNACKED: Final = 1000
"""Batches handed to paho and not yet acknowledged, at most: the player waits beyond this."""
WAIT_S: Final = 120.0


@dataclass(slots=True)
class PlayCounts:
    """What the player sent."""

    sightings: int = 0
    batches: int = 0
    records: int = 0
    sent_at: dict[tuple[str, int, int], float] = field(default_factory=dict)
    """Each batch's name -> when it was handed to paho (monotonic s): latency's start."""


class FleetPlayer:
    """Plays sightings through per-gateway reporters onto the broker (see the module doc)."""

    def __init__(
        self,
        host: str,
        port: int,
        topics: FleetTopics,
        *,
        client_id: str = "beacon-gateway-fleet-player",
        report_interval_s: float = REPORT_INTERVAL_S,
        batch_interval_s: float = BATCH_INTERVAL_S,
    ) -> None:
        self.topics = topics
        self.counts = PlayCounts()
        self._report_interval = report_interval_s
        self._batch_interval = batch_interval_s
        self._reporters: dict[str, Reporter] = {}
        self._unacked: list[paho.MQTTMessageInfo] = []
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self._client.max_inflight_messages_set(100)
        set_no_delay(self._client)
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()

    def play(
        self,
        sightings: Iterable[Sighting],
        *,
        between: Callable[[int], None] | None = None,
        pace: Callable[[float], None] | None = None,
    ) -> PlayCounts:
        """Report and publish every sighting; wait until the broker has every batch.

        ``between(batches)`` is called after each batch (a test kills workers there);
        ``pace(at)`` before each sighting (to play in wall time).
        """
        for sighting in sightings:
            if pace is not None:
                pace(sighting.at)
            self.counts.sightings += 1
            reporter = self._reporters.get(sighting.gateway)
            if reporter is None:
                reporter = self._reporters[sighting.gateway] = Reporter(
                    sighting.gateway,
                    int.from_bytes(os.urandom(4), "big"),
                    report_interval_s=self._report_interval,
                    batch_interval_s=self._batch_interval,
                )
            for batch in reporter.process(sighting):
                self._send(batch, between)
        for reporter in self._reporters.values():
            for batch in reporter.flush():
                self._send(batch, between)
        self._wait(0)
        return self.counts

    def _send(self, batch: Batch, between: Callable[[int], None] | None) -> None:
        info = self._client.publish(self.topics.sightings(batch.gateway), encode(batch), qos=1)
        self.counts.sent_at[batch.key] = time.monotonic()
        self.counts.batches += 1
        self.counts.records += len(batch.records)
        self._unacked.append(info)
        if len(self._unacked) >= MAX_UNACKED:
            self._wait(MAX_UNACKED // 2)
        if between is not None:
            between(self.counts.batches)

    def _wait(self, leave: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self._unacked) > leave:
            self._unacked = [info for info in self._unacked if not info.is_published()]
            if len(self._unacked) <= leave:
                return
            if time.monotonic() > deadline:
                msg = f"the broker did not acknowledge {len(self._unacked)} batches in {WAIT_S} s"
                raise TimeoutError(msg)
            time.sleep(0.005)

    def close(self) -> None:
        """Disconnect."""
        with contextlib.suppress(Exception):
            self._client.disconnect()
        release(self._client)
