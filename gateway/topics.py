"""The MQTT topic contract (docs/mqtt.md): where each event is published.

    <prefix>/v1/<site>/<gateway>/<kind>/<subject>      kind: presence, trigger, telemetry
    <prefix>/v1/<site>/<gateway>/status                retained "online" / "offline"

``v1`` is the contract's version: it changes only when topics or payloads change
incompatibly (a new optional payload field does not). ``<subject>`` is the subject's id when
events may show it (``publish.subject_fields``), else its beacon id when that may be shown,
else ``-``: a topic never reveals more than the payload. Every segment is made topic-safe
(``/``, ``+``, ``#``, NUL and spaces become ``_``), so a subscriber can filter with ``+``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gateway.events import Event

CONTRACT_VERSION: Final = "v1"
ANONYMOUS: Final = "-"
"""The subject segment when events may show neither the subject's id nor its beacon."""
KINDS: Final = ("presence", "trigger", "telemetry")
_UNSAFE: Final = re.compile(r"[/+#\x00\s]")


def safe_segment(text: str) -> str:
    """``text`` as one topic level: no separators, wildcards, NUL or spaces; never empty."""
    return _UNSAFE.sub("_", text) or "_"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one gateway."""

    prefix: str
    site: str
    gateway_id: str

    @property
    def base(self) -> str:
        """``<prefix>/v1/<site>/<gateway>``."""
        return "/".join(
            (
                safe_segment(self.prefix),
                CONTRACT_VERSION,
                safe_segment(self.site),
                safe_segment(self.gateway_id),
            )
        )

    @property
    def status(self) -> str:
        """The retained online/offline status topic (the MQTT will's topic)."""
        return f"{self.base}/status"

    def for_event(self, event: Event) -> str:
        """The topic of an event."""
        kind = "presence" if event.type in {"enter", "dwell", "exit"} else event.type
        subject = event.subject.id or event.subject.beacon or ANONYMOUS
        return f"{self.base}/{kind}/{safe_segment(subject)}"


@dataclass(frozen=True, slots=True)
class FleetTopics:
    """The topics of a site's fleet (docs/fleet.md).

    <prefix>/v1/<site>/<gateway>/sightings             a keyless gateway's batches
    <prefix>/v1/<site>/fleet/observations/<shard>      observations, for the arbiters
    """

    prefix: str
    site: str

    @property
    def site_base(self) -> str:
        """``<prefix>/v1/<site>``."""
        return f"{safe_segment(self.prefix)}/{CONTRACT_VERSION}/{safe_segment(self.site)}"

    def sightings(self, gateway: str) -> str:
        """Where a keyless gateway publishes its sightings batches."""
        return f"{self.site_base}/{safe_segment(gateway)}/sightings"

    def shared_sightings(self, group: str) -> str:
        """The resolver workers' shared subscription to every gateway's sightings."""
        return f"$share/{safe_segment(group)}/{self.site_base}/+/sightings"

    def observations(self, shard: int) -> str:
        """Where observations of the beacons of ``shard`` go."""
        return f"{self.site_base}/fleet/observations/{shard}"

    def observations_filter(self) -> str:
        """Every shard's observations."""
        return f"{self.site_base}/fleet/observations/+"
