"""One advertisement as the pipeline sees it, whatever source delivered it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.identity import Identified, Telemetry


@dataclass(frozen=True, slots=True, repr=False)
class Sighting:
    """An advertisement heard by a gateway: stamped once by the source adapter.

    ``address`` is an opaque device identifier (a MAC on Linux, a UUID elsewhere; it rotates
    with EIDs); ``service_data`` is the Eddystone frame (after the 0xFEAA UUID); ``at`` is unix
    seconds. The repr leaves out the service data: it may hold a raw EID.

    ``resolved`` is what an upstream stage already made of it (a resolver worker, or an edge
    gateway reporting to an arbiter: docs/fleet.md); the pipeline then skips identification.
    """

    address: str
    rssi: int
    service_data: bytes
    at: float
    gateway: str
    tx_power: int | None = None
    source: str = ""
    resolved: Identified | Telemetry | None = None

    def __repr__(self) -> str:
        return (
            f"Sighting(address={self.address!r}, rssi={self.rssi}, at={self.at}, "
            f"gateway={self.gateway!r}, service_data=<{len(self.service_data)} bytes>)"
        )
