"""Prometheus metrics of a running gateway, read from its parts' counters at scrape time.

Nothing in the hot path touches a metric object: the sensing loop bumps plain integers and the
collector turns snapshots into metric families when ``/metrics`` is scraped. Metric names are
``beacon_gateway_*``; no label ever carries a beacon, a subject or an EID (only kinds, reasons,
outcomes): metrics must not be a tracking side channel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

    from gateway.daemon import Daemon

PREFIX: Final = "beacon_gateway"
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
"""Seconds from an event's acceptance to its PUBACK: milliseconds normally, minutes in outages."""


class LatencyHistogram:
    """A histogram of accept-to-PUBACK latencies, fed by the publisher's ``on_ack`` hook."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one latency."""
        self.total += seconds
        for index, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[index] += 1
                return
        self.counts[-1] += 1


class GatewayCollector:
    """Yields the gateway's metric families from the daemon's parts."""

    def __init__(
        self,
        daemon: Daemon,
        latency: LatencyHistogram,
        clock: Any = time.time,  # noqa: ANN401
    ) -> None:
        self._daemon = daemon
        self._latency = latency
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """The metric families (prometheus_client calls this on every scrape)."""
        yield from self._sensing()
        yield from self._delivery()

    def _sensing(self) -> Iterator[Metric]:
        daemon = self._daemon
        counts = (daemon.assembly.reporting or daemon.assembly.pipeline).counts()
        yield CounterMetricFamily(
            f"{PREFIX}_sightings", "Sightings the pipeline processed.", value=counts.sightings
        )
        identity = CounterMetricFamily(
            f"{PREFIX}_identity",
            "Sightings by identity outcome (resolved, unknown, stale, forged, ...).",
            labels=["outcome"],
        )
        for outcome, value in sorted(counts.identity.items()):
            identity.add_metric([outcome], value)
        yield identity
        yield GaugeMetricFamily(
            f"{PREFIX}_beacons_tracked", "Beacons presence tracks.", value=counts.beacons_tracked
        )
        events = CounterMetricFamily(
            f"{PREFIX}_events", "Events accepted into the outbox, by kind.", labels=["kind"]
        )
        for kind, value in sorted(daemon.counts.events.items()):
            events.add_metric([kind], value)
        yield events
        failures = CounterMetricFamily(
            f"{PREFIX}_source_failures", "Source failures by reason.", labels=["reason"]
        )
        for reason, value in sorted(daemon.counts.source_failures.items()):
            failures.add_metric([reason], value)
        yield failures
        stats = getattr(daemon.source, "stats", None)
        if callable(stats):
            snapshot = stats()
            for name in ("adverts", "duplicates_dropped", "queue_overflow_drops"):
                if hasattr(snapshot, name):
                    yield CounterMetricFamily(
                        f"{PREFIX}_scanner_{name}",
                        f"Scanner {name}.",
                        value=getattr(snapshot, name),
                    )
            if hasattr(snapshot, "scanner_restarts"):
                yield CounterMetricFamily(
                    f"{PREFIX}_scanner_restarts",
                    "Scanner restarts: after silence, or the adapter off, gone or not scanning.",
                    value=snapshot.scanner_restarts,
                )

    def _delivery(self) -> Iterator[Metric]:
        daemon = self._daemon
        outbox = daemon.outbox.stats()
        yield GaugeMetricFamily(f"{PREFIX}_outbox_depth", "Events waiting.", value=outbox.depth)
        oldest = outbox.oldest_accepted_at
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "Age of the oldest waiting event (0 when empty).",
            value=0.0 if oldest is None else max(self._clock() - oldest, 0.0),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_outbox_dropped",
            "Events dropped because the outbox was full.",
            value=outbox.dropped,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_outbox_parked", "Events the broker refused for good.", value=outbox.parked
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_healthy",
            "1 when the outbox commits (0 while commits fail: disk full, read-only).",
            value=int(daemon.outbox.last_error is None),
        )
        publisher = daemon.publisher.stats()
        yield GaugeMetricFamily(
            f"{PREFIX}_mqtt_connected", "1 when connected.", value=int(publisher.connected)
        )
        yield CounterMetricFamily(
            f"{PREFIX}_mqtt_connects", "Successful connections.", value=publisher.connects
        )
        yield CounterMetricFamily(
            f"{PREFIX}_mqtt_acked", "Events acknowledged by the broker.", value=publisher.acked
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_mqtt_in_flight", "Publishes awaiting PUBACK.", value=publisher.in_flight
        )
        refused = CounterMetricFamily(
            f"{PREFIX}_mqtt_refused",
            "Publishes the broker refused, by reason code.",
            labels=["reason_code"],
        )
        for code, value in sorted(publisher.refused.items()):
            refused.add_metric([str(code)], value)
        yield refused
        latency = self._latency
        cumulative = 0
        buckets = []
        for bound, count in zip(latency.buckets, latency.counts, strict=False):
            cumulative += count
            buckets.append((repr(bound), cumulative))
        cumulative += latency.counts[-1]
        buckets.append(("+Inf", cumulative))
        yield HistogramMetricFamily(
            f"{PREFIX}_ack_latency_seconds",
            "From an event's acceptance into the outbox to its PUBACK.",
            buckets=buckets,
            sum_value=latency.total,
        )


def metrics_registry(daemon: Daemon, latency: LatencyHistogram) -> CollectorRegistry:
    """A registry holding the gateway's collector: built once, scraped with generate_latest."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(daemon, latency))
    return registry
