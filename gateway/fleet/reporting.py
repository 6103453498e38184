"""A gateway's part in a fleet: its reporter in the daemon's place of the pipeline.

With ``[fleet] mode = "keyless"`` or ``"edge"`` the daemon runs a :class:`ReportingPipeline`
instead of presence: what it puts in the outbox are batches (docs/fleet.md), to the gateway's
sightings topic (keyless) or to the observations topic of each shard (edge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.fleet import split
from gateway.core.pipeline import PipelineCounts
from gateway.core.wire import BatchKind, encode
from gateway.delivery.message import Message

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.core.fleet import Reporter
    from gateway.core.identity import Identifier
    from gateway.core.sighting import Sighting
    from gateway.core.wire import Batch
    from gateway.topics import FleetTopics


class ReportingPipeline:
    """The daemon's pipeline for a fleet gateway: sightings in, batches out.

    One reporter per gateway that stamped the sightings: the radio's own (``gateway_id``), or
    each gateway of a scene or capture played through the daemon.
    """

    def __init__(
        self,
        reporter: Callable[[str], Reporter],
        topics: FleetTopics,
        shards: int,
        identifier: Identifier | None = None,
    ) -> None:
        """``reporter(gateway)`` makes the reporter of a gateway; ``identifier``: edge mode's."""
        self._make = reporter
        self.reporters: dict[str, Reporter] = {}
        self.topics = topics
        self.shards = shards
        self.identifier = identifier

    def process(self, sighting: Sighting) -> list[Batch]:
        """One sighting in; the batches it completes."""
        reporter = self.reporters.get(sighting.gateway)
        if reporter is None:
            reporter = self.reporters[sighting.gateway] = self._make(sighting.gateway)
        return reporter.process(sighting)

    def tick(self, now: float) -> list[Batch]:
        """The batches whose time is up."""
        return [batch for r in self.reporters.values() for batch in r.tick(now)]

    def counts(self) -> PipelineCounts:
        """Counters so far (identity outcomes: an edge gateway's, else none)."""
        identifier = self.identifier
        identity = {} if identifier is None else {k.value: v for k, v in identifier.counts.items()}
        return PipelineCounts(
            sightings=sum(r.sightings for r in self.reporters.values()),
            identity=identity,
            beacons_tracked=sum(r.links for r in self.reporters.values()),
        )

    def messages(self, batch: Batch) -> list[Message]:
        """The outbox messages of a batch: one, or one per shard of an observations batch."""
        name = f"{batch.gateway}/{batch.boot}/{batch.seq}"
        if batch.kind is BatchKind.SIGHTINGS:
            return [Message(self.topics.sightings(batch.gateway), encode(batch), name)]
        return [
            Message(self.topics.observations(shard), encode(part), f"{name}/{shard}")
            for shard, part in split(batch, self.shards).items()
        ]
